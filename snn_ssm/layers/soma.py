"""The LIF soma as a module: learnable per-channel threshold and the soma options, no state."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch import nn

from .. import _checks, sdn
from ..functional import lif
from ..functional.lif import SomaOptions
from ..functional.surrogate import Surrogate
from ..ops.lif_scan import scan
from ..ops.ssm_lif import dendrite_scan, fused_backend, scan as fused_scan
from ..ops.dispatch import check_backend
from ._channels import ChannelModule
from .emitter import SpikeEmitter

__all__ = ["LIFSoma", "set_backend"]

log = logging.getLogger(__name__)


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
            (``soma.reset_mode = "exact"``, or :func:`snn_ssm.to_exact` on a model). Default: ``"exact"``.
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
                 learn_threshold: bool = True, shared: bool = False, v_reset: float = SomaOptions.v_reset,
                 reset: str = SomaOptions.reset, detach_reset: bool = SomaOptions.detach_reset,
                 grad_mode: str = SomaOptions.grad_mode, surrogate: Surrogate = SomaOptions.surrogate,
                 alpha: float | None = SomaOptions.alpha, backend: str = "auto", reset_mode: str = "exact",
                 sdn_variant: str = "paper", sdn_path=None, device=None, dtype=None):
        super().__init__(channels, shared, device, dtype)
        self.options = SomaOptions(reset, v_reset, detach_reset, grad_mode, surrogate, alpha)
        self.backend = backend
        if not isinstance(beta, (int, float, torch.Tensor)) or isinstance(beta, bool):
            raise TypeError(f"beta must be a number or a tensor, got {type(beta).__name__}")
        beta_t = torch.as_tensor(beta, dtype=self._anchor.dtype, device=self._anchor.device).clone()
        if beta_t.ndim > 1 or not bool(((beta_t >= 0) & (beta_t <= 1)).all()):
            raise ValueError(f"beta must be a scalar or 1-D per-channel tensor with values in [0, 1], got {beta!r}")
        if beta_t.ndim == 1 and channels is not None and beta_t.numel() not in (1, channels):
            raise ValueError(f"beta has {beta_t.numel()} entries but channels={channels}")
        self.v_th_init, self.learn_threshold = _checks.positive_number(v_th, "v_th"), learn_threshold
        if learn_beta:
            self.beta = nn.Parameter(beta_t)
        else:
            self.register_buffer("beta", beta_t)
        self.sdn_variant = _checks.one_of(sdn_variant, "sdn_variant", tuple(sdn.VARIANTS))
        if sdn_path is not None and not Path(sdn_path).is_file():
            raise FileNotFoundError(f"sdn_path {sdn_path!s} is not a file (an SDN weights file from "
                                    f"`python -m snn_ssm sdn-train`)")
        self.sdn_path = sdn_path
        self._sdn: sdn.Frozen | None = None
        self.reset_mode = reset_mode
        self._maybe_build()

    # The options as attributes of the soma (read-only views of ``options``).
    fire = property(lambda self: self.options.fire, doc="The ``x -> spikes`` function in use.")
    reset_kind = property(lambda self: self.options.reset, doc="``\"hard\"``, ``\"soft\"`` or ``\"none\"``.")
    v_reset = property(lambda self: self.options.v_reset)
    detach_reset = property(lambda self: self.options.detach_reset)
    grad_mode = property(lambda self: self.options.grad_mode)

    @property
    def surrogate_name(self) -> str:
        s = self.options.surrogate
        return s if isinstance(s, str) else getattr(s, "__qualname__", type(s).__name__)

    @property
    def backend(self) -> str:
        """The multi-step kernel (see :mod:`snn_ssm.ops.dispatch`); checked when set."""
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._backend = check_backend(value)

    @property
    def reset_mode(self) -> str:
        """``"exact"`` or ``"sdn"`` (see the class docstring); setting ``"sdn"`` checks the options and loads the
        network (a clear error if the options do not allow it or no weights exist for β)."""
        return self._reset_mode

    @reset_mode.setter
    def reset_mode(self, mode: str) -> None:
        _checks.one_of(mode, "reset_mode", ("exact", "sdn"))
        if mode == "sdn":
            if self.reset_kind != "hard" or self.v_reset != 0:
                raise ValueError(f"reset_mode='sdn' needs reset='hard' and v_reset=0 (the SDN predicts the membrane "
                                 f"after a reset to 0), got reset={self.reset_kind!r}, v_reset={self.v_reset:g}")
            if isinstance(self.beta, nn.Parameter):
                raise ValueError("reset_mode='sdn' needs a fixed beta (its weights are trained per beta); "
                                 "use learn_beta=False")
            self._sdn = sdn.Frozen(sdn.load_sdn(self.beta, self.sdn_variant, self.sdn_path))
        else:
            self._sdn = None
        self._reset_mode = mode

    @property
    def sdn(self) -> "sdn.SDN | None":
        """The frozen SDN in use (``reset_mode="sdn"``), else ``None``; held outside the module tree (not in the
        ``state_dict``, not moved by ``.to()``)."""
        return None if self._sdn is None else self._sdn.net

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self._sdn is not None:  # a new β needs its own network
            self.reset_mode = "sdn"

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

    def run(self, y: torch.Tensor, v0: torch.Tensor | None, skip_input: torch.Tensor | None = None,
            skip_weight: torch.Tensor | None = None):
        """Sequence ``y`` ``[T, B, C, *]`` from membrane ``v0`` → ``(spikes, v_T)``; with ``skip_input`` (like ``y``)
        and per-channel ``skip_weight`` ``[C]`` the soma runs on ``y + skip_weight·skip_input``, fused in the kernel.
        The caller has checked ``y`` (this is the hot path: no host synchronisation)."""
        beta, v_th = self._broadcast(y.ndim - 1, 1)
        if skip_weight is not None:
            skip_weight = channel_view(skip_weight, y.ndim - 1, 1)
        if self._sdn is not None:
            return self._run_sdn(y, v0, v_th, skip_input, skip_weight)
        return scan(y, v0, beta, v_th, self.options, skip_input=skip_input, skip_weight=skip_weight,
                    backend=self.backend)

    def _run_sdn(self, y, v0, v_th, skip_input, skip_weight):
        if v0 is not None and bool(v0.ne(0).any()):
            raise ValueError("reset_mode='sdn' runs each sequence from rest, but the neuron holds a non-zero membrane "
                             "from an earlier call: reset it first (reset(), reset_net, utils.reset) or use "
                             "reset_mode='exact' to continue a sequence")
        if skip_input is not None:
            y = y + skip_weight * skip_input
        with _checks.checked():  # the caller checked y
            return sdn.sdn_lif(y * (1.0 / v_th), self._sdn.net, self.fire)

    def forward(self, y: torch.Tensor, skip_input: torch.Tensor | None = None,
                skip_weight: torch.Tensor | None = None, *, v0: torch.Tensor | None = None,
                return_state: bool = False, dendrite=None):
        """Spikes for a whole sequence ``y`` ``[T, B, C, *]`` from rest, or from the membrane ``v0`` ``[B, C, *]``
        (stateless; see ``LIF`` for a neuron that keeps its state); ``skip_input``/``skip_weight`` add a fused
        D-skip as in :meth:`run`. With ``return_state``: ``(spikes, v_T)``.

        With ``dendrite`` (an :class:`~snn_ssm.layers.S4DDendrite`), ``y`` is the dendrite's input and the soma
        fires on ``S4D(y) + D·y``: computed as one fused recurrence (:mod:`snn_ssm.ops.ssm_lif`) where that is
        faster, else as the FFT convolution feeding the soma's kernel."""
        _checks.check_tensor(y, "y", min_ndim=3, layout="[T, B, C, ...]", device_of=self._anchor)
        if skip_input is not None:
            _checks.check_finite(skip_input, "skip_input")
        if v0 is not None and v0.shape != y.shape[1:]:
            raise ValueError(f"v0 must have the shape of one step of y, {tuple(y.shape[1:])}, got {tuple(v0.shape)}")
        self.ensure_channels(y.shape[2], "y")
        if dendrite is not None:
            if skip_input is not None:
                raise ValueError("with dendrite=, the D-skip is the dendrite's own: give no skip_input")
            s, v = self._run_with_dendrite(y, v0, dendrite)
        else:
            s, v = self.run(y, v0, skip_input, skip_weight)
        return (s, v) if return_state else s

    def _run_with_dendrite(self, x: torch.Tensor, v0, dendrite):
        T, B, C = x.shape[:3]
        M = math.prod(x.shape[3:])
        dendrite.ensure_channels(C)
        p = dendrite.discrete(C)
        sides = 2 if dendrite.bidirectional else 1
        fused = None if self._sdn is not None else fused_backend(
            x.device.type, x.dtype, self.options, self.backend, B * M, sides * dendrite.d_state // 2, T)
        if fused is not None:
            v_th = self.v_th if not self.shared else self.v_th.reshape(())
            extra = _anticausal(x, p, fused) if dendrite.bidirectional else None
            s, _, v = fused_scan(x, p.dA, p.dB, p.C[0], p.D, self.beta, v_th, None, v0, self.options, backend=fused,
                                 extra=extra)
            return s, v
        x4 = x.reshape(T, B, C, M)
        y = dendrite.convolve(x4, None, p, skip=False).reshape(x.shape)  # K * x; D·x is fused into the soma
        return self.run(y, v0, x, p.D)

    def run_step(self, y: torch.Tensor, v: torch.Tensor | None):
        """One step ``y`` ``[B, C, *]`` → ``(spikes, v_next)``."""
        beta, v_th = self._broadcast(y.ndim, 1)
        return lif.step(y, torch.zeros_like(y) if v is None else v, beta, v_th, self.options)

    def extra_repr(self) -> str:
        surrogate = repr(self.fire) if isinstance(self.options.surrogate, str) else self.surrogate_name
        beta = f"{self.beta.item():g}" if self.beta.ndim == 0 else f"[{self.beta.numel()} values]"
        return (f"channels={self.channels}, beta={beta}, learn_beta={isinstance(self.beta, nn.Parameter)}, "
                f"v_th={self.v_th_init:g}, learn_threshold={self.learn_threshold}, "
                f"reset={self.reset_kind!r}, v_reset={self.v_reset:g}, detach_reset={self.detach_reset}, "
                f"grad_mode={self.grad_mode!r}, surrogate={surrogate}, shared={self.shared}, backend={self.backend!r}"
                + (f", reset_mode='sdn', sdn_variant={self.sdn_variant!r}" if self._reset_mode == "sdn" else ""))


def _anticausal(x: torch.Tensor, p, backend: str) -> torch.Tensor:
    """A bidirectional dendrite's second side, ``Σ_{s>t} K̃[s-t-1] x_s``, by the fused kernels without a soma:
    the causal recurrence (with the second ``C``, no D) over the reversed sequence gives ``z``, and the side at step
    t is ``z`` at reversed step ``T-2-t`` (0 at the last step, which has no future)."""
    z, _ = dendrite_scan(x.flip(0), p.dA, p.dB, p.C[1], torch.zeros_like(p.D), None, backend)
    return torch.cat([z.flip(0)[1:], torch.zeros_like(z[:1])])


def set_backend(model: nn.Module, backend: str) -> int:
    """Set the multi-step kernel of every snn_ssm soma in ``model`` (its neurons and spiking layers, any framework).

    ``backend`` is one of ``"auto"``, ``"torch"``, ``"numba"``, ``"cupy"``, ``"triton"``; availability is checked
    at the next call, which raises with the install command if the backend is missing. Returns how many modules
    were switched. Examples::

        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), snn_ssm.LIF(4))
        >>> _ = snn_ssm.set_backend(net, "torch")        # "cupy" on a GPU
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_backend(backend)
    somas = [m for m in model.modules() if isinstance(m, LIFSoma)]
    for m in somas:
        m.backend = backend
    log.info("set_backend: %d module(s) now use backend=%r", len(somas), backend)
    return len(somas)
