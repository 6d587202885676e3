"""``python -m snn_ssm train | eval | info``."""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import sys
from pathlib import Path

import torch

from ._args import check_device, positive

__all__ = ["train_main", "eval_main", "info_main"]


#: The options that decide which data a run trains on, with their defaults (stored in every checkpoint).
DATA_DEFAULTS = {"data_dir": None, "listops_sizes": [96_000, 2_000, 2_000], "listops_lengths": [500, 2000],
                 "limit_train": None, "limit_eval": None}


def _task_args(p):
    # Defaults are None here, so that a resumed run can tell an option given on the command line from an absent one.
    p.add_argument("--data-dir", default=None,
                   help="MNIST IDX folder (default: $SNN_SSM_DATA, else the embedded subset)")
    p.add_argument("--cache-dir", default=None, help="ListOps cache (default: $SNN_SSM_CACHE or ~/.cache/snn_ssm)")
    p.add_argument("--listops-sizes", type=int, nargs=3, default=None, metavar=("TRAIN", "VAL", "TEST"),
                   help="default: 96000 2000 2000")
    p.add_argument("--listops-lengths", type=int, nargs=2, default=None, metavar=("MIN", "MAX"),
                   help="default: 500 2000")
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training examples")
    p.add_argument("--limit-eval", type=int, default=None, help="use only the first N validation/test examples")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def _given_data(args) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k in DATA_DEFAULTS
            if (v := getattr(args, k)) is not None}


def _data_options(args, stored: dict | None = None, strict: bool = True) -> dict:
    """The data options of a run: the command line's over ``stored`` (a resumed run's) over the defaults. With
    ``strict`` (a resume) a command-line value that differs from the stored one is refused, except the folder,
    which may move between machines."""
    given = _given_data(args)
    if not given.get("data_dir") and os.environ.get("SNN_SSM_DATA") and not (stored or {}).get("data_dir"):
        given["data_dir"] = os.environ["SNN_SSM_DATA"]
    if stored is not None and strict:
        changed = [k for k, v in given.items() if k != "data_dir" and stored.get(k) != v]
        if changed:
            raise ValueError("--resume continues a run on its own data; these options differ from the run's: "
                             + ", ".join(f"--{k.replace('_', '-')} ({stored.get(k)} -> {given[k]})" for k in changed))
    data = {**DATA_DEFAULTS, **(stored or {}), **given}
    for k in ("limit_train", "limit_eval"):
        if data[k] is not None and data[k] < 1:
            raise ValueError(f"--{k.replace('_', '-')} must be a positive number of examples, got {data[k]}")
    lo, hi = data["listops_lengths"]
    if not 1 <= lo < hi:
        raise ValueError(f"--listops-lengths must be MIN MAX with 1 <= MIN < MAX, got {lo} {hi}")
    if min(data["listops_sizes"]) < 1:
        raise ValueError(f"--listops-sizes must be three positive counts, got {data['listops_sizes']}")
    return data


def _build_task(args, name, data: dict):
    from .loop import build_task

    return build_task(name, data_dir=data["data_dir"], cache_dir=args.cache_dir,
                      listops_sizes=data["listops_sizes"], listops_lengths=data["listops_lengths"],
                      limit_train=data["limit_train"], limit_eval=data["limit_eval"])


def _build_model(model_name: str, task, model_cfg: dict):
    from ..registry import create

    try:
        return create(model_name, d_input=task.d_input, d_output=task.d_output, **model_cfg)
    except TypeError as e:  # an unknown key in the config reaches a constructor as an unexpected keyword
        if "unexpected keyword argument" in str(e):
            key = str(e).split("unexpected keyword argument")[-1].strip(" '\"")
            raise ValueError(f"model.{key} is not an option of the {model_name!r} model (its layers and neurons)") \
                from None
        raise


