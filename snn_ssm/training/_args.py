"""Checks of command-line values shared by every command (``train``, ``eval``, ``demo``, ``sdn-train``,
``sdn-report``): each raises ``ValueError`` with a message that the command prints as ``error: ...`` (exit 2)."""
from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import torch


def check_device(device: str) -> str:
    """``device`` if this machine has it."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {device!r} is not a device: use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: this machine has no CUDA GPU (torch {torch.__version__}); use --device "
                         f"cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) here")
    return device


@contextlib.contextmanager
def cpu_threads(threads: int | None, device: str):
    """PyTorch's CPU thread pool sized for a command on ``device`` while the block runs (restored after, so a
    command called from Python leaves the caller's setting as it was): ``threads`` if given, else one thread when
    the model runs on a GPU (the CPU then only prepares batches, which a pool of one thread per core stalls whenever
    another process keeps a core busy: ``benchmarks/bench_batch_prep.py``), else PyTorch's default."""
    if threads is None and torch.device(device).type == "cuda":
        threads = 1
    if threads is not None:
        positive(threads, "--cpu-threads", integer=True)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def writable_folder(folder, flag: str = "--out") -> Path:
    """``folder`` created if needed and proven writable, before any work is done."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{flag} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"{flag} {folder} cannot be written: {e.strerror or e}") from None
    return folder


def positive(value, flag: str, *, integer: bool = False):
    """``value`` if it is a finite number > 0 (an int with ``integer``)."""
    ok = isinstance(value, int) if integer else isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or value <= 0:
        raise ValueError(f"{flag} must be a {'positive integer' if integer else 'finite number > 0'}, got {value!r}")
    return value
