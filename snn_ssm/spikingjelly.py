"""snn_ssm neurons as native SpikingJelly 2.0 neurons (``MemoryModule``s with step modes ``'s'`` and ``'m'``).

The classes here are the framework-neutral neurons of :mod:`snn_ssm.layers` with SpikingJelly's memory contract on
top: their state lives in the registered memories ``v`` (membrane, threshold units) and ``h`` (dendrite state), so
``functional.reset_net``, ``detach_net``, ``set_step_mode``, ``extract_memories``/``load_memories`` and
``to_functional_forward`` work on them, and they can be passed as ``spiking_neuron=`` to the model-zoo builders
(channel counts are inferred at the first call; run one batch before building the optimizer).

Shapes: step mode ``'s'`` takes ``[B, C, *]``, step mode ``'m'`` takes ``[T, B, C, *]``; parameters are per channel
``C`` unless ``shared=True``. Running T steps in ``'s'`` equals one ``'m'`` call: exactly for :class:`LIF`, and for
:class:`SSMDendriteLIF` up to the rounding difference between the FFT convolution and the recurrence (which can
flip a spike whose membrane lands within ~1e-6 of the threshold in float32; none in float64 in our tests).

The neurons also run under the legacy SpikingJelly 0.0.0.0.14 (CuPy era): they accept ``backend=`` and expose
``supported_backends``, so that version's ``functional.set_backend(net, "cupy")`` switches them; see
``integrations/legacy_spikingjelly``.

Mapping from ``spikingjelly.activation_based.neuron.LIFNode(tau, decay_input, v_threshold, v_reset)``:
``beta = 1 - 1/tau``; ``decay_input=False`` → ``v_th = v_threshold``; ``decay_input=True`` (input scaled by 1/τ)
→ ``v_th = tau * v_threshold``; ``v_reset=None`` → ``reset="soft"``, else ``reset="hard"`` with
``v_reset = v_reset / v_threshold``. :func:`snn_ssm.swap_neurons` applies it.
"""
from __future__ import annotations

from spikingjelly.activation_based import base

from .layers import neurons as core
from .layers import sampler
from .layers.neurons import NeuronState
from .ops.dispatch import BACKENDS
from .registry import register

__all__ = ["LIF", "SSMDendriteLIF", "SpikeSampler"]


class _MemoryNeuron:
    """SpikingJelly glue, mixed in first: ``class X(_MemoryNeuron, NeutralNeuron, base.MemoryModule)``.

    It stores the state in SpikingJelly memories and takes SpikingJelly's step-mode ``forward``; the neutral class
    keeps ``reset``/``detach``/``_apply`` (which handle the dendrite state) ahead of ``MemoryModule``'s.
    """

    def __init__(self, channels: int | None = None, *, step_mode: str = "s", surrogate_function=None, **kwargs):
        if surrogate_function is not None:
            kwargs["surrogate"] = surrogate_function
        super().__init__(channels, **kwargs)
        self.register_memory("v", None)
        self.register_memory("h", None)
        self.step_mode = step_mode

    def _load_state(self) -> NeuronState:
        return NeuronState(self._memories["v"], self._memories["h"])

    def _store_state(self, state: NeuronState) -> None:
        self._memories["v"], self._memories["h"] = state.v, state.h

    # Legacy SpikingJelly (0.0.0.0.14) gives MemoryModule a ``backend`` property that only accepts its own backends;
    # the neutral soma's ``backend`` property comes first in the MRO, so that version's
    # ``functional.set_backend(net, "cupy")`` switches these neurons as it switches its own.
    @property
    def supported_backends(self) -> tuple:
        return BACKENDS

    # Step-mode entry points written out (SpikingJelly 2.0 would derive them from the functional forwards below;
    # the legacy MemoryModule has no such path).
    def single_step_forward(self, x, *args, **kwargs):
        s, state = self.step_fn(x, self._load_state())
        self._store_state(state)
        return s

    def multi_step_forward(self, x_seq, *args, **kwargs):
        s, state = self.seq_fn(x_seq, self._load_state())
        self._store_state(state)
        return s

    def single_step_functional_forward(self, inputs, states, **kwargs):
        s, state = self.step_fn(inputs[0], NeuronState(*states))
        return (s,), tuple(state)

    def multi_step_functional_forward(self, inputs, states, **kwargs):
        s, state = self.seq_fn(inputs[0], NeuronState(*states))
        return (s,), tuple(state)

    forward = base.MemoryModule.forward

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, step_mode={self.step_mode!r}"


@register("lif", framework="spikingjelly")
class LIF(_MemoryNeuron, core.LIF, base.MemoryModule):
    """The SpikingSSM LIF soma as a SpikingJelly neuron.

    Args:
        channels (int, optional): channel count; ``None`` infers it at the first call. Default: ``None``.
        step_mode (str): ``'s'`` (one step ``[B, C, *]``) or ``'m'`` (``[T, B, C, *]``). Default: ``'s'``.
        surrogate_function (callable, optional): a SpikingJelly surrogate (e.g. ``surrogate.ATan()``) used instead
            of ``surrogate``.
        **kwargs: soma options (``beta``, ``v_th``, ``reset``, ``grad_mode``, ``surrogate``, ...), see
            :class:`snn_ssm.layers.LIFSoma`.

    Examples::

        >>> from spikingjelly.activation_based import functional
        >>> lif = LIF(8, step_mode="m")
        >>> s = lif(torch.rand(16, 4, 8)); functional.reset_net(lif)
    """


@register("ssm_dendrite_lif", framework="spikingjelly")
class SSMDendriteLIF(_MemoryNeuron, core.SSMDendriteLIF, base.MemoryModule):
    """SpikingSSM's S4D-dendrite LIF neuron as a SpikingJelly neuron (arguments of
    :class:`snn_ssm.layers.SSMDendriteLIF` plus ``step_mode`` and ``surrogate_function`` as in :class:`LIF`).

    Examples::

        >>> from spikingjelly.activation_based.model import parametric_lif_net
        >>> net = parametric_lif_net.MNISTNet(channels=8, spiking_neuron=SSMDendriteLIF, step_mode="m")
    """


@register("spike_sampler", framework="spikingjelly")
class SpikeSampler(sampler.SpikeSampler, base.MemoryModule):
    """P-SpikeSSM's stochastic spiking neuron (:class:`snn_ssm.layers.SpikeSampler`) as a SpikingJelly module.

    Stateless (no memories), so step modes ``'s'`` (``[B, C, *]``) and ``'m'`` (``[T, B, C, *]``) give the same
    spikes for the same noise; ``reset_net`` and ``set_step_mode`` reach it like any SpikingJelly module.

    Examples::

        >>> s = SpikeSampler(8, step_mode="m", seed=0)(torch.rand(16, 4, 8))
    """

    def __init__(self, channels: int | None = None, *, step_mode: str = "s", **kwargs):
        super().__init__(channels, **kwargs)
        self.step_mode = step_mode

    def single_step_forward(self, x, *args, **kwargs):
        """Spikes for one step ``x`` ``[B, C, *]`` (step mode ``'s'``)."""
        return sampler.SpikeSampler.step(self, x)

    def multi_step_forward(self, x_seq, *args, **kwargs):
        """Spikes for a sequence ``x_seq`` ``[T, B, C, *]`` (step mode ``'m'``)."""
        return sampler.SpikeSampler.forward(self, x_seq)

    def forward(self, *args, **kwargs):
        """SpikingJelly's dispatch on ``step_mode``: :meth:`single_step_forward` or :meth:`multi_step_forward`."""
        return base.MemoryModule.forward(self, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, step_mode={self.step_mode!r}"