def train_main(argv=None) -> dict:
    from .configs import MODELS, PRECISIONS, TASKS, get_config
    from .loop import load_checkpoint, train

    p = argparse.ArgumentParser(prog="python -m snn_ssm train", description="Train a model on a task with its "
                                "named config; see snn_ssm.training.configs.")
    p.add_argument("--model", choices=MODELS, default="spikingssm")
    p.add_argument("--task", choices=TASKS, default="smnist")
    p.add_argument("--set", dest="overrides", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                   help="config overrides, e.g. model.d_model=64 train.lr=3e-3 train.epochs=2")
    p.add_argument("--out", default=None, help="run folder (default: runs/<model>-<task>-<time>)")
    p.add_argument("--resume", default=None, help="a run folder or checkpoint to continue exactly")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out (deletes its files)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="32 (default), tf32, bf16-mixed or 16-mixed (CUDA); stored in the run, kept on --resume")
    p.add_argument("--max-steps", type=int, default=None, help="stop (and save) after this many steps in total")
    p.add_argument("--val-every", type=int, default=None, help="also validate every N steps")
    p.add_argument("--ckpt-every", type=int, default=500, help="write last.pt every N steps (default 500)")
    p.add_argument("--deterministic", action="store_true", help="torch deterministic algorithms")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _task_args(p)
    args = p.parse_args(argv)
    if args.precision is not None:  # the same as --set train.precision=...: a resume refuses a different one
        args.overrides = [*args.overrides, f"train.precision={args.precision}"]
    try:
        check_device(args.device)
        for flag, v in (("--max-steps", args.max_steps), ("--val-every", args.val_every),
                        ("--ckpt-every", args.ckpt_every)):
            if v is not None:
                positive(v, flag, integer=True)
        if args.resume:
            ckpt = load_checkpoint(args.resume, args.model)
            if ckpt["task"] != args.task:
                raise ValueError(f"{args.resume} was trained on {ckpt['task']!r}, not {args.task!r}: pass "
                                 f"--task {ckpt['task']}")
            cfg = ckpt["config"]
            cfg["train"].setdefault("precision", "32")  # runs from before the option trained in float32
            wanted = get_config(args.model, args.task, args.overrides) if args.overrides else None
            if wanted is not None:
                given = dict(o.split("=", 1) for o in args.overrides)
                changed = [k for k in given if _lookup(wanted, k) != _lookup(cfg, k)]
                if changed:
                    raise ValueError("--resume continues a run exactly, so it cannot apply "
                                     + ", ".join(f"{k} ({_lookup(cfg, k)!r} -> {_lookup(wanted, k)!r})"
                                                 for k in changed)
                                     + ": drop them, or start a new run without --resume")
            data = _data_options(args, ckpt.get("data") or {})
        else:
            cfg = get_config(args.model, args.task, args.overrides)
            data = _data_options(args)
        if args.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        task = _build_task(args, args.task, data)
        _build_model(args.model, task, cfg["model"])  # an unknown model key fails here, with its name
        out = args.out or (Path(args.resume).parent if args.resume and Path(args.resume).is_file() else args.resume) \
            or Path("runs") / f"{args.model}-{args.task}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
        return train(args.model, task, cfg, out, device=args.device, resume=args.resume, max_steps=args.max_steps,
                     val_every=args.val_every, ckpt_every=args.ckpt_every, progress=not args.quiet,
                     plots=not args.no_plots, data=data, overwrite=args.overwrite)
    except (ValueError, FileNotFoundError) as e:
        p.exit(2, f"error: {e}\n")


def _eval_precision(ckpt: dict, device: str) -> str:
    """The run's precision, or float32 where this device lacks it (a float16 run evaluated on a CPU)."""
    prec = str(ckpt["config"]["train"].get("precision", "32"))
    return "32" if prec == "16-mixed" and torch.device(device).type != "cuda" else prec


def _lookup(cfg: dict, key: str):
    section, _, name = key.partition(".")
    return cfg.get(section, {}).get(name)


def eval_main(argv=None) -> dict:
    from .loop import evaluate, format_report, load_checkpoint

    p = argparse.ArgumentParser(prog="python -m snn_ssm eval", description="Evaluate a checkpoint.")
    p.add_argument("--checkpoint", required=True, help="a run folder (its best.pt) or a checkpoint file")
    p.add_argument("--split", choices=("val", "test"), default="test")
    _task_args(p)
    args = p.parse_args(argv)
    try:
        check_device(args.device)
        path = Path(args.checkpoint)
        ckpt = load_checkpoint(path / "best.pt" if path.is_dir() and (path / "best.pt").exists() else path)
        task = _build_task(args, ckpt["task"], _data_options(args, ckpt.get("data") or {}, strict=False))
        model = _build_model(ckpt["model_name"], task, ckpt["config"]["model"])
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as e:
            first = str(e).strip().splitlines()
            raise ValueError(f"{args.checkpoint}: its weights do not fit the {ckpt['model_name']!r} model its config "
                             f"describes ({' '.join(line.strip() for line in first[:2])[:300]})") from None
        result = evaluate(model.to(args.device), task, args.split, ckpt["config"]["train"]["batch"], args.device,
                          monitor=True, precision=_eval_precision(ckpt, args.device))
    except (ValueError, FileNotFoundError) as e:
        p.exit(2, f"error: {e}\n")
    print(format_report({"model": ckpt["model_name"], "task": ckpt["task"], "test": result,
                         "best_val_accuracy": ckpt.get("best_val", 0)}))
    return result


def info_main(argv=None) -> dict:
    from .. import __version__
    from ..ops import dispatch

    argparse.ArgumentParser(prog="python -m snn_ssm info", description="Versions, devices and kernel backends.") \
        .parse_args(argv)
    versions = {"snn_ssm": __version__, "python": platform.python_version(), "torch": torch.__version__}
    for name in ("numpy", "snntorch", "spikingjelly", "numba", "triton", "cupy", "matplotlib", "tqdm"):
        try:
            versions[name] = getattr(importlib.import_module(name), "__version__", "installed")
        except Exception:  # noqa: BLE001 - any import failure means "not usable here"
            versions[name] = None
    devices = ["cpu"] + [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    backends = {b: dispatch.available(b) for b in dispatch.BACKENDS if b != "auto"}
    chosen = {}
    for dev in ("cpu", "cuda"):
        if dev == "cuda" and not torch.cuda.is_available():
            continue
        support = {b: None for b in ("numba", "cupy", "triton")}
        try:
            chosen[dev] = dispatch.choose("lif_scan", dev, support, "auto")
        except (ImportError, ValueError) as e:
            chosen[dev] = f"unavailable ({e})"
    info = {"versions": versions, "devices": devices, "backends_available": backends, "auto_backend": chosen,
            "env": {k: os.environ.get(k) for k in ("SNN_SSM_BACKEND", "SNN_SSM_DATA", "SNN_SSM_SDN_DIR")}}
    json.dump(info, sys.stdout, indent=1)
    print()
    return info
