"""Binary S4D and the Gated Spiking Unit (Stan & Rhodes, Sci. Rep. 2024) on ``[T, B, H]``.

Binary S4D puts a Heaviside on the S4D output, ``s_t = H(C h_t + D x_t − θ)``, trained with a surrogate gradient
(arctan by default; the paper reports fast-sigmoid more than 10 points worse), and mixes channels with S4's GLU on
the binary spikes, whose matrix products need accumulates only.

The Gated Spiking Unit replaces "Heaviside + GLU" by two multiplication-free paths on the full-precision SSM output
``y`` and one elementwise product:

- ``n = Tern(W_n) y + b_n``: ternary weights, full-precision activations (a non-saturating identity path);
- ``m = W_m Tern(y) + b_m``: full-precision weights, ternary activations (the spikes, in {−1, 0, 1});
- ``o = GELU(n ⊙ m)``.

The original code could not be inspected; the choices where sources disagree or are silent are parameters:

- *ternary weights* (``weight_threshold``): ternary weight networks' rule (Li & Liu 2016), per output row
  ``Δ = 0.7·mean|W|`` and scale ``α = mean(|W| : |W| > Δ)``, so ``Tern(W) = α·sign(W)·1[|W| > Δ]``: the row sums
  are additions and subtractions, and ``α`` costs one multiply per output, not per weight;
- *ternary activations* (``act_threshold``): ``Tern(y) = sign(y)·1[|y| > δ]`` with a fixed ``δ`` in units of
  ``y`` (default 0.5; the S4D output is O(1) at initialisation, so about half the entries are events). A relative
  rule (``δ = 0.15·max|y|``, used by a later re-implementation) couples every entry to a batch maximum, which a
  neuron cannot see, so it is not the default;
- *gradients*: straight-through; for weights the identity, for activations the identity clipped to ``|y| ≤ 1``
  (the hard-tanh estimator of binarised networks), so saturated entries stop pushing;
- *where GELU sits* (``gelu``): ``"output"`` (``GELU(n ⊙ m)``, as the summaries write it), ``"gate"``
  (``n ⊙ GELU(m)``) or ``"none"``.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import _checks
from ..functional.surrogate import resolve
from ..layers.dendrite import S4DDendrite
from ..layers.emitter import SpikeEmitter
from .s4d_layer import TimeTiedDropout, _S4DLayerBase

__all__ = ["HeavisideSpike", "BinaryS4D", "ternary_weight", "TernarySpike", "GatedSpikingUnit", "S4DGSU"]


class HeavisideSpike(SpikeEmitter, nn.Module):
    """``H(y − θ)`` with a surrogate gradient (a stateless spike function; its output is the spikes).

    Args:
        channels (int): channels (for a learnable per-channel θ).
        threshold (float): θ. Default: ``0.0`` (the definition ``H(C h + D x)``).
        learn_threshold (bool): make θ a per-channel parameter. Default: ``False``.
        surrogate (str or callable): ``"atan"`` (default, the paper's), ``"fast_sigmoid"``, ``"triangle"``,
            ``"sigmoid"`` or a callable. alpha (float, optional): its sharpness.

    Examples::

        >>> HeavisideSpike(3, threshold=0.5)(torch.tensor([[0.2, 0.5, 0.9]]))
        tensor([[0., 1., 1.]])
    """

    def __init__(self, channels: int, *, threshold: float = 0.0, learn_threshold: bool = False,
                 surrogate="atan", alpha: float | None = None, device=None, dtype=None):
        super().__init__()
        self.fire = resolve(surrogate, alpha)
        theta = torch.full((channels,), float(threshold), device=device, dtype=dtype)
        if learn_threshold:
            self.threshold = nn.Parameter(theta)
        else:
            self.register_buffer("threshold", theta)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` ``[..., C]`` → spikes in {0, 1}."""
        return self.fire(y - self.threshold)

    def extra_repr(self) -> str:
        return f"surrogate={self.fire!r}, learn_threshold={isinstance(self.threshold, nn.Parameter)}"


class BinaryS4D(_S4DLayerBase):
    """Binary S4D: ``x → H(S4D(x) + D·x − θ) → dropout → Linear(H, 2H) → GLU`` on ``[T, B, H]``.

    Args:
        d_model (int): channels H.
        threshold, learn_threshold, surrogate, alpha: the spike function (:class:`HeavisideSpike`); default arctan.
        d_state, bidirectional, dropout, init, disc, dt_min, dt_max, trainable_B: as :class:`~snn_ssm.SpikingS4D`.

    The spike function is the child module ``layer.spike`` (hooked by :class:`~snn_ssm.metrics.SpikeRateMonitor`).

    Examples::

        >>> BinaryS4D(16, d_state=16)(torch.randn(100, 2, 16)).shape
        torch.Size([100, 2, 16])
    """

    def __init__(self, d_model: int, *, threshold: float = 0.0, learn_threshold: bool = False, surrogate="atan",
                 alpha: float | None = None, device=None, dtype=None, **s4d_kwargs):
        super().__init__(d_model, device=device, dtype=dtype, **s4d_kwargs)
        self.spike = HeavisideSpike(d_model, threshold=threshold, learn_threshold=learn_threshold,
                                    surrogate=surrogate, alpha=alpha, device=device, dtype=dtype)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return self.spike(self.dendrite(x.unsqueeze(-1)).squeeze(-1))


class _TernaryWeight(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, factor):
        delta = factor * w.abs().mean(dim=1, keepdim=True)
        keep = w.abs() > delta
        alpha = (w.abs() * keep).sum(1, keepdim=True) / keep.sum(1, keepdim=True).clamp_min(1)
        return alpha * torch.sign(w) * keep

    @staticmethod
    def backward(ctx, grad):
        return grad, None  # straight-through


def ternary_weight(w: torch.Tensor, factor: float = 0.7) -> torch.Tensor:
    """``α·sign(W)·1[|W| > Δ]`` per output row (``Δ = factor·mean|W|``, ``α`` the mean kept magnitude), with the
    identity straight-through gradient.

    Examples::

        >>> ternary_weight(torch.tensor([[0.1, -0.9, 0.5, 0.02]]))
        tensor([[ 0.0000, -0.7000,  0.7000,  0.0000]])
    """
    return _TernaryWeight.apply(w, factor)


class _TernaryAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, delta, clip):
        ctx.save_for_backward(y)
        ctx.clip = clip
        return torch.sign(y) * (y.abs() > delta).to(y.dtype)

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (y.abs() <= ctx.clip).to(grad.dtype), None, None


