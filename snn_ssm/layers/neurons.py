"""Stateful spiking neurons on ``[T, B, C, *]``: the plain LIF soma and the SSM-dendrite LIF of SpikingSSM."""
from __future__ import annotations

import math
from typing import NamedTuple, Union

import torch

from .. import _checks
from ..registry import register
from ..functional import s4d
from ..ops.ssm_lif import fused_backend, scan as fused_scan
from .dendrite import S4DDendrite, S4DOptions
from .soma import LIFSoma

__all__ = ["NeuronState", "LIF", "SSMDendriteLIF", "reset_states"]


class PendingDendrite(NamedTuple):
    """What the dendrite state after a multi-step call is computed from, on first use.

    A training loop that resets between sequences never needs that state; computing it eagerly would cost as much
    as the convolution itself (T·B·C·M·N/2 complex products).
    """

    x: torch.Tensor  # (T B C M)
    h0: torch.Tensor | None  # (B C M N/2)
    log_dA: torch.Tensor  # (C N/2)
    dB: torch.Tensor  # (C N/2)

    def materialize(self) -> torch.Tensor:
        return s4d.final_state(self.x, self.h0, self.log_dA, self.dB)


class NeuronState(NamedTuple):
    """What a neuron holds between calls: the membrane ``v`` and, for the SSM neuron, the dendrite state ``h``.

    Examples::

        >>> lif = LIF(4); _ = lif(torch.rand(10, 2, 4))
        >>> lif.state.v.shape
        torch.Size([2, 4])
    """

    v: torch.Tensor | None  # membrane after the last step, threshold units, shaped like one input step (B C *)
    h: Union[torch.Tensor, PendingDendrite, None] = None  # dendrite state (B C M N/2), complex


def materialize(h):
    return h.materialize() if isinstance(h, PendingDendrite) else h


def apply_to_state(state: NeuronState, fn) -> NeuronState:
    """Apply a ``Module._apply`` conversion to a held state (the complex dendrite state follows the real dtype)."""
    v = None if state.v is None else fn(state.v)
    h = materialize(state.h)
    if h is not None:
        h = torch.view_as_complex(fn(torch.view_as_real(h)).contiguous())
    return NeuronState(v, h)


@register("lif")
class LIF(LIFSoma):
    """Multi-step LIF soma as a neuron: the SSM neuron with an identity dendrite.

    Input ``x`` is ``[T, B, C, *]`` (``forward``) or ``[B, C, *]`` (``step``); parameters are per channel along
    ``C`` unless ``shared=True``. The neuron keeps its membrane between calls (a sequence may be fed in pieces)
    until :meth:`reset`. All constructor arguments are those of :class:`~snn_ssm.layers.soma.LIFSoma`.

    Examples::

        >>> lif = LIF(4)
        >>> s = lif(torch.rand(100, 8, 4))   # [T, B, C] -> spikes [T, B, C]
        >>> lif.reset()
    """

    def __init__(self, channels: int | None = None, **soma_kwargs):
        super().__init__(channels, **soma_kwargs)
        self._state = NeuronState(None, None)

    # -- pure functions of (input, state); adapters call these and store the state their own way --------------
    def _prepare(self, x: torch.Tensor, *, single_step: bool) -> torch.Tensor:
        layout = "[B, C, ...]" if single_step else "[T, B, C, ...]"
        min_ndim = (1 if single_step else 2) if self.shared else (2 if single_step else 3)
        _checks.check_tensor(x, "x", min_ndim=min_ndim, layout=layout, allow_empty_time=single_step,
                             device_of=self._anchor)
        if x.ndim == min_ndim and self.shared and x.ndim < (2 if single_step else 3):
            x = x.unsqueeze(-1)  # a shared neuron also takes [T, B] / [B]
        self.ensure_channels(x.shape[1 if single_step else 2])
        return x.to(self._anchor.dtype)

    def _check_state(self, state: NeuronState, step_shape: torch.Size) -> NeuronState:
        v = state.v
        if v is not None and v.shape != step_shape:
            raise ValueError(f"the neuron holds a state for steps of shape {tuple(v.shape)} but the input steps "
                             f"have shape {tuple(step_shape)}; call reset() before a new batch shape")
        if v is not None and v.device != self._anchor.device:
            raise ValueError(f"the membrane state is on {v.device} but the neuron is on {self._anchor.device}; "
                             f"build it on the neuron's device (e.g. torch.zeros(..., device=x.device))")
        return state

    def seq_fn(self, x: torch.Tensor, state: NeuronState):
        """Spikes for the sequence ``x`` ``[T, B, C, *]`` from ``state``: ``(spikes, new_state)``; no side effects."""
        xc = self._prepare(x, single_step=False)
        state = self._check_state(state, xc.shape[1:])
        s, v = self.run(xc, state.v)
        return s.to(x.dtype).reshape(x.shape), NeuronState(v, None)

    def step_fn(self, x: torch.Tensor, state: NeuronState):
        """One step ``x`` ``[B, C, *]`` from ``state``: ``(spikes, new_state)``; no side effects."""
        xc = self._prepare(x, single_step=True)
        state = self._check_state(state, xc.shape)
        s, v = self.run_step(xc, state.v)
        return s.to(x.dtype).reshape(x.shape), NeuronState(v, None)

    # -- stateful interface ---------------------------------------------------------------------------------
    def _load_state(self) -> NeuronState:
        return self._state

    def _store_state(self, state: NeuronState) -> None:
        self._state = state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``[T, B, C, *]`` for the sequence ``x``, continuing from the held state."""
        s, state = self.seq_fn(x, self._load_state())
        self._store_state(state)
        return s

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``[B, C, *]`` for one step ``x``, continuing from the held state."""
        s, state = self.step_fn(x, self._load_state())
        self._store_state(state)
        return s

    @property
    def state(self) -> NeuronState:
        """The held state (membrane ``v`` and, for the SSM neuron, dendrite state ``h``)."""
        st = self._load_state()
        if isinstance(st.h, PendingDendrite):
            st = NeuronState(st.v, st.h.materialize())
            self._store_state(st)
        return st

    @property
    def membrane(self) -> torch.Tensor | None:
        """Membrane after the last step, in threshold units (``None`` before the first call)."""
        return self._load_state().v

    def reset(self) -> None:
        """Forget the held state; the next call starts from rest."""
        self._store_state(NeuronState(None, None))

    def detach(self) -> None:
        """Cut the autograd history of the held state (truncated BPTT)."""
        st = self.state
        self._store_state(NeuronState(*(None if t is None else t.detach() for t in st)))

    def _apply(self, fn, *args, **kwargs):
        st = self._load_state()
        self._store_state(NeuronState(None, None))  # hosts must not convert the complex state as a real tensor
        out = super()._apply(fn, *args, **kwargs)
        self._store_state(apply_to_state(st, fn))
        return out


