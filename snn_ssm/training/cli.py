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

__all__ = ["train_main", "eval_main", "info_main"]


def _task_args(p):
    p.add_argument("--data-dir", default=os.environ.get("SNN_SSM_DATA"),
                   help="MNIST IDX folder (default: $SNN_SSM_DATA, else the embedded subset)")
    p.add_argument("--cache-dir", default=None, help="ListOps cache (default: $SNN_SSM_CACHE or ~/.cache/snn_ssm)")
    p.add_argument("--listops-sizes", type=int, nargs=3, default=(96_000, 2_000, 2_000),
                   metavar=("TRAIN", "VAL", "TEST"))
    p.add_argument("--listops-lengths", type=int, nargs=2, default=(500, 2000), metavar=("MIN", "MAX"))
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training examples")
    p.add_argument("--limit-eval", type=int, default=None, help="use only the first N validation/test examples")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def _build_task(args, name):
    from .loop import build_task

    return build_task(name, data_dir=args.data_dir, cache_dir=args.cache_dir, listops_sizes=args.listops_sizes,
                      listops_lengths=args.listops_lengths, limit_train=args.limit_train,
                      limit_eval=args.limit_eval)


def train_main(argv=None) -> dict:
    from .configs import MODELS, TASKS, get_config
    from .loop import load_checkpoint, train

    p = argparse.ArgumentParser(prog="python -m snn_ssm train", description="Train a model on a task with its "
                                "named config; see snn_ssm.training.configs.")
    p.add_argument("--model", choices=MODELS, default="spikingssm")
    p.add_argument("--task", choices=TASKS, default="smnist")
    p.add_argument("--set", dest="overrides", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                   help="config overrides, e.g. model.d_model=64 train.lr=3e-3 train.epochs=2")
    p.add_argument("--out", default=None, help="run folder (default: runs/<model>-<task>-<time>)")
    p.add_argument("--resume", default=None, help="a run folder or checkpoint to continue exactly")
    p.add_argument("--max-steps", type=int, default=None, help="stop (and save) after this many steps in total")
    p.add_argument("--val-every", type=int, default=None, help="also validate every N steps")
    p.add_argument("--ckpt-every", type=int, default=500, help="write last.pt every N steps (default 500)")
    p.add_argument("--deterministic", action="store_true", help="torch deterministic algorithms")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _task_args(p)
    args = p.parse_args(argv)
    try:
        if args.resume:
            ckpt = load_checkpoint(args.resume, args.model)
            if ckpt["task"] != args.task:
                raise ValueError(f"{args.resume} was trained on {ckpt['task']!r}, not {args.task!r}: pass "
                                 f"--task {ckpt['task']}")
            cfg = ckpt["config"]
        else:
            cfg = get_config(args.model, args.task, args.overrides)
        if args.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        task = _build_task(args, args.task)
        out = args.out or (Path(args.resume).parent if args.resume and Path(args.resume).is_file() else args.resume) \
            or Path("runs") / f"{args.model}-{args.task}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
        return train(args.model, task, cfg, out, device=args.device, resume=args.resume, max_steps=args.max_steps,
                     val_every=args.val_every, ckpt_every=args.ckpt_every, progress=not args.quiet,
                     plots=not args.no_plots)
    except (ValueError, FileNotFoundError) as e:
        p.exit(2, f"error: {e}\n")


def eval_main(argv=None) -> dict:
    from .loop import evaluate, format_report, load_checkpoint
    from ..registry import create

    p = argparse.ArgumentParser(prog="python -m snn_ssm eval", description="Evaluate a checkpoint.")
    p.add_argument("--checkpoint", required=True, help="a run folder (its best.pt) or a checkpoint file")
    p.add_argument("--split", choices=("val", "test"), default="test")
    _task_args(p)
    args = p.parse_args(argv)
    try:
        path = Path(args.checkpoint)
        ckpt = load_checkpoint(path / "best.pt" if path.is_dir() and (path / "best.pt").exists() else path)
        task = _build_task(args, ckpt["task"])
        model = create(ckpt["model_name"], d_input=task.d_input, d_output=task.d_output, **ckpt["config"]["model"])
        model.load_state_dict(ckpt["model"])
        result = evaluate(model.to(args.device), task, args.split, ckpt["config"]["train"]["batch"], args.device,
                          monitor=True)
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
