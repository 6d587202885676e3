"""snn_ssm neurons as snnTorch 1.0 neurons (subclasses of ``snntorch.Leaky``).

They follow snnTorch's conventions: ``forward(input_, mem=None)`` returns ``(spk, mem)``, or ``spk`` alone with
``init_hidden=True`` (unless ``output=True``); ``init_leaky()``/``reset_mem()``; ``snntorch.utils.reset(net)`` and
``Leaky.detach_hidden()`` reach them; surrogates are snnTorch-style ``spike_grad`` callables (default: our
picklable triangle, so ``torch.save(model)`` works). By default ``forward`` takes one step ``[B, C, *]`` as snnTorch
neurons do; ``multi_step=True`` makes it take a whole time-first sequence ``[T, B, C, *]`` (spikes ``[T, B, C, *]``,
``mem`` the membrane after the last step).

``mem`` is the membrane after reset **in units of the threshold** (the neuron fires when it reaches 1; multiply by
``threshold`` for snnTorch's absolute units). Reset mechanisms map as ``"zero"`` → hard reset to 0,
``"subtract"`` → soft (subtract the threshold in the step that fires), ``"none"``. With ``"zero"`` the spikes equal
``snntorch.Leaky``'s (either ``reset_delay``) and ``mem`` equals ``Leaky(reset_delay=False)``'s at
``threshold=1``. With ``"subtract"`` they equal ``Leaky(reset_delay=False)`` while the membrane stays below twice
the threshold; above it snnTorch subtracts again in the next step before testing for a spike, we do not.

The SSM neuron also carries a dendrite state next to ``mem``. Passing back the ``mem`` this neuron returned (or a
detached alias of it) continues both; assigning any other tensor to ``mem`` (``reset_mem``, ``utils.reset``, a
tensor of your own) restarts the dendrite from rest, and an all-zero ``mem`` is the rest state. Detaching ``mem``
in place (``Leaky.detach_hidden()``) detaches the dendrite state at the next call.

Note: ``snntorch.utils.reset`` resets *every* ``Leaky`` in the process (snnTorch keeps a global instance list); use
``neuron.reset_mem()`` or :func:`snn_ssm.reset_states` to reset one network only.
"""
from __future__ import annotations

import snntorch as snn
import torch
from torch import nn

from . import _checks
from .layers import neurons as core
from .layers import sampler
from .layers.neurons import NeuronState, PendingDendrite
from .registry import register

__all__ = ["LIF", "SSMDendriteLIF", "SpikeSampler"]

_RESETS = {"zero": "hard", "subtract": "soft", "none": "none"}
_HOST_RESETS = {ours: host for host, ours in _RESETS.items()}


def _has_graph(h) -> bool:
    if isinstance(h, PendingDendrite):
        return h.x.requires_grad or h.log_dA.requires_grad
    return h is not None and h.requires_grad


class _LeakyHost(snn.Leaky):
    """``snntorch.Leaky`` as a base class without its constructor: the neutral neuron owns the parameters and the
    state, and this base only joins snnTorch's instance list, so ``isinstance(m, snn.Leaky)``,
    ``snntorch.utils.reset`` and ``Leaky.detach_hidden()`` reach the neuron."""

    def __init__(self):
        nn.Module.__init__(self)
        snn.SpikingNeuron.instances.append(self)


class _LeakyFace:
    """snnTorch glue, mixed in first: ``class X(_LeakyFace, NeutralNeuron, _LeakyHost)``.

    It translates snnTorch's arguments to the neutral neuron's, takes snnTorch's ``forward(input_, mem)`` and shows
    the held membrane as ``mem``; the neutral class keeps ``reset``/``detach``/``_apply`` and the state.
    """

    def __init__(self, channels: int | None = None, *, beta=0.125, threshold: float = 1.0, spike_grad=None,
                 init_hidden: bool = False, output: bool = False, learn_beta: bool = False,
                 learn_threshold: bool = True, reset_mechanism: str = "zero", multi_step: bool = False, **kwargs):
        _checks.one_of(reset_mechanism, "reset_mechanism", tuple(_RESETS))
        _checks.positive_number(threshold, "threshold")
        if spike_grad is not None:
            kwargs["surrogate"] = spike_grad
        super().__init__(channels, beta=beta, learn_beta=learn_beta, v_th=float(threshold),
                         learn_threshold=learn_threshold, reset=_RESETS[reset_mechanism], **kwargs)
        self.init_hidden, self.output, self.multi_step = init_hidden, output, multi_step

    # What snnTorch code reads of a Leaky.
    reset_mechanism = property(lambda self: _HOST_RESETS[self.reset_kind])
    reset_delay = False
    spike_grad = property(lambda self: self.fire, doc="The spike function in use (snnTorch's name for it).")

    @property
    def threshold(self) -> torch.Tensor:
        return self.v_th

    @property
    def mem(self) -> torch.Tensor:
        v = self._state.v
        return torch.zeros(0, device=self._anchor.device) if v is None else v

    @mem.setter
    def mem(self, value) -> None:
        held = self._state.v
        if value is None or (isinstance(value, torch.Tensor) and value.numel() == 0):
            self._state = NeuronState(None, None)
        elif held is not None and isinstance(value, torch.Tensor) and value.shape == held.shape and \
                value.untyped_storage().data_ptr() == held.untyped_storage().data_ptr():
            self._state = NeuronState(value, self._state.h)  # the mem this neuron returned: continue the dendrite
        else:  # a tensor of the user's: checked here, once (the mem this neuron returns is trusted)
            _checks.check_tensor(value, "mem", min_ndim=1, layout="[B, C, ...]", allow_empty_time=True,
                                 device_of=self._anchor)
            self._state = NeuronState(value.to(self._anchor.dtype) if bool(value.any()) else None, None)  # 0: rest

    def reset_mem(self) -> torch.Tensor:
        self.reset()
        return self.mem

    def init_leaky(self) -> torch.Tensor:
        return self.reset_mem()

    def forward(self, input_: torch.Tensor, mem: torch.Tensor | None = None):
        if self.init_hidden and mem is not None:
            raise TypeError("`mem` should not be passed as an argument while `init_hidden=True`")
        if mem is not None:
            self.mem = mem
        state = self._state
        if state.v is not None and state.v.grad_fn is None and _has_graph(state.h):
            state = NeuronState(state.v, core.materialize(state.h).detach())  # mem was detached in place
        fn = self.seq_fn if self.multi_step else self.step_fn
        spk, self._state = fn(input_, state)
        if self.output or not self.init_hidden:
            return spk, self._state.v
        return spk

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, multi_step={self.multi_step}, init_hidden={self.init_hidden}, "
                f"output={self.output}")