@register("ssm_dendrite_lif")
class SSMDendriteLIF(LIF):
    """SpikingSSM's neuron: an S4D dendrite feeding the LIF soma, ``y = S4D(x)``, ``s = LIF(y / v_th)``.

    Args:
        channels (int, optional): channel count (dim 2 of ``[T, B, C, *]``); ``None`` infers it. Default: ``None``.
        shared (bool): one set of dendrite and soma parameters for all channels. Default: ``False``.
        **options: dendrite options (``d_state``, ``init``, ``disc``, ``dt_min``, ``dt_max``, ``trainable_B``: see
            :class:`~snn_ssm.layers.dendrite.S4DOptions`) and soma options (``beta``, ``v_th``, ``reset``,
            ``grad_mode``, ``surrogate``, ...: see :class:`~snn_ssm.layers.soma.LIFSoma`).

    The multi-step path runs the dendrite as an FFT convolution (plus the free response of a held state) and the
    soma as an exact loop; ``step`` runs the dendrite's recurrence. The two agree to float rounding.

    Examples::

        >>> neuron = SSMDendriteLIF(16)
        >>> s = neuron(torch.randn(200, 4, 16))      # multi-step
        >>> neuron.reset(); s0 = neuron.step(torch.randn(4, 16))   # single step
    """

    def __init__(self, channels: int | None = None, *, shared: bool = False, device=None, dtype=None, **options):
        s4d_options, soma_options = S4DOptions.split(options)
        if s4d_options.bidirectional:
            raise ValueError("a neuron's dendrite must be causal: bidirectional=True applies to sequence layers")
        super().__init__(channels, shared=shared, device=device, dtype=dtype, **soma_options)
        self.dendrite = S4DDendrite(channels, shared=shared, options=s4d_options, device=device, dtype=dtype)

    def ensure_channels(self, channels: int, name: str = "x") -> None:
        super().ensure_channels(channels, name)
        if "dendrite" in self._modules:  # LIFSoma.__init__ may build before the dendrite exists
            self.dendrite.ensure_channels(channels, name)

    def seq_fn(self, x: torch.Tensor, state: NeuronState):
        xc = self._prepare(x, single_step=False)
        state = self._check_state(state, xc.shape[1:])
        T, B, C = xc.shape[:3]
        M = math.prod(xc.shape[3:])
        x4 = xc.reshape(T, B, C, M)  # explicit M: an empty batch has no -1 to infer
        h0 = materialize(state.h)
        p = self.dendrite.discrete(C)
        fused = None if self._sdn is not None else fused_backend(
            xc.device.type, xc.dtype, self.options, self.backend, B * M, self.dendrite.d_state // 2, T)
        if fused is not None:  # dendrite and soma in one pass (ops/ssm_lif)
            v_th = self.v_th if not self.shared else self.v_th.reshape(())
            s, h, v = fused_scan(xc, p.dA, p.dB, p.C[0], p.D, self.beta, v_th, h0, state.v, self.options,
                                   backend=fused)
            return s.to(x.dtype).reshape(x.shape), NeuronState(v, h)
        y = self.dendrite.convolve(x4, h0, p, skip=False).reshape(xc.shape)  # D·x is fused into the soma
        s, v = self.run(y, state.v, xc, p.D)
        return s.to(x.dtype).reshape(x.shape), NeuronState(v, PendingDendrite(x4, h0, p.log_dA, p.dB))

    def step_fn(self, x: torch.Tensor, state: NeuronState):
        xc = self._prepare(x, single_step=True)
        state = self._check_state(state, xc.shape)
        B, C = xc.shape[:2]
        y, h = self.dendrite.step(xc.reshape(B, C, math.prod(xc.shape[2:])), materialize(state.h))
        s, v = self.run_step(y.reshape(xc.shape), state.v)
        return s.to(x.dtype).reshape(x.shape), NeuronState(v, h)


def reset_states(model: torch.nn.Module) -> None:
    """Reset the state of every snn_ssm neuron inside ``model`` (any framework; and of nothing outside it).

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), snn_ssm.LIF(4))
        >>> _ = net(torch.rand(10, 2, 3)); reset_states(net)
        >>> net[1].membrane is None
        True
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for m in model.modules():
        if isinstance(m, LIF) or getattr(type(m), "_snn_ssm_stateful", False):  # our neurons, imported NIR graphs
            m.reset()
