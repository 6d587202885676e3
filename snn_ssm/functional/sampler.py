r"""P-SpikeSSM's stochastic spike, as pure functions.

.. math::

    p = \operatorname{clamp}(u, 0, 1), \qquad s = \mathbb{1}[p > \xi], \quad \xi \sim U(0, 1)
    \;\Rightarrow\; s \sim \operatorname{Bernoulli}(p)

Both functions use the straight-through estimator of the clamp in the backward pass: the gradient of ``s`` (or of
``p``) with respect to ``u`` is ``1`` where ``0 <= u <= 1`` and ``0`` outside, i.e. the gradient of the spike's
expectation ``E[s] = clamp(u, 0, 1)`` as ``torch.clamp`` gives it (inclusive at the ends, as P-SpikeSSM's code
has it: a silent channel, ``u = 0`` exactly at initialisation, still learns its bias).
"""
from __future__ import annotations

import torch

__all__ = ["sample_spikes", "clamped"]


class _ClampGradient(torch.autograd.Function):
    """Base: the backward is the clamp's straight-through gradient ``1[0 <= u <= 1]`` (subclasses give the
    forward)."""

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad * ((u >= 0) & (u <= 1)).to(grad.dtype), None


class _Sample(_ClampGradient):
    @staticmethod
    def forward(ctx, u, noise):
        ctx.save_for_backward(u)
        return (u > noise).to(u.dtype)


class _Clamped(_ClampGradient):
    @staticmethod
    def forward(ctx, u, threshold):
        ctx.save_for_backward(u)
        p = u.clamp(0, 1)
        return p if threshold is None else (p > threshold).to(u.dtype)


def sample_spikes(u: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``1[u > noise]`` with the clamp's straight-through gradient (``noise`` ~ U(0, 1) gives Bernoulli(clamp(u))).

    Examples::

        >>> sample_spikes(torch.tensor([0.2, 0.8, 1.5]), torch.tensor([0.5, 0.5, 0.5]))
        tensor([0., 1., 1.])
    """
    return _Sample.apply(u, noise)


def clamped(u: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
    """``clamp(u, 0, 1)`` (or ``1[clamp(u, 0, 1) > threshold]``) with the same straight-through gradient: the
    sampler's deterministic evaluation modes.

    Examples::

        >>> clamped(torch.tensor([-0.5, 0.3, 2.0])), clamped(torch.tensor([0.3, 0.7]), 0.5)
        (tensor([0.0000, 0.3000, 1.0000]), tensor([0., 1.]))
    """
    return _Clamped.apply(u, threshold)
