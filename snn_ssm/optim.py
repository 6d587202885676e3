"""Optimizer parameter groups as the S4 family trains them."""
from __future__ import annotations

from torch import nn

from .layers._channels import ChannelModule

__all__ = ["param_groups"]


def param_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
    """Split ``model``'s parameters into optimizer groups.

    - SSM parameters tagged with ``_optim`` (A, Δ and a trainable B of the S4D dendrites) get their tagged
      ``lr``/``weight_decay`` (1e-3, 0);
    - biases, normalisation and embedding weights, and thresholds ``ln_vth`` get ``weight_decay=0`` (decay would
      pull v_th towards 1, a pitfall of the official code);
    - everything else gets ``lr`` and ``weight_decay``.

    Lazily built neurons must have seen one batch first. Examples::

        >>> model = snn_ssm.SpikingSSM(1, 10, d_model=16, n_layers=1)
        >>> opt = torch.optim.AdamW(param_groups(model, lr=1e-2, weight_decay=1e-2))
    """
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < float("inf"):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or \
            not 0 <= weight_decay < float("inf"):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    lazy = [name or type(m).__name__ for name, m in model.named_modules()
            if isinstance(m, ChannelModule) and not m.built]
    if lazy:
        raise ValueError(f"{len(lazy)} module(s) have not built their parameters yet ({', '.join(lazy[:3])}"
                         f"{', ...' if len(lazy) > 3 else ''}): they infer their channel count from the first input, "
                         f"so run one batch through the model before building the optimizer")
    no_decay_modules = (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.Embedding)
    tagged: dict[tuple, list] = {}
    decay, no_decay = [], []
    seen = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen or not p.requires_grad:
                continue
            seen.add(id(p))
            if hasattr(p, "_optim"):
                tagged.setdefault(tuple(sorted(p._optim.items())), []).append(p)
            elif name == "bias" or name == "ln_vth" or isinstance(module, no_decay_modules):
                no_decay.append(p)
            else:
                decay.append(p)
    groups = [{"params": decay, "lr": lr, "weight_decay": weight_decay},
              {"params": no_decay, "lr": lr, "weight_decay": 0.0}]
    groups += [{"params": ps, **dict(key)} for key, ps in tagged.items()]
    return [g for g in groups if g["params"]]
