"""The Gated Spiking Unit (Stan & Rhodes, Sci. Rep. 2024) and the S4D layer it mixes, on ``[T, B, H]``.

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
from ..functional.quant import ternary_weight
from ..layers.spikes import TernarySpike
from .s4d_layer import S4DLayerBase

__all__ = ["GatedSpikingUnit", "S4DGSU"]


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
        _checks.positive_int(d_model, "d_model")
        _checks.in_range(weight_threshold, "weight_threshold", 0, 1, high_open=True)
        fk = {"device": device, "dtype": dtype}
        self.weight_threshold, self.gelu = weight_threshold, gelu
        self.identity_path = nn.Linear(d_model, d_model, **fk)  # its weight is ternarised in forward
        self.spike = TernarySpike(act_threshold)
        self.spike_path = nn.Linear(d_model, d_model, **fk)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` ``[..., H]`` (the SSM output) → ``[..., H]``."""
        w = self.spike_path.weight
        _checks.check_tensor(y, "y", min_ndim=1, layout="[..., H]", allow_empty_time=True, device_of=w)
        if y.shape[-1] != w.shape[1]:
            raise ValueError(f"y must have H={w.shape[1]} features in its last dim, got shape {tuple(y.shape)}")
        y = y.to(w.dtype)
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


class S4DGSU(S4DLayerBase):
    """Binary S4D with the Gated Spiking Unit: ``x → S4D(x) + D·x → dropout → GSU`` on ``[T, B, H]``.

    Args:
        d_model (int): channels H.
        weight_threshold, act_threshold, gelu: :class:`GatedSpikingUnit` options.
        dropout, ``**s4d_options``: as :class:`~snn_ssm.blocks.s4d_layer.S4DLayerBase`.

    Examples::

        >>> S4DGSU(16, d_state=16)(torch.randn(100, 2, 16)).shape
        torch.Size([100, 2, 16])
    """

    def __init__(self, d_model: int, *, weight_threshold: float = 0.7, act_threshold: float = 0.5,
                 gelu: str = "output", device=None, dtype=None, **kwargs):
        super().__init__(d_model, device=device, dtype=dtype, **kwargs)
        self.gsu = GatedSpikingUnit(d_model, weight_threshold=weight_threshold, act_threshold=act_threshold,
                                    gelu=gelu, device=device, dtype=dtype)

    @property
    def spike_weight(self) -> torch.Tensor:
        return self.gsu.spike_path.weight

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return self.dendrite(x.unsqueeze(-1)).squeeze(-1)

    def mix(self, z: torch.Tensor) -> torch.Tensor:
        return self.gsu(z)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}"
