"""Inference-time copies of weights (another dtype, or transposed), made once and kept until the weight changes."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["inference_copy"]


def inference_copy(owner: nn.Module, weight: torch.Tensor, dtype: torch.dtype, *,
                   transpose: bool = False) -> torch.Tensor:
    """``weight`` (detached) in ``dtype``, ``.t().contiguous()`` when ``transpose``: a copy kept on ``owner`` until
    the weight changes (an optimizer step or ``load_state_dict`` bumps its version; ``.to()`` gives new storage).
    For the recurrent forms (generation), which would otherwise cast or transpose a whole matrix at every token.

    Examples::

        >>> lin = nn.Linear(4, 8)
        >>> inference_copy(lin, lin.weight, torch.bfloat16).dtype
        torch.bfloat16
        >>> inference_copy(lin, lin.weight, torch.float32, transpose=True).shape
        torch.Size([4, 8])
    """
    cache = owner.__dict__.setdefault("_inference_copies", {})
    key = (id(weight), dtype, transpose)
    version = (weight.data_ptr(), weight._version, weight.dtype, weight.device)
    hit = cache.get(key)
    if hit is None or hit[0] != version:
        w = weight.detach().to(dtype)
        hit = cache[key] = (version, w.t().contiguous() if transpose else w.contiguous())
    return hit[1]
