"""Named configurations: ``CONFIGS[model][task] = {"model": backbone kwargs, "train": optimisation}``.

Sources: SpikingSSM's released configs (``configs/experiment/spikingssm/{minst,pminst,listops}.yaml``; S4D uses the
same sizes, being its non-spiking twin), P-SpikeSSM's (``configs/experiment/lra/*.yaml``; it has no sMNIST config,
so sMNIST uses its psMNIST settings), and for Binary S4D / GSU, whose code was not available, the S4 repository's
S4D sizes with SpikingSSM's optimisation (our choice). All runs: AdamW (0.9, 0.999), SSM parameters at lr 1e-3 and
no weight decay, no decay on biases, norms and thresholds, cosine schedule with linear warmup stepped per step.
``train`` keys: ``batch``, ``lr``, ``weight_decay``, ``epochs``, ``warmup`` (steps), ``seed``; the CLI adds
``precision`` and, with ``--compile``, ``compile`` (``true`` or a ``torch.compile`` backend's name).
"""
from __future__ import annotations

import contextlib
import copy

import torch

from ..models.binary import BINARY_CONFIGS
from ..models.pssm import PSSM_CONFIGS

__all__ = ["CONFIGS", "TASKS", "MODELS", "PRECISIONS", "get_config", "check_train_config", "default_precision"]

TASKS = ("smnist", "psmnist", "listops", "kjv", "wikitext103")
MODELS = ("spikingssm", "s4d", "pssm", "binary_s4d", "binary_s4d_gsu", "spikingssm_lm", "s4d_lm")

_SPIKINGSSM = {
    "smnist": {"model": dict(n_layers=2, d_model=400, d_state=64, bidirectional=False, norm="layer",
                             prenorm=False, dropout=0.1),
               "train": dict(batch=50, lr=0.01, weight_decay=0.01, epochs=100, warmup=1000, seed=1111)},
    "psmnist": {"model": dict(n_layers=4, d_model=256, d_state=64, bidirectional=False, norm="layer",
                              prenorm=False, dropout=0.1),
                "train": dict(batch=50, lr=0.01, weight_decay=0.01, epochs=100, warmup=1000, seed=1111)},
    "listops": {"model": dict(n_layers=6, d_model=256, d_state=4, trainable_B=True, bidirectional=True,
                              norm="batch", prenorm=False, dropout=0.0, encoder="embedding"),
                "train": dict(batch=32, lr=0.01, weight_decay=0.01, epochs=40, warmup=12_000, seed=1234)},
}


# Language models. wikitext103: SpikingSSM's released ``wt103.yaml`` (L = 8192, 16 x 1024, N = 64, LN prenorm,
# dropout 0.1, lr 5e-4, wd 0.1, 1k warmup; one sequence per GPU on 8 GPUs = batch 8). kjv: ours, ~10M parameters
# with the 8k BPE vocabulary (5.4M with bytes). ``carry_state`` runs truncated BPTT over consecutive chunks;
# ``rate_weight`` > 0 turns on the one-sided spike-rate penalty above ``rate_target`` (training.lm.RateRegulariser).
_LM = {
    "kjv": {"model": dict(size="small"),
            "train": dict(batch=16, seq_len=512, lr=1e-3, weight_decay=0.1, epochs=20, warmup=500, seed=1111,
                          carry_state=False, rate_target=0.15, rate_weight=0.0)},
    "wikitext103": {"model": dict(size="wt103"),
                    "train": dict(batch=8, seq_len=8192, lr=5e-4, weight_decay=0.1, epochs=50, warmup=1000,
                                  seed=1111, carry_state=False, rate_target=0.25, rate_weight=0.0)},
}


def _pssm(task: str) -> dict:
    src = PSSM_CONFIGS["psmnist" if task == "smnist" else task]
    t = src["train"]
    train = dict(batch=t["batch"], lr=t["lr"], weight_decay=t["weight_decay"], epochs=t["epochs"],
                 warmup=t.get("warmup", 0), seed=0)
    return {"model": copy.deepcopy(src["model"]), "train": train}


def _binary(task: str) -> dict:
    return {"model": copy.deepcopy(BINARY_CONFIGS[task]), "train": copy.deepcopy(_SPIKINGSSM[task]["train"])}


CONFIGS = {
    "spikingssm": _SPIKINGSSM,
    "s4d": copy.deepcopy(_SPIKINGSSM),
    "pssm": {t: _pssm(t) for t in TASKS[:3]},
    "binary_s4d": {t: _binary(t) for t in TASKS[:3]},
    "binary_s4d_gsu": {t: _binary(t) for t in TASKS[:3]},
    "spikingssm_lm": _LM,
    "s4d_lm": copy.deepcopy(_LM),
}


def _parse(value: str):
    for conv in (int, float):
        with contextlib.suppress(ValueError):
            return conv(value)
    return {"true": True, "false": False, "none": None}.get(value.lower(), value)


def _compile_backends() -> list:
    """The names ``train.compile`` may take besides ``true``/``false``: torch.compile's registered backends."""
    import torch._dynamo

    return torch._dynamo.list_backends(exclude_tags=())


