"""Pieces every sequence block uses: ``TimeTiedDropout``."""
from __future__ import annotations

import torch
from torch import nn

from .. import _checks

__all__ = ["TimeTiedDropout"]


class TimeTiedDropout(nn.Module):
    """Dropout with one mask per (batch, channel), shared over time (S4's ``DropoutNd``) for ``[T, B, H]``.

    Examples::

        >>> drop = TimeTiedDropout(0.5)
        >>> y = drop(torch.ones(10, 2, 4))
        >>> bool((y == y[0]).all())      # one mask per (batch, channel), the same at every step
        True
    """

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = _checks.in_range(p, "dropout", 0, 1, high_open=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        mask = torch.rand(x.shape[1:], device=x.device) >= self.p  # (B H)
        return x * mask / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