class TernarySpike(SpikeEmitter, nn.Module):
    """Ternary spikes ``sign(y)·1[|y| > δ]`` in {−1, 0, 1} with a clipped straight-through gradient
    (``∂/∂y = 1[|y| ≤ clip]``).

    Examples::

        >>> TernarySpike(0.5)(torch.tensor([-0.9, 0.1, 0.7]))
        tensor([-1.,  0.,  1.])
    """

    def __init__(self, threshold: float = 0.5, clip: float = 1.0):
        super().__init__()
        if not threshold >= 0 or not clip > 0:
            raise ValueError(f"need threshold >= 0 and clip > 0, got threshold={threshold!r}, clip={clip!r}")
        self.threshold, self.clip = float(threshold), float(clip)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return _TernaryAct.apply(y, self.threshold, self.clip)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold:g}, clip={self.clip:g}"


class GatedSpikingUnit(nn.Module):
    """The GSU channel mixer ``[..., H] → [..., H]`` (see the module docstring for the equations and choices).

    Args:
        d_model (int): channels H.
        weight_threshold (float): Δ factor of the ternary weights. Default: ``0.7``.
        act_threshold (float): δ of the ternary activations. Default: ``0.5``.
        gelu (str): ``"output"``, ``"gate"`` or ``"none"``. Default: ``"output"``.

    Examples::

        >>> GatedSpikingUnit(16)(torch.randn(100, 2, 16)).shape
        torch.Size([100, 2, 16])
    """

    def __init__(self, d_model: int, *, weight_threshold: float = 0.7, act_threshold: float = 0.5,
                 gelu: str = "output", device=None, dtype=None):
        super().__init__()
        if gelu not in ("output", "gate", "none"):
            raise ValueError(f"gelu must be 'output', 'gate' or 'none', got {gelu!r}")
        if not 0 <= weight_threshold < 1:
            raise ValueError(f"weight_threshold must be in [0, 1), got {weight_threshold!r}")
        fk = {"device": device, "dtype": dtype}
        self.weight_threshold, self.gelu = weight_threshold, gelu
        self.identity_path = nn.Linear(d_model, d_model, **fk)  # its weight is ternarised in forward
        self.spike = TernarySpike(act_threshold)
        self.spike_path = nn.Linear(d_model, d_model, **fk)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        n = nn.functional.linear(y, ternary_weight(self.identity_path.weight, self.weight_threshold),
                                 self.identity_path.bias)
        m = self.spike_path(self.spike(y))
        if self.gelu == "output":
            return nn.functional.gelu(n * m)
        if self.gelu == "gate":
            return n * nn.functional.gelu(m)
        return n * m

    def extra_repr(self) -> str:
        return f"weight_threshold={self.weight_threshold:g}, gelu={self.gelu!r}"


class S4DGSU(nn.Module):
    """Binary S4D with the Gated Spiking Unit: ``x → S4D(x) + D·x → dropout → GSU`` on ``[T, B, H]``.

    Args:
        d_model (int): channels H.
        weight_threshold, act_threshold, gelu: :class:`GatedSpikingUnit` options.
        d_state, bidirectional, dropout, init, disc, dt_min, dt_max, trainable_B: S4D options, as
            :class:`~snn_ssm.SpikingS4D`.

    Examples::

        >>> S4DGSU(16, d_state=16)(torch.randn(100, 2, 16)).shape
        torch.Size([100, 2, 16])
    """

    def __init__(self, d_model: int, *, d_state: int = 64, bidirectional: bool = False, dropout: float = 0.0,
                 init: str = "lin", disc: str = "zoh", dt_min: float = 1e-3, dt_max: float = 1e-1,
                 trainable_B: bool = False, weight_threshold: float = 0.7, act_threshold: float = 0.5,
                 gelu: str = "output", device=None, dtype=None):
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.d_model = d_model
        self.dendrite = S4DDendrite(d_model, d_state=d_state, init=init, disc=disc, dt_min=dt_min, dt_max=dt_max,
                                    trainable_B=trainable_B, bidirectional=bidirectional, **fk)
        self.dropout = TimeTiedDropout(dropout)
        self.gsu = GatedSpikingUnit(d_model, weight_threshold=weight_threshold, act_threshold=act_threshold,
                                    gelu=gelu, **fk)

    @property
    def spike_weight(self) -> torch.Tensor:
        return self.gsu.spike_path.weight

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[T, B, H]`` → ``[T, B, H]``."""
        _checks.check_tensor(x, "x", min_ndim=3, layout="[T, B, H]", device_of=self.spike_weight)
        if x.ndim != 3 or x.shape[2] != self.d_model:
            raise ValueError(f"x must have layout [T, B, H={self.d_model}], got shape {tuple(x.shape)}")
        return self.gsu(self.dropout(self.dendrite(x.unsqueeze(-1)).squeeze(-1)))