#: What each train key must be (checked for every config, named or overridden).
_TRAIN_RULES = {"batch": ("a positive int", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
                "epochs": ("a positive int", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
                "warmup": ("an int >= 0", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
                "seed": ("an int >= 0", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
                "lr": ("a finite number > 0", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                       and 0 < v < float("inf")),
                "weight_decay": ("a finite number >= 0", lambda v: isinstance(v, (int, float))
                                 and not isinstance(v, bool) and 0 <= v < float("inf")),
                "precision": ("one of 32, tf32, bf16-mixed, 16-mixed", lambda v: str(v) in PRECISIONS),
                "seq_len": ("a positive int", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
                "carry_state": ("true or false", lambda v: isinstance(v, bool)),
                "compile": ("true, false or a torch.compile backend name (true: inductor)",
                            lambda v: isinstance(v, bool) or (isinstance(v, str) and v in _compile_backends())),
                "rate_target": ("a number in [0, 1]", lambda v: isinstance(v, (int, float))
                                and not isinstance(v, bool) and 0 <= v <= 1),
                "rate_weight": ("a finite number >= 0", lambda v: isinstance(v, (int, float))
                                and not isinstance(v, bool) and 0 <= v < float("inf"))}

#: Numeric settings of a run, with Lightning's names: float32; float32 with TF32 matmuls (CUDA); autocast to
#: bfloat16; autocast to float16 with a GradScaler (CUDA).
PRECISIONS = ("32", "tf32", "bf16-mixed", "16-mixed")


#: Models whose CUDA training step is faster in float32 than under bfloat16 autocast (GSU sMNIST on one H100: 12.71
#: vs 14.51 ms, ``benchmarks/results/train_cuda_2026-12-07_compile-binary_s4d_gsu.md``; 11.98 vs 12.93 ms in
#: ``train_cuda_2026-12-06_fused-auto.md``): its ternary quantisers and small matmuls gain nothing from bfloat16 and
#: pay the casts.
FLOAT32_ON_CUDA = ("binary_s4d_gsu",)


def default_precision(device, model: str | None = None) -> str:
    """The CLI's precision when none is given: ``bf16-mixed`` on CUDA (SpikingSSM sMNIST for two epochs on an H200
    reached the test accuracy of float32, 98.99 % vs 98.97 %, in less time per step:
    ``benchmarks/results/precision_parity_cuda_2026-12-06.md``), except for the ``model`` names in
    :data:`FLOAT32_ON_CUDA`, which train faster in float32; ``32`` elsewhere: bfloat16 autocast pays only on CPUs
    with bfloat16 units (on a 2-core Zen 5 it took a SpikingSSM sMNIST step from 5.4 to 3.4 s,
    ``train_cpu_2026-12-06.md``), costs time on others, and its accuracy on a CPU has not been measured; ask for it
    with ``--precision bf16-mixed``.

    Examples::

        >>> default_precision("cpu"), default_precision("cuda"), default_precision("cuda", "binary_s4d_gsu")
        ('32', 'bf16-mixed', '32')
    """
    return "bf16-mixed" if torch.device(device).type == "cuda" and model not in FLOAT32_ON_CUDA else "32"


def check_train_config(train: dict) -> None:
    """``ValueError`` naming the first ``train.<key>`` whose value is impossible (a zero batch, a negative lr...).

    Examples::

        >>> check_train_config({"batch": 0})
        Traceback (most recent call last):
        ...
        ValueError: train.batch must be a positive int, got 0
    """
    for key, value in train.items():
        what, ok = _TRAIN_RULES.get(key, (None, None))
        if ok is not None and not ok(value):
            raise ValueError(f"train.{key} must be {what}, got {value!r}")


def get_config(model: str, task: str, overrides=()) -> dict:
    """The named config with ``overrides`` (``"model.d_model=64"``, ``"train.lr=3e-3"`` strings or a dict).

    Examples::

        >>> cfg = get_config("spikingssm", "psmnist", ["model.d_model=64", "train.epochs=2"])
        >>> cfg["model"]["d_model"], cfg["train"]["epochs"], cfg["train"]["lr"]
        (64, 2, 0.01)
    """
    if model not in CONFIGS:
        raise ValueError(f"unknown model {model!r}: choose one of {', '.join(MODELS)}")
    if task not in CONFIGS[model]:
        raise ValueError(f"unknown task {task!r} for {model!r}: choose one of {', '.join(CONFIGS[model])}")
    cfg = copy.deepcopy(CONFIGS[model][task])
    cfg["train"].setdefault("precision", "32")
    cfg["train"].setdefault("compile", False)
    if not isinstance(overrides, dict):
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ValueError(f"override {bad[0]!r} must be KEY=VALUE, e.g. train.lr=3e-3 or model.d_model=64")
    items = overrides.items() if isinstance(overrides, dict) else (o.split("=", 1) for o in overrides)
    for key, value in items:
        section, _, name = str(key).partition(".")
        if section not in ("model", "train") or not name:
            raise ValueError(f"override {key!r} must be model.<name>=<value> or train.<name>=<value>")
        if section == "train" and name not in cfg["train"]:
            raise ValueError(f"unknown train key {name!r}: choose one of {', '.join(cfg['train'])}")
        cfg[section][name] = _parse(value) if isinstance(value, str) else value
    cfg["train"]["precision"] = str(cfg["train"]["precision"])  # "32" parses as a number
    check_train_config(cfg["train"])
    return cfg
