"""Input validation shared by every public entry point: clear errors that name the argument."""
from __future__ import annotations

import torch


def check_tensor(x, name: str, *, min_ndim: int, layout: str, allow_empty_time: bool = False,
                 device_of: torch.Tensor | None = None) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``x`` is a finite real floating tensor of rank >= ``min_ndim``
    (on the device of ``device_of``, when given).

    Non-finite values are rejected rather than propagated: a NaN membrane never fires and never recovers, which
    would otherwise turn one bad sample into a silently dead neuron. (The check is skipped while
    ``torch.compile`` traces, where it would break the graph.)
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of layout {layout}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype (float16/bfloat16/float32/float64), got {x.dtype}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have layout {layout} (at least {min_ndim} dims), got shape {tuple(x.shape)}")
    if not allow_empty_time and x.shape[0] == 0:
        raise ValueError(f"{name} has zero length along its first dim (layout {layout}); need at least one step")
    if device_of is not None and x.device != device_of.device:
        raise ValueError(f"{name} is on {x.device} but the module's parameters are on {device_of.device}; "
                         f"move one of them with .to()")
    if not torch.compiler.is_compiling() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf; spiking neurons reject non-finite input")

