"""P-SpikeSSM's layers on ``[T, B, H]``: SpikeMixer, ClampFuse and the block of its released code.

What the code does (and this block reproduces), per block with input ``x``:

1. ``s1 = SpikeSampler(x)``: ``1[Norm(a⊙x + b) > ξ]`` (the norm only with ``prenorm``);
2. ``z = dropout(GELU(S4(s1) + D·s1))``, S4 the DPLR/HiPPO-LegS SSM with a two-sided kernel by default;
3. ``s2 = SpikeSampler(z)`` (its own ``a``, ``b``, no norm, a fresh ``ξ'``);
4. ``y = SpikeMixer(s2) = GELU(W s2 + c)``, a dense ``Linear(H → H)`` on spikes;
5. ``out = x + dropout(y)`` (``residual=False``: ``dropout(y)``), then ``Norm(out)`` with post-norm.

The paper's "ClampFuse" (residual fusion → norm → clamp to [0, 1]) is, in the code, step 5 followed by the next
block's affine, norm and clamp inside its sampler; :class:`ClampFuse` is that operation as a standalone module.
``block_bidirectional=True`` (the code's LRA setting) adds a second path from ``x`` (its own sampler without norm and
its own S4; the input is *not* time-reversed), re-samples both SSM outputs with the *first sampler's* ``ξ`` (the
second path's output without an affine map) and mixes their concatenation with ``Linear(2H → H)`` + GELU. The
code's S4 block also builds a GLU output projection that its forward never uses; it is left out here.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import _checks
from ..layers.s4 import S4DPLR
from ..layers.sampler import EVAL_MODES, SpikeSampler
from ..layers.norm import ChannelNorm
from .common import TimeTiedDropout

__all__ = ["SpikeMixer", "ClampFuse", "PSpikeSSMBlock"]


class SpikeMixer(nn.Module):
    """``act(W s + c)``: a dense ``Linear(d_in → d_out)`` on spikes, with GELU as P-SpikeSSM's code uses (so the
    mixer's output is not binary), or ReLU, the variant the paper ablates.

    Args:
        d_in (int): input features (spikes). d_out (int, optional): output features. Default: ``d_in``.
        activation (str): ``"gelu"`` or ``"relu"``. Default: ``"gelu"``.

    Examples::

        >>> SpikeMixer(8)((torch.rand(20, 2, 8) > 0.5).float()).shape
        torch.Size([20, 2, 8])
    """

    def __init__(self, d_in: int, d_out: int | None = None, *, activation: str = "gelu", device=None, dtype=None):
        super().__init__()
        if activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be 'gelu' or 'relu', got {activation!r}")
        self.activation = activation
        _checks.positive_int(d_in, "d_in")
        _checks.positive_int(d_out, "d_out", allow_none=True)
        self.linear = nn.Linear(d_in, d_out or d_in, device=device, dtype=dtype)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """Spikes ``s`` ``[..., d_in]`` (any float dtype; bool and int spikes are taken as 0/1) → ``[..., d_out]``."""
        w = self.linear.weight
        if isinstance(s, torch.Tensor) and not s.is_floating_point() and not s.is_complex():
            s = s.to(w.dtype)  # bool or integer spikes are 0/1 events
        _checks.check_tensor(s, "s", min_ndim=1, layout="[..., d_in]", allow_empty_time=True, device_of=w)
        if s.shape[-1] != self.linear.in_features:
            raise ValueError(f"s must have d_in={self.linear.in_features} features in its last dim, got shape "
                             f"{tuple(s.shape)}")
        y = self.linear(s.to(w.dtype))
        return nn.functional.gelu(y) if self.activation == "gelu" else nn.functional.relu(y)

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}"


class ClampFuse(nn.Module):
    """``clamp(Norm(x + y), 0, 1)``: residual fusion, norm, clamp to probabilities for the next sampler.

    Args:
        d_model (int): channels H. norm (str, optional): ``"batch"``, ``"layer"`` or ``None``. Default: ``"batch"``
            (the paper's; reviewers note BatchNorm is not local, ``"layer"`` is the alternative).

    Examples::

        >>> out = ClampFuse(8, norm="layer")(torch.randn(20, 2, 8), torch.randn(20, 2, 8))
        >>> bool(out.min() >= 0) and bool(out.max() <= 1)
        True
    """

    def __init__(self, d_model: int, *, norm: str | None = "batch", device=None, dtype=None):
        super().__init__()
        self.d_model = _checks.positive_int(d_model, "d_model")
        self.norm = ChannelNorm(d_model, norm, device=device, dtype=dtype) if norm is not None else nn.Identity()
        # the device and dtype inputs are checked against (the norm may have no parameters)
        self.register_buffer("_anchor", torch.empty(0, device=device, dtype=dtype or torch.get_default_dtype()),
                             persistent=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``clamp(norm(x + y), 0, 1)`` for a residual ``x`` and a block output ``y`` of one shape ``[T, B, H]``."""
        x = _checks.check_sequence(x, "x", channels=self.d_model, like=self._anchor)
        y = _checks.check_sequence(y, "y", channels=self.d_model, like=self._anchor)
        if x.shape != y.shape:
            raise ValueError(f"x and y must have one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        return self.norm(x + y).clamp(0, 1)

    def extra_repr(self) -> str:
        return "clamp=[0, 1]"


class PSpikeSSMBlock(nn.Module):
    """One block of P-SpikeSSM as its released code computes it (see the module docstring), on ``[T, B, H]``.

    Args:
        d_model (int): channels H.
        d_state (int): S4 state size N. Default: ``64``.
        n_ssm (int, optional): shared S4 (Λ, P, B) copies, ``None`` = one per channel. Default: ``1``.
        bidirectional (bool): two-sided S4 kernel (every released config). Default: ``True``.
        block_bidirectional (bool): the second, non-reversed path (LRA configs). Default: ``False``.
        norm (str, optional): ``"batch"``, ``"layer"`` or ``None``. Default: ``"batch"``.
        prenorm (bool): norm inside the first sampler (else on the block output). Default: ``True``.
        residual (bool): add the input back (the psMNIST config has none). Default: ``True``.
        dropout (float): time-tied dropout after the SSM's GELU and on the mixer output. Default: ``0.0``.
        mixer_activation (str): ``"gelu"`` or ``"relu"``. Default: ``"gelu"``.
        eval_mode (str): the samplers' eval behaviour (``"sample"``, ``"expectation"``, ``"threshold"``).
        dt_min, dt_max (float): S4 step range. Default: ``1e-3``, ``1e-1``.
        b_clip, l_max: the S4's init clip and kernel length (:class:`~snn_ssm.layers.S4DPLR`; defaults: the official
            ``2.0`` and the input's length).
        reverse_affine (bool): a learnable ``a, b`` before the second path's output sampling (the official code has
            none). Default: ``False``.

    Examples::

        >>> block = PSpikeSSMBlock(16, d_state=16, block_bidirectional=True)
        >>> block(torch.randn(100, 2, 16)).shape
        torch.Size([100, 2, 16])
    """

    def __init__(self, d_model: int, *, d_state: int = 64, n_ssm: int | None = 1, bidirectional: bool = True,
                 block_bidirectional: bool = False, norm: str | None = "batch", prenorm: bool = True,
                 residual: bool = True, dropout: float = 0.0, mixer_activation: str = "gelu",
                 eval_mode: str = "sample", dt_min: float = 1e-3, dt_max: float = 1e-1, b_clip: float | None = 2.0,
                 l_max: int | None = None, reverse_affine: bool = False, device=None, dtype=None):
        super().__init__()
        if eval_mode not in EVAL_MODES:
            raise ValueError(f"eval_mode must be one of {EVAL_MODES}, got {eval_mode!r}")
        fk = {"device": device, "dtype": dtype}
        self.d_model, self.prenorm, self.residual = d_model, prenorm, residual
        ssm = dict(d_state=d_state, n_ssm=n_ssm, bidirectional=bidirectional, dt_min=dt_min, dt_max=dt_max,
                   b_clip=b_clip, l_max=l_max, **fk)
        self.in_sampler = SpikeSampler(d_model, norm=norm if prenorm else None, eval_mode=eval_mode, **fk)
        self.ssm = S4DPLR(d_model, **ssm)
        self.out_sampler = SpikeSampler(d_model, eval_mode=eval_mode, **fk)
        self.block_bidirectional = block_bidirectional
        if block_bidirectional:
            self.in_sampler_rev = SpikeSampler(d_model, eval_mode=eval_mode, **fk)
            self.ssm_rev = S4DPLR(d_model, **ssm)
            self.out_sampler_rev = SpikeSampler(d_model, eval_mode=eval_mode, affine=reverse_affine, **fk)
        self.mixer = SpikeMixer(d_model * (1 + block_bidirectional), d_model, activation=mixer_activation, **fk)
        self.dropout = TimeTiedDropout(dropout)
        self.post_norm = (ChannelNorm(d_model, norm, device=device, dtype=dtype)
                          if norm is not None and not prenorm else None)

    def samplers(self) -> list[SpikeSampler]:
        return [m for m in self.modules() if isinstance(m, SpikeSampler)]

    def _path(self, x: torch.Tensor, sampler: SpikeSampler, ssm: S4DPLR, noise=None) -> torch.Tensor:
        s = sampler(x, noise=noise)
        return self.dropout(nn.functional.gelu(ssm(s.unsqueeze(-1)).squeeze(-1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[T, B, H]`` → ``[T, B, H]``."""
        x = _checks.check_sequence(x, "x", channels=self.d_model, like=self.mixer.linear.weight)
        with _checks.checked():
            if self.block_bidirectional:
                # as the official block: the input sampler's draw ξ also re-samples both SSM outputs; the second
                # path's input has a draw of its own
                xi = self.in_sampler.noise(x) if self.training or self.in_sampler.eval_mode == "sample" else None
                z = self._path(x, self.in_sampler, self.ssm, noise=xi)
                z_rev = self._path(x, self.in_sampler_rev, self.ssm_rev)
                s = torch.cat([self.out_sampler(z, noise=xi), self.out_sampler_rev(z_rev, noise=xi)], dim=-1)
            else:
                z = self._path(x, self.in_sampler, self.ssm)
                s = self.out_sampler(z)
            y = self.dropout(self.mixer(s))
        out = x + y if self.residual else y
        return self.post_norm(out) if self.post_norm is not None else out

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, prenorm={self.prenorm}, residual={self.residual}, "
                f"block_bidirectional={self.block_bidirectional}")
