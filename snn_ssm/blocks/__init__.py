"""Sequence layers and residual blocks on ``[T, B, H]``."""
from .binary import BinaryS4D, GatedSpikingUnit, HeavisideSpike, S4DGSU, TernarySpike, ternary_weight
from .pssm import ClampFuse, PSpikeSSMBlock, SpikeMixer
from .residual import ResidualBlock, SequenceNorm
from .s4d_layer import S4DLayer, SpikingS4D, TimeTiedDropout

__all__ = ["ResidualBlock", "SequenceNorm", "S4DLayer", "SpikingS4D", "TimeTiedDropout", "SpikeMixer", "ClampFuse",
           "PSpikeSSMBlock", "BinaryS4D", "GatedSpikingUnit", "HeavisideSpike", "S4DGSU", "TernarySpike",
           "ternary_weight"]
