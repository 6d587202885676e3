"""Input validation shared by every public entry point: clear errors that name the argument.

Where checks run (CONTRIBUTING.md, "Checks at the edges"): options are checked once, when their options object is
built; tensors are checked where they enter the package (a model, a public neuron or layer, a public op). A module
called by another snn_ssm module runs inside :func:`checked`, so it keeps only the cheap shape checks and skips
the finite check, a full reduction with a device→host synchronisation.
"""
from __future__ import annotations

import contextlib
import math

import torch

__all__ = ["check_tensor", "check_sequence", "check_finite", "checked", "trusted", "positive_int", "positive_number",
           "in_range", "one_of"]

_depth = 0  # > 0 while an snn_ssm caller has checked its input: nested modules trust what they are given


@contextlib.contextmanager
def checked():
    """Mark the calls inside as internal: :func:`check_finite` does nothing there (its caller already checked)."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1


def trusted(x: torch.Tensor) -> bool:
    """Whether value checks of ``x`` (full reductions, a device→host synchronisation on a GPU) are skipped: inside
    :func:`checked`, where the caller has checked what it passes down; under torch.compile, since a compiled model
    trusts its input (the check would break the graph and wait for the device at every call); and while a CUDA graph
    is being captured, which forbids synchronising."""
    return torch.compiler.is_compiling() or bool(_depth) or (x.is_cuda and torch.cuda.is_current_stream_capturing())


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or Inf (unless :func:`trusted`)."""
    if trusted(x):
        return
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf; spiking neurons reject non-finite input")


def check_tensor(x, name: str, *, min_ndim: int, layout: str, allow_empty_time: bool = False,
                 device_of: torch.Tensor | None = None) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``x`` is a finite real floating tensor of rank >= ``min_ndim``
    (on the device of ``device_of``, when given).

    Non-finite values are rejected rather than propagated: a NaN membrane never fires and never recovers, which
    would otherwise turn one bad sample into a silently dead neuron.
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
    check_finite(x, name)


def check_sequence(x, name: str, *, channels: int | None, like: torch.Tensor, ndim: int = 3,
                   layout: str = "[T, B, H]", channel_dim: int = 2) -> torch.Tensor:
    """:func:`check_tensor` for a sequence layer's input of exactly ``ndim`` dims with ``channels`` along
    ``channel_dim`` (``None``: any), returned in the dtype of the module's parameter ``like`` (a float64 array from
    numpy meets a float32 model as float32, as the neurons take it)."""
    check_tensor(x, name, min_ndim=ndim, layout=layout, device_of=like)
    if x.ndim != ndim or (channels is not None and x.shape[channel_dim] != channels):
        names = layout.strip("[]").split(", ")
        if channels is not None:
            names[channel_dim] += f"={channels}"
        want = "[" + ", ".join(names) + "]"
        raise ValueError(f"{name} must have layout {want}, got shape {tuple(x.shape)}")
    return x.to(like.dtype)


def positive_int(value, name: str, *, allow_none: bool = False):
    """``value`` if it is an int >= 1 (not a bool), else ``ValueError`` naming ``name``."""
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")
    return value


def positive_number(value, name: str) -> float:
    """``float(value)`` if it is a finite real number > 0 (not a bool), else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


def in_range(value, name: str, low: float, high: float, *, high_open: bool = False) -> float:
    """``float(value)`` if ``low <= value <= high`` (``< high`` with ``high_open``), else ``ValueError``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value and \
        (value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f"{name} must be a number in [{low:g}, {high:g}{')' if high_open else ']'}, got {value!r}")
    return float(value)


def one_of(value, name: str, choices: tuple):
    """``value`` if it is one of ``choices``, else ``ValueError`` listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value
