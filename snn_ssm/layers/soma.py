"""The LIF soma as a module: learnable per-channel threshold and the soma options, no state."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..functional.lif import check_soma_options, lif_step
from ..ops.dispatch import BACKENDS
from ..ops.lif_scan import lif_scan
from ..functional.surrogate import SURROGATES, Surrogate, resolve
from ._lazy import ChannelModule
from .emitter import SpikeEmitter

__all__ = ["LIFSoma"]


def channel_view(p: torch.Tensor, ndim: int, channel_dim: int) -> torch.Tensor:
    """Reshape a per-channel ``[C]`` (or scalar) tensor to broadcast against a tensor of rank ``ndim``."""
    if p.ndim == 0:
        return p
    return p.reshape(p.shape + (1,) * (ndim - channel_dim - 1))


class LIFSoma(SpikeEmitter, ChannelModule):
    """Parameters and options of the SpikingSSM soma (see :mod:`snn_ssm.functional.lif` for the equations).

    Args:
        channels (int, optional): channel count; ``None`` infers it at the first call. Default: ``None``.
        beta (float or torch.Tensor): leak β in [0, 1], a scalar or one per channel. Default: ``0.125``
            (SpikingSSM's τ).
        learn_beta (bool): make β a parameter. Default: ``False``.
        v_th (float): initial threshold, stored as ``ln_vth = log(v_th)``. Default: ``1.0``.
        learn_threshold (bool): make ``ln_vth`` a parameter. Default: ``True``.
        shared (bool): one threshold for all channels. Default: ``False``.
        v_reset (float): hard-reset value in threshold units. Default: ``0.0``.
        reset (str): ``"hard"``, ``"soft"`` or ``"none"``. Default: ``"hard"``.
        detach_reset (bool): no gradient through s_t in the reset. Default: ``False``.
        grad_mode (str): ``"bptt"`` or ``"local"``. Default: ``"bptt"``.
        surrogate (str or callable): ``"triangle"``, ``"atan"``, ``"sigmoid"``, or an ``x -> spikes`` callable.
            Default: ``"triangle"``.
        alpha (float, optional): surrogate sharpness (named surrogates only).
        backend (str): multi-step kernel, ``"auto"``, ``"torch"``, ``"numba"``, ``"cupy"`` or ``"triton"`` (see
            :mod:`snn_ssm.ops.dispatch`). Default: ``"auto"``.
        reset_mode (str): how a multi-step call computes the reset: ``"exact"`` (the sequential neuron, through
            ``backend``) or ``"sdn"`` (SpikingSSM's surrogate dynamic network: one parallel, approximate pass with
            the local gradient; needs ``reset="hard"``, ``v_reset=0``, a shared β with trained weights and a neuron
            at rest at each sequence start; see :mod:`snn_ssm.sdn`). Single steps are always exact. Settable later
            (``soma.reset_mode = "exact"``, or :func:`snn_ssm.sdn.to_exact` on a model). Default: ``"exact"``.
        sdn_variant (str): ``"paper"`` (the published network) or ``"scan"`` (ours: the reset computed by a
            parallel scan, see :mod:`snn_ssm.sdn`). Default: ``"paper"``.
        sdn_path (str, optional): a weights file written by ``python -m snn_ssm sdn-train`` (default: the shipped
            weights for β).

    Examples::

        >>> soma = LIFSoma(8, beta=0.5)
        >>> soma(torch.randn(100, 4, 8)).shape       # stateless: spikes for a sequence from rest
        torch.Size([100, 4, 8])
    """

    _channel_key = "ln_vth"

    def __init__(self, channels: int | None = None, *, beta=0.125, learn_beta: bool = False, v_th: float = 1.0,
                 learn_threshold: bool = True, shared: bool = False, v_reset: float = 0.0, reset: str = "hard",
                 detach_reset: bool = False, grad_mode: str = "bptt", surrogate: Surrogate = "triangle",
                 alpha: float | None = None, backend: str = "auto", reset_mode: str = "exact",
                 sdn_variant: str = "paper", sdn_path=None, device=None, dtype=None):
        super().__init__(channels, shared, device, dtype)
        check_soma_options(reset, grad_mode)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        beta_t = torch.as_tensor(beta, dtype=self._anchor.dtype, device=self._anchor.device).clone()
        if beta_t.ndim > 1 or not bool(((beta_t >= 0) & (beta_t <= 1)).all()):
            raise ValueError(f"beta must be a scalar or 1-D per-channel tensor with values in [0, 1], got {beta!r}")
        if beta_t.ndim == 1 and channels is not None and beta_t.numel() not in (1, channels):
            raise ValueError(f"beta has {beta_t.numel()} entries but channels={channels}")
        if isinstance(v_th, bool) or not isinstance(v_th, (int, float)) or not v_th > 0:
            raise ValueError(f"v_th must be a positive number, got {v_th!r}")
        self.fire = resolve(surrogate, alpha)  # validates surrogate/alpha; the x -> spikes function in use
        self.surrogate_name = surrogate if isinstance(surrogate, str) else \
            getattr(surrogate, "__qualname__", type(surrogate).__name__)
        self.v_th_init, self.learn_threshold = float(v_th), learn_threshold
        self.v_reset, self.reset_kind = float(v_reset), reset
        self.detach_reset, self.grad_mode = detach_reset, grad_mode
        if learn_beta:
            self.beta = nn.Parameter(beta_t)
        else:
            self.register_buffer("beta", beta_t)
        self.sdn_variant, self.sdn_path = sdn_variant, sdn_path
        self.reset_mode = reset_mode
        self._maybe_build()

    @property
    def reset_mode(self) -> str:
        """``"exact"`` or ``"sdn"`` (see the class docstring); setting ``"sdn"`` checks the options and loads the
        network (a clear error if the options do not allow it or no weights exist for β)."""
        return self._reset_mode

    @reset_mode.setter
    def reset_mode(self, mode: str) -> None:
        if mode not in ("exact", "sdn"):
            raise ValueError(f"reset_mode must be 'exact' or 'sdn', got {mode!r}")
        if mode == "sdn":
            from ..sdn import load_sdn

            if self.reset_kind != "hard" or self.v_reset != 0:
                raise ValueError(f"reset_mode='sdn' needs reset='hard' and v_reset=0 (the SDN predicts the membrane "
                                 f"after a reset to 0), got reset={self.reset_kind!r}, v_reset={self.v_reset:g}")
            if isinstance(self.beta, nn.Parameter):
                raise ValueError("reset_mode='sdn' needs a fixed beta (its weights are trained per beta); "
                                 "use learn_beta=False")
            self.__dict__["_sdn"] = load_sdn(self.beta, self.sdn_variant, self.sdn_path)  # frozen: not a submodule
        self._reset_mode = mode

    def _build(self, rows: int) -> None:
        if self.beta.ndim == 1 and self.beta.numel() not in (1, rows):
            raise ValueError(f"beta has {self.beta.numel()} per-channel values but the input has {rows} channels")
        ln_vth = torch.full((rows,), math.log(self.v_th_init), **self.factory)
        if self.learn_threshold:
            self.ln_vth = nn.Parameter(ln_vth)
        else:
            self.register_buffer("ln_vth", ln_vth)

    @property
    def v_th(self) -> torch.Tensor:
        """Threshold ``exp(ln_vth)``: ``[C]`` (``[1]`` when shared)."""
        return torch.exp(self.ln_vth)

    def _broadcast(self, ndim: int, channel_dim: int):
        v_th = self.v_th if not self.shared else self.v_th.reshape(())
        return channel_view(self.beta, ndim, channel_dim), channel_view(v_th, ndim, channel_dim)

    def _options(self) -> dict:
        return dict(v_reset=self.v_reset, reset=self.reset_kind, detach_reset=self.detach_reset,
                    grad_mode=self.grad_mode, surrogate=self.fire)

    def run(self, y: torch.Tensor, v0: torch.Tensor | None, skip_input: torch.Tensor | None = None,
            skip_weight: torch.Tensor | None = None):
        """Sequence ``y`` ``[T, B, C, *]`` from membrane ``v0`` → ``(spikes, v_T)``; with ``skip_input`` (like ``y``)
        and per-channel ``skip_weight`` ``[C]`` the soma runs on ``y + skip_weight·skip_input``, fused in the kernel."""
        beta, v_th = self._broadcast(y.ndim - 1, 1)
        if skip_weight is not None:
            skip_weight = channel_view(skip_weight, y.ndim - 1, 1)
        if self._reset_mode == "sdn":
            return self._run_sdn(y, v0, v_th, skip_input, skip_weight)
        return lif_scan(y, v0, beta, v_th, skip_input=skip_input, skip_weight=skip_weight, backend=self.backend,
                        **self._options())

    def _run_sdn(self, y, v0, v_th, skip_input, skip_weight):
        from ..sdn import sdn_lif

        if v0 is not None and bool(v0.ne(0).any()):
            raise ValueError("reset_mode='sdn' runs each sequence from rest, but the neuron holds a non-zero membrane "
                             "from an earlier call: reset it first (reset(), reset_net, utils.reset) or use "
                             "reset_mode='exact' to continue a sequence")
        if skip_input is not None:
            y = y + skip_weight * skip_input
        return sdn_lif(y * (1.0 / v_th), self._sdn, self.fire)

    def forward(self, y: torch.Tensor, skip_input: torch.Tensor | None = None,
                skip_weight: torch.Tensor | None = None) -> torch.Tensor:
        """Spikes for a whole sequence ``y`` ``[T, B, C, *]`` from rest (stateless; see ``LIF`` for a neuron);
        ``skip_input``/``skip_weight`` add a fused D-skip as in :meth:`run`."""
        self.ensure_channels(y.shape[2], "y")
        return self.run(y, None, skip_input, skip_weight)[0]

    def run_step(self, y: torch.Tensor, v: torch.Tensor | None):
        """One step ``y`` ``[B, C, *]`` → ``(spikes, v_next)``."""
        beta, v_th = self._broadcast(y.ndim, 1)
        return lif_step(y, torch.zeros_like(y) if v is None else v, beta, v_th, **self._options())

    def extra_repr(self) -> str:
        surrogate = repr(self.fire) if isinstance(self.surrogate_name, str) and self.surrogate_name in SURROGATES \
            else self.surrogate_name
        beta = f"{self.beta.item():g}" if self.beta.ndim == 0 else f"[{self.beta.numel()} values]"
        return (f"channels={self.channels}, beta={beta}, learn_beta={isinstance(self.beta, nn.Parameter)}, "
                f"v_th={self.v_th_init:g}, learn_threshold={self.learn_threshold}, "
                f"reset={self.reset_kind!r}, v_reset={self.v_reset:g}, detach_reset={self.detach_reset}, "
                f"grad_mode={self.grad_mode!r}, surrogate={surrogate}, shared={self.shared}, backend={self.backend!r}"
                + (f", reset_mode='sdn', sdn_variant={self.sdn_variant!r}" if self._reset_mode == "sdn" else ""))
