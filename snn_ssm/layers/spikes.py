"""Stateless spike functions as modules: the Heaviside spike of Binary S4D and the ternary spike of the GSU."""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import _checks
from ..functional.quant import ternary_activation
from ..functional.surrogate import resolve
from .emitter import SpikeEmitter

__all__ = ["HeavisideSpike", "TernarySpike"]


class HeavisideSpike(SpikeEmitter, nn.Module):
    """``H(y − θ)`` with a surrogate gradient (a stateless spike function; its output is the spikes).

    Args:
        channels (int): channels (for a learnable per-channel θ).
        threshold (float): θ. Default: ``0.0`` (the definition ``H(C h + D x)``).
        learn_threshold (bool): make θ a per-channel parameter. Default: ``False``.
        surrogate (str or callable): ``"atan"`` (default, the paper's), ``"fast_sigmoid"``, ``"triangle"``,
            ``"sigmoid"`` or a callable. alpha (float, optional): its sharpness.

    Examples::

        >>> HeavisideSpike(3, threshold=0.5)(torch.tensor([[0.2, 0.5, 0.9]]))
        tensor([[0., 1., 1.]])
    """

    def __init__(self, channels: int, *, threshold: float = 0.0, learn_threshold: bool = False,
                 surrogate="atan", alpha: float | None = None, device=None, dtype=None):
        super().__init__()
        self.fire = resolve(surrogate, alpha)
        _checks.positive_int(channels, "channels")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number, got {threshold!r}")
        theta = torch.full((channels,), float(threshold), device=device, dtype=dtype)
        if learn_threshold:
            self.threshold = nn.Parameter(theta)
        else:
            self.register_buffer("threshold", theta)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` ``[..., C]`` → spikes in {0, 1}."""
        return self.fire(y - self.threshold)

    def extra_repr(self) -> str:
        return f"surrogate={self.fire!r}, learn_threshold={isinstance(self.threshold, nn.Parameter)}"


class TernarySpike(SpikeEmitter, nn.Module):
    """Ternary spikes ``sign(y)·1[|y| > δ]`` in {−1, 0, 1} with a clipped straight-through gradient
    (``∂/∂y = 1[|y| ≤ clip]``; :func:`~snn_ssm.functional.quant.ternary_activation`).

    Examples::

        >>> TernarySpike(0.5)(torch.tensor([-0.9, 0.1, 0.7]))
        tensor([-1.,  0.,  1.])
    """

    def __init__(self, threshold: float = 0.5, clip: float = 1.0):
        super().__init__()
        if not threshold >= 0 or not clip > 0:
            raise ValueError(f"need threshold >= 0 and clip > 0, got threshold={threshold!r}, clip={clip!r}")
        self.threshold, self.clip = float(threshold), float(clip)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return ternary_activation(y, self.threshold, self.clip)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold:g}, clip={self.clip:g}"
