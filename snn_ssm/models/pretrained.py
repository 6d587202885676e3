"""Trained weights as one safetensors file: the tensors, and in its metadata what rebuilds the model (registered
name, model config, tokenizer for a language model) and what it was measured to do (the run's command, seed, device
and results).

The package ships trained models (:data:`PRETRAINED`; RESULTS.md says how each was trained and what it scores):
``snn_ssm.pretrained(name)`` returns one ready for eval, ``python -m snn_ssm eval --pretrained NAME`` recomputes its
test results, ``python -m snn_ssm generate --pretrained spikingssm_lm-kjv`` writes text; nothing is fetched.
:func:`save_pretrained` writes such a file from a run (``python -m snn_ssm export``).

Examples::

    >>> import tempfile, pathlib
    >>> model = snn_ssm.create("spikingssm_lm", vocab_size=256, size="tiny")
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.safetensors"
    >>> save_pretrained(path, model, "spikingssm_lm", {"size": "tiny"}, {"kind": "byte"}, dtype=torch.float32)
    >>> again, tok, meta = load_pretrained(path)
    >>> meta["model_name"], tok.kind, all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
    ...                                                                   again.state_dict().values()))
    ('spikingssm_lm', 'byte', True)
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

__all__ = ["PRETRAINED", "pretrained", "save_pretrained", "load_pretrained", "pretrained_path"]

WEIGHTS_DIR = Path(__file__).with_name("weights")
#: Shipped weights by name (files in ``snn_ssm/models/weights/``; RESULTS.md says how each was trained).
PRETRAINED = {"spikingssm_lm-kjv": "spikingssm_lm_kjv.safetensors",
              "spikingssm-smnist": "spikingssm_smnist.safetensors",
              "spikingssm-psmnist": "spikingssm_psmnist.safetensors"}
_KEY = "snn_ssm"


def _safetensors():
    try:
        from safetensors.torch import load_file, save_file
    except ImportError as e:  # pragma: no cover - safetensors is a dependency
        raise ImportError("reading or writing trained weights needs safetensors: pip install safetensors") from e
    return load_file, save_file


def pretrained_path(name_or_path: str | os.PathLike) -> Path:
    """The file of a shipped name (:data:`PRETRAINED`) or an existing path; ``ValueError`` naming both otherwise."""
    if str(name_or_path) in PRETRAINED:
        return WEIGHTS_DIR / PRETRAINED[str(name_or_path)]
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"pretrained must be one of {sorted(PRETRAINED)} or a .safetensors file, got "
                         f"{str(name_or_path)!r}")
    return path


def save_pretrained(path, model: torch.nn.Module, model_name: str, model_config: dict, tokenizer: dict | None, *,
                    dtype: torch.dtype = torch.float16, info: dict | None = None) -> Path:
    """Write ``model``'s floating-point tensors as ``dtype`` (others as they are) with the metadata that rebuilds
    it: ``model_name`` and ``model_config`` for :func:`snn_ssm.create` (a classifier's with its ``d_input`` and
    ``d_output``; a language model takes its vocabulary size from the tokenizer), the ``tokenizer`` state (``None``
    for a classifier), and ``info`` (the training command, seed, device, results), all as JSON."""
    if dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise ValueError(f"dtype must be torch.float16, torch.bfloat16 or torch.float32, got {dtype}")
    _, save_file = _safetensors()
    # Tied weights appear once under every name that holds them; safetensors stores each name as its own copy.
    tensors = {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).cpu().clone()
               for k, v in model.state_dict().items()}
    meta = {"model_name": model_name, "model_config": model_config, "tokenizer": tokenizer, "info": info or {}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={_KEY: json.dumps(meta)})
    return path


def read_metadata(path) -> dict:
    """The metadata of a file :func:`save_pretrained` wrote (without loading its tensors)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if _KEY not in meta:
        raise ValueError(f"{path} was not written by snn_ssm.models.pretrained.save_pretrained (no {_KEY!r} metadata)")
    return json.loads(meta[_KEY])


def load_pretrained(name_or_path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
    """``(model, tokenizer, metadata)`` from a shipped name or a file: the model rebuilt by its registered name and
    config, its weights cast to ``dtype``, in eval mode on ``device``; the tokenizer is ``None`` for a classifier."""
    from ..data.text import tokenizer_from_state
    from ..registry import create

    path = pretrained_path(name_or_path)
    load_file, _ = _safetensors()
    meta = read_metadata(path)
    tok = tokenizer_from_state(meta["tokenizer"]) if meta.get("tokenizer") is not None else None
    vocab = {"vocab_size": tok.vocab_size} if tok is not None else {}
    model = create(meta["model_name"], **vocab, **meta["model_config"])
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    model.load_state_dict(state)
    return model.to(device).eval(), tok, meta


def pretrained(name_or_path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
    """A shipped model (:data:`PRETRAINED`) or one from a file :func:`save_pretrained` wrote, ready for eval on
    ``device``. Its tokenizer and the run's metadata are in :func:`load_pretrained`'s answer.

    Examples::

        >>> model = snn_ssm.pretrained("spikingssm-smnist")       # SpikingSSM, 2 x 400, sMNIST (RESULTS.md)
        >>> x = torch.rand(784, 2, 1)                               # [T, B, 1] pixels in [0, 1], row by row
        >>> tuple(model(x).shape), model.training
        ((2, 10), False)
    """
    return load_pretrained(name_or_path, device=device, dtype=dtype)[0]
