"""Host memory for CPU runs: large tensors served from memory the process already has.

glibc's ``malloc`` hands every block above its mmap threshold (at most 32 MiB with its defaults) to a fresh
``mmap`` and returns it to the kernel on ``free``. A sequence model's activations are larger than that (the sMNIST
layer's ``[784, 50, 400]`` float32 tensor is 63 MB), so each step of a CPU run maps them again, and the kernel
zeroes every page at its first touch: evaluating the shipped sMNIST model spent 3.6 of its 4.5 minutes of CPU time
in the kernel that way. :func:`reuse_cpu_memory` raises both thresholds so that freed blocks stay in the heap and
the next step reuses them. The command line (``python -m snn_ssm ...``) calls it at start; a script can call it
once, before its first step.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["reuse_cpu_memory"]

# mallopt(3) parameters; glibc takes an int, so the largest threshold is 2 GiB - 1 (larger blocks still use mmap).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_THRESHOLD = 2**31 - 1
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
_applied = False


def reuse_cpu_memory() -> bool:
    """Keep freed host memory for reuse instead of unmapping it (glibc on Linux): large tensors are then served
    from the heap, without a page fault per page at every step. Returns whether the setting is in effect.

    Nothing changes elsewhere (another C library, or ``jemalloc``/``tcmalloc`` preloaded, which reuse memory on
    their own) or where the environment already sets glibc's thresholds (``MALLOC_MMAP_THRESHOLD_``,
    ``MALLOC_TRIM_THRESHOLD_``, ``GLIBC_TUNABLES``): the user's choice stands. The cost is that the process keeps
    its peak heap after a peak has passed, as a training loop does anyway.

    Examples::

        >>> import snn_ssm
        >>> snn_ssm.reuse_cpu_memory() in (True, False)
        True
    """
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux") or any(k in os.environ for k in _ENV):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt thresholds to set)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _THRESHOLD))
    return _applied
