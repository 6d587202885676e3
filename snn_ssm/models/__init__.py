"""Backbones registered by name: ``spikingssm``, ``s4d``, ``pssm``, ``binary_s4d``, ``binary_s4d_gsu``, and the
language models ``spikingssm_lm``, ``s4d_lm``."""
from .backbone import S4D, SequenceClassifier, SpikingSSM
from .binary import BINARY_CONFIGS, BinaryS4DGSUNet, BinaryS4DNet
from .lm import LM_SIZES, CausalLM, S4DLM, SpikingSSMLM
from .pssm import PSSM_CONFIGS, PSpikeSSM

__all__ = ["SequenceClassifier", "SpikingSSM", "S4D", "PSpikeSSM", "PSSM_CONFIGS", "BinaryS4DNet", "BinaryS4DGSUNet",
           "BINARY_CONFIGS", "CausalLM", "SpikingSSMLM", "S4DLM", "LM_SIZES"]
