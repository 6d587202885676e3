"""What the exporter and the importer agree on: the threshold convention, gains, and metadata encoding."""
from __future__ import annotations

import math

import numpy as np
import torch

# A gain dt·r/τ this close to 1 is 1: the exporter writes r = τ/dt, which float64 rounds.
GAIN_TOL = 1e-9


def fire_below(dtype: torch.dtype) -> float:
    """The largest number below 1 in ``dtype``: NIR fires on ``v > θ``, we on ``u ≥ 1``; for a membrane held in
    ``dtype`` the two agree exactly when θ is this number."""
    np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    return float(np.nextafter(np.array(1, np_dtype), np.array(0, np_dtype)))


def as_gain(value: np.ndarray) -> np.ndarray | None:
    """``None`` when every entry of a gain is 1 within :data:`GAIN_TOL` (no multiplication), else the gain."""
    value = np.asarray(value, dtype=np.float64)
    return None if np.all(np.abs(value - 1.0) <= GAIN_TOL) else value


def to_numpy(t: torch.Tensor, dtype=None) -> np.ndarray:
    a = t.detach().cpu()
    if dtype is not None:
        a = a.to(dtype)
    return a.numpy().copy()


def decode(value):
    """A metadata value as written (h5py gives back bytes for strings and 0-d arrays for numbers)."""
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def check_dt(dt) -> float:
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a positive finite number (the simulation step), got {dt!r}")
    return float(dt)
