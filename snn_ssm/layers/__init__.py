"""Framework-neutral modules: the S4D dendrite, the LIF soma, and the stateful neurons built from them."""
from .dendrite import S4DDendrite
from .neurons import LIF, NeuronState, SSMDendriteLIF
from .soma import LIFSoma

__all__ = ["S4DDendrite", "LIFSoma", "LIF", "SSMDendriteLIF", "NeuronState"]
