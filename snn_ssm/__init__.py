"""snn_ssm: spiking state-space neurons and layers for PyTorch, snnTorch and SpikingJelly.

Glossary (every public tensor is time-first):
    T  time steps (sequence length)            B  batch
    C  channels that own parameters (dim 2 of a neuron's ``[T, B, C, *]`` input; H in the sequence layers)
    H  model width d_model of a sequence layer ``[T, B, H]``
    N  S4D state size per channel (N/2 complex modes)
    v  membrane potential, in units of the threshold      s  spikes in {0, 1}

Layout: neurons take ``[T, B, C, *]`` (multi-step) or ``[B, C, *]`` (one step); sequence layers and models take
``[T, B, H]`` / ``[T, B, d_input]``. Framework adapters live in ``snn_ssm.snntorch`` and ``snn_ssm.spikingjelly``
and are imported only when used.
"""
from . import functional
from .blocks import (BinaryS4D, ClampFuse, GatedSpikingUnit, PSpikeSSMBlock, ResidualBlock, S4DGSU, S4DLayer,
                     SpikeMixer, SpikingS4D)
from .convert import swap_neurons, to_exact
from .functional.lif import SomaOptions
from .layers import (LIF, LIFSoma, NeuronState, S4DDendrite, S4DOptions, S4DPLR, SpikeSampler, SSMDendriteLIF,
                     reset_states, set_backend)
from .models import S4D, BinaryS4DGSUNet, BinaryS4DNet, PSpikeSSM, SequenceClassifier, SpikingSSM
from .memory import reuse_cpu_memory
from .models.pretrained import pretrained
from .optim import param_groups
from .registry import create, list_plugins, register

__version__ = "0.1.0"

__all__ = [
    "functional", "LIF", "SSMDendriteLIF", "LIFSoma", "S4DDendrite", "NeuronState", "SpikingS4D", "S4DLayer",
    "ResidualBlock", "SpikingSSM", "S4D", "SequenceClassifier", "create", "pretrained", "list_plugins", "register",
    "reuse_cpu_memory",
    "swap_neurons", "to_exact", "reset_states", "set_backend", "param_groups", "__version__", "SomaOptions",
    "S4DOptions",
    "S4DPLR", "SpikeSampler", "SpikeMixer", "ClampFuse", "PSpikeSSMBlock", "PSpikeSSM",
    "BinaryS4D", "GatedSpikingUnit", "S4DGSU", "BinaryS4DNet", "BinaryS4DGSUNet",
]
