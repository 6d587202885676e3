"""Activity metrics."""
from .spikes import SpikeRateMonitor

__all__ = ["SpikeRateMonitor"]