@register("lif", framework="snntorch")
class LIF(_LeakyFace, core.LIF, _LeakyHost):
    """The SpikingSSM LIF soma as an snnTorch neuron.

    Args:
        channels (int, optional): channel count (dim 1 of a step ``[B, C, *]``); ``None`` infers it.
        beta (float or torch.Tensor): leak β, scalar or per channel. Default: ``0.125``.
        threshold (float): initial threshold. Default: ``1.0``.
        spike_grad (callable, optional): snnTorch surrogate, e.g. ``snntorch.surrogate.atan()``; default: the
            triangle surrogate.
        init_hidden, output: snnTorch semantics (see module docstring).
        learn_beta (bool): Default: ``False``. learn_threshold (bool): Default: ``True``.
        reset_mechanism (str): ``"zero"`` (hard, SpikingSSM's), ``"subtract"`` or ``"none"``. Default: ``"zero"``.
        multi_step (bool): ``forward`` takes ``[T, B, C, *]`` sequences. Default: ``False``.
        **kwargs: further soma options (``grad_mode``, ``detach_reset``, ``shared``, ``device``, ``dtype``, ...).

    Examples::

        >>> lif = LIF(beta=0.9)
        >>> mem = lif.init_leaky()
        >>> for x_t in torch.rand(25, 8, 10):
        ...     spk, mem = lif(x_t, mem)
    """


@register("ssm_dendrite_lif", framework="snntorch")
class SSMDendriteLIF(_LeakyFace, core.SSMDendriteLIF, _LeakyHost):
    """SpikingSSM's S4D-dendrite LIF neuron as an snnTorch neuron.

    Arguments of :class:`LIF` plus the dendrite options of :class:`snn_ssm.layers.SSMDendriteLIF`
    (``d_state``, ``init``, ``disc``, ``dt_min``, ``dt_max``, ``trainable_B``, ``shared``).

    Examples::

        >>> import snntorch.functional as SF
        >>> net = torch.nn.Sequential(torch.nn.Linear(784, 64), SSMDendriteLIF(64, init_hidden=True, multi_step=True),
        ...                           torch.nn.Linear(64, 10), LIF(10, init_hidden=True, multi_step=True))
        >>> loss = SF.ce_rate_loss()(net(torch.rand(25, 8, 784)), torch.randint(0, 10, (8,)))
    """


@register("spike_sampler", framework="snntorch")
class SpikeSampler(sampler.SpikeSampler):
    """P-SpikeSSM's stochastic spiking neuron (:class:`snn_ssm.layers.SpikeSampler`) with snnTorch's stepping.

    Stateless, so it returns ``spk`` alone (no ``mem``; ``snntorch.utils.reset`` has nothing to clear). Like the
    snnTorch neurons, ``forward`` takes one step ``[B, C, *]``; ``multi_step=True`` takes ``[T, B, C, *]``.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Linear(784, 64), SpikeSampler(64, seed=0), torch.nn.Linear(64, 10))
        >>> spk_rec = torch.stack([net(x_t) for x_t in torch.rand(25, 8, 784)])
    """

    def __init__(self, channels: int | None = None, *, multi_step: bool = False, **kwargs):
        super().__init__(channels, **kwargs)
        self.multi_step = multi_step

    def forward(self, input_: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(input_, noise) if self.multi_step else self.step(input_, noise)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, multi_step={self.multi_step}"
