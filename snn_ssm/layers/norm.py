"""``ChannelNorm``: BatchNorm or LayerNorm over the channel dimension of a time-first tensor."""
from __future__ import annotations

import torch
from torch import nn

from .. import _checks

__all__ = ["ChannelNorm", "NORMS"]

NORMS = ("batch", "layer")


class ChannelNorm(nn.Module):
    """BatchNorm (statistics over every position but the channel) or LayerNorm over the channel dimension ``dim``
    (2 for ``[T, B, C, *]`` and ``[T, B, H]``; the sequence layers' residual norms and the spike sampler's).

    Examples::

        >>> ChannelNorm(8, "batch")(torch.randn(10, 2, 8, 3)).shape    # normalises dim 2
        torch.Size([10, 2, 8, 3])
    """

    def __init__(self, channels: int, kind: str, dim: int = 2, device=None, dtype=None):
        super().__init__()
        self.kind, self.dim = _checks.one_of(kind, "norm", NORMS), dim
        fk = {"device": device, "dtype": dtype}
        self.norm = nn.BatchNorm1d(channels, **fk) if kind == "batch" else nn.LayerNorm(channels, **fk)

    def forward(self, x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
        d = self.dim if dim is None else dim
        moved = x.movedim(d, -1)
        if self.kind == "layer":
            return self.norm(moved).movedim(-1, d)
        return self.norm(moved.reshape(-1, moved.shape[-1])).reshape(moved.shape).movedim(-1, d)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, dim={self.dim}"
