r"""Ternary quantisers of the Gated Spiking Unit (Stan & Rhodes 2024), with straight-through gradients.

.. math::

    \operatorname{Tern}(W)_{ij} = \alpha_i\,\operatorname{sign}(W_{ij})\,\mathbb{1}[|W_{ij}| > \Delta_i], \quad
    \Delta_i = f\cdot\operatorname{mean}_j |W_{ij}|, \quad
    \alpha_i = \operatorname{mean}\{|W_{ij}| : |W_{ij}| > \Delta_i\}

    \operatorname{Tern}(y) = \operatorname{sign}(y)\,\mathbb{1}[|y| > \delta]

Gradients: the identity for weights; for activations the identity clipped to ``|y| <= clip`` (the hard-tanh
estimator of binarised networks), so saturated entries stop pushing.
"""
from __future__ import annotations

import torch

__all__ = ["ternary_weight", "ternary_activation"]


class _TernaryWeight(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, factor):
        delta = factor * w.abs().mean(dim=1, keepdim=True)
        keep = w.abs() > delta
        alpha = (w.abs() * keep).sum(1, keepdim=True) / keep.sum(1, keepdim=True).clamp_min(1)
        return alpha * torch.sign(w) * keep

    @staticmethod
    def backward(ctx, grad):
        return grad, None  # straight-through


class _TernaryAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, delta, clip):
        ctx.save_for_backward(y)
        ctx.clip = clip
        return torch.sign(y) * (y.abs() > delta).to(y.dtype)

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (y.abs() <= ctx.clip).to(grad.dtype), None, None


def ternary_weight(w: torch.Tensor, factor: float = 0.7) -> torch.Tensor:
    """``α·sign(W)·1[|W| > Δ]`` per output row (``Δ = factor·mean|W|``, ``α`` the mean kept magnitude), with the
    identity straight-through gradient.

    Examples::

        >>> ternary_weight(torch.tensor([[0.1, -0.9, 0.5, 0.02]]))
        tensor([[ 0.0000, -0.7000,  0.7000,  0.0000]])
    """
    return _TernaryWeight.apply(w, factor)


def ternary_activation(y: torch.Tensor, threshold: float = 0.5, clip: float = 1.0) -> torch.Tensor:
    """``sign(y)·1[|y| > threshold]`` in {−1, 0, 1}, with the gradient ``1[|y| <= clip]``.

    Examples::

        >>> ternary_activation(torch.tensor([-0.9, 0.1, 0.7]))
        tensor([-1.,  0.,  1.])
    """
    return _TernaryAct.apply(y, threshold, clip)
