"""Activity metrics: spike rates, synaptic operations and energy."""
from .energy import E_AC_PJ, E_MAC_PJ, EnergyMeter, is_spikes
from .spikes import SpikeRateMonitor

__all__ = ["SpikeRateMonitor", "EnergyMeter", "E_MAC_PJ", "E_AC_PJ", "is_spikes"]
