"""Backbones registered by name: ``spikingssm`` and ``s4d``."""
from .backbone import S4D, SequenceClassifier, SpikingSSM

__all__ = ["SequenceClassifier", "SpikingSSM", "S4D"]
