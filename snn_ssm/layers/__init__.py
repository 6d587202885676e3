"""Framework-neutral modules: the S4D and S4 (DPLR) SSMs, the LIF soma, the stateful neurons built from them,
P-SpikeSSM's spike sampler, stateless spike functions and the channel norm."""
from .dendrite import S4DDendrite, S4DOptions
from .emitter import SpikeEmitter
from .neurons import LIF, NeuronState, SSMDendriteLIF, reset_states
from .norm import ChannelNorm
from .s4 import S4DPLR
from .sampler import SpikeSampler
from .soma import LIFSoma, set_backend
from .spikes import HeavisideSpike, TernarySpike

__all__ = ["S4DDendrite", "S4DOptions", "S4DPLR", "LIFSoma", "LIF", "SSMDendriteLIF", "NeuronState", "SpikeSampler",
           "ChannelNorm", "SpikeEmitter", "HeavisideSpike", "TernarySpike", "reset_states", "set_backend"]
