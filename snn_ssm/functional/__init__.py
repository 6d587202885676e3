"""Pure-PyTorch references: no module state, ``(x, state, params) -> (out, new_state)``."""
from . import s4, s4d, surrogate
from .lif import lif_seq, lif_step
from .surrogate import spike

__all__ = ["s4", "s4d", "surrogate", "lif_seq", "lif_step", "spike"]
