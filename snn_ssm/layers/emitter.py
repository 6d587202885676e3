"""The marker of a module whose forward output is spikes (the hook point of spike-rate and energy metrics)."""
from __future__ import annotations

__all__ = ["SpikeEmitter"]


class SpikeEmitter:
    """Mixin for modules whose ``forward`` returns the spikes they emit (binary or ternary events).

    Metrics find these modules by type and read their spikes through a forward hook
    (:class:`snn_ssm.metrics.SpikeRateMonitor`), so nothing is kept once the forward returns unless somebody
    registered a hook. Spikes scaled by dropout count as events, whatever their value.

    Examples::

        >>> from snn_ssm import LIF, SpikeSampler
        >>> isinstance(LIF(4), SpikeEmitter) and isinstance(SpikeSampler(4), SpikeEmitter)
        True
    """
