"""Residual wrapper with pre- or post-normalisation for ``[T, B, H]`` sequence layers."""
from __future__ import annotations

import torch
from torch import nn

from ..layers.norm import ChannelNorm
from .common import TimeTiedDropout

__all__ = ["ResidualBlock"]


class ResidualBlock(nn.Module):
    """``x + dropout(layer(norm(x)))`` (prenorm) or ``norm(x + dropout(layer(x)))`` (postnorm).

    Post-norm really normalises the sum. (SpikingSSM's released backbone assigns the post-norm result to a
    variable it never uses, so its "post-norm" configs run without normalisation; we do not reproduce that.)

    Examples::

        >>> from snn_ssm.blocks import SpikingS4D
        >>> block = ResidualBlock(SpikingS4D(16), 16, norm="layer", prenorm=True)
        >>> block(torch.randn(50, 2, 16)).shape
        torch.Size([50, 2, 16])
    """

    def __init__(self, layer: nn.Module, d_model: int, *, norm: str | None = "layer", prenorm: bool = True,
                 dropout: float = 0.0, device=None, dtype=None):
        super().__init__()
        self.layer = layer
        self.norm = ChannelNorm(d_model, norm, device=device, dtype=dtype) if norm is not None else nn.Identity()
        self.prenorm = prenorm
        self.dropout = TimeTiedDropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.prenorm:
            return x + self.dropout(self.layer(self.norm(x)))
        return self.norm(x + self.dropout(self.layer(x)))

    def extra_repr(self) -> str:
        return f"prenorm={self.prenorm}"
