"""Spike-rate monitoring with forward hooks."""
from __future__ import annotations

from torch import nn

from ..layers.emitter import SpikeEmitter

__all__ = ["SpikeRateMonitor"]


class SpikeRateMonitor:
    """Count the spikes of every spiking module of ``model`` (each :class:`~snn_ssm.layers.SpikeEmitter`: LIF somas
    and neurons, spike samplers, Heaviside and ternary spike functions) while active (a context manager).

    ``rates()`` gives the mean firing rate per module name (spikes per neuron per step); sparsity is ``1 - rate``.
    Modules whose output is a tuple (snnTorch neurons: ``(spk, mem)``) are counted on its first element.

    Examples::

        >>> model, x = snn_ssm.SpikingSSM(1, 10, d_model=16, n_layers=2), torch.rand(100, 4, 1)
        >>> with SpikeRateMonitor(model) as mon:
        ...     _ = model(x)
        >>> sorted(mon.rates())
        ['blocks.0.layer.soma', 'blocks.1.layer.soma']
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._handles = []

    def _hook(self, name):
        def hook(module, inputs, output):
            s = output[0] if isinstance(output, tuple) else output
            s = s.detach()
            # Dropout on spikes scales them to 1/(1-p) in training: count events, not their value.
            self._sums[name] = self._sums.get(name, 0.0) + float((s != 0).sum())
            self._counts[name] = self._counts.get(name, 0) + s.numel()
        return hook

    def __enter__(self):
        for name, m in self.model.named_modules():
            if isinstance(m, SpikeEmitter):
                self._handles.append(m.register_forward_hook(self._hook(name or type(m).__name__)))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def rates(self) -> dict[str, float]:
        return {k: self._sums[k] / self._counts[k] for k in self._sums}

    def sparsity(self) -> dict[str, float]:
        """``1 − rate`` per module."""
        return {k: 1 - r for k, r in self.rates().items()}

    def mean_rate(self) -> float:
        total = sum(self._counts.values())
        return sum(self._sums.values()) / total if total else float("nan")
