"""Pure-PyTorch references: no module state, ``(x, state, params) -> (out, new_state)``."""
from . import lif, quant, s4, s4d, sampler, surrogate
from .lif import SomaOptions, lif_seq, lif_step
from .surrogate import spike

__all__ = ["lif", "quant", "s4", "s4d", "sampler", "surrogate", "SomaOptions", "lif_seq", "lif_step", "spike"]
