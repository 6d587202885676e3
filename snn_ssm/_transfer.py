"""Moving batches to the GPU without making the host wait for it."""
from __future__ import annotations

import torch

__all__ = ["to_device"]


def to_device(t: torch.Tensor, device) -> torch.Tensor:
    """``t`` on ``device``. A CPU tensor bound for CUDA goes through pinned memory as a copy the host does not wait
    for: a plain ``.to("cuda")`` first waits for all GPU work already queued, so a training loop could not prepare
    its next batch while the GPU runs the current step. The copy is ordered on the current stream before any kernel
    queued after it, and the pinned buffer is not reused until the copy has run (PyTorch's pinned allocator records
    the stream).

    Examples::

        >>> to_device(torch.arange(3), "cpu").tolist()
        [0, 1, 2]
    """
    device = torch.device(device)
    if t.device == device:
        return t
    if device.type == "cuda" and t.device.type == "cpu":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)
