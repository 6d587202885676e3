"""Sequence layers and residual blocks on ``[T, B, H]``."""
from .common import TimeTiedDropout
from .gsu import GatedSpikingUnit, S4DGSU
from .pssm import ClampFuse, PSpikeSSMBlock, SpikeMixer
from .residual import ResidualBlock
from .s4d_layer import BinaryS4D, S4DLayer, S4DLayerBase, SpikingS4D

__all__ = ["ResidualBlock", "S4DLayerBase", "S4DLayer", "SpikingS4D", "BinaryS4D", "TimeTiedDropout", "SpikeMixer",
           "ClampFuse", "PSpikeSSMBlock", "GatedSpikingUnit", "S4DGSU"]
