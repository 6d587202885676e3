"""Framework-neutral modules: the S4D and S4 (DPLR) SSMs, the LIF soma, the stateful neurons built from them, and
P-SpikeSSM's spike sampler."""
from .dendrite import S4DDendrite
from .emitter import SpikeEmitter
from .neurons import LIF, NeuronState, SSMDendriteLIF
from .s4 import S4DPLR
from .sampler import ChannelNorm, SpikeSampler
from .soma import LIFSoma

__all__ = ["S4DDendrite", "S4DPLR", "LIFSoma", "LIF", "SSMDendriteLIF", "NeuronState", "SpikeSampler", "ChannelNorm",
           "SpikeEmitter"]
