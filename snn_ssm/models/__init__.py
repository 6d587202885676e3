"""Backbones registered by name: ``spikingssm``, ``s4d``, ``pssm``."""
from .backbone import S4D, SequenceClassifier, SpikingSSM
from .pssm import PSSM_CONFIGS, PSpikeSSM

__all__ = ["SequenceClassifier", "SpikingSSM", "S4D", "PSpikeSSM", "PSSM_CONFIGS"]
