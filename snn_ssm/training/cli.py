"""``python -m snn_ssm train | eval | info``."""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from ._args import check_device, cpu_threads, positive

__all__ = ["train_main", "eval_main", "info_main", "generate_main", "export_main", "data_main"]


#: The options that decide which data a run trains on, with their defaults (stored in every checkpoint).
DATA_DEFAULTS = {"data_dir": None, "listops_sizes": [96_000, 2_000, 2_000], "listops_lengths": [500, 2000],
                 "listops_batching": "random", "limit_train": None, "limit_eval": None, "tokenizer": "byte",
                 "bpe_vocab": 8192}
#: What a run stored before an option existed: the behaviour it ran with (ListOps runs before 2026-12-07 bucketed).
_DATA_BEFORE = {"listops_batching": "bucket"}


def _task_args(p):
    # Defaults are None here, so that a resumed run can tell an option given on the command line from an absent one.
    p.add_argument("--data-dir", default=None,
                   help="MNIST IDX folder (default: $SNN_SSM_DATA, else the embedded subset); kjv: the folder `make "
                        "kjv` writes (default: $SNN_SSM_TEXT, else the embedded sample); wikitext103: the folder "
                        "with wiki.{train,valid,test}.tokens")
    p.add_argument("--tokenizer", choices=("byte", "bpe"), default=None, help="kjv: bytes (default) or a BPE "
                   "vocabulary trained on the training split (needs the tokenizers library)")
    p.add_argument("--bpe-vocab", type=int, default=None, help="BPE vocabulary size (default 8192)")
    p.add_argument("--cache-dir", default=None, help="ListOps cache (default: $SNN_SSM_CACHE or ~/.cache/snn_ssm)")
    p.add_argument("--listops-sizes", type=int, nargs=3, default=None, metavar=("TRAIN", "VAL", "TEST"),
                   help="default: 96000 2000 2000")
    p.add_argument("--listops-lengths", type=int, nargs=2, default=None, metavar=("MIN", "MAX"),
                   help="default: 500 2000")
    p.add_argument("--listops-batching", choices=("random", "bucket"), default=None,
                   help="random (default, as the official LRA/S4 pipeline): random batches padded to their longest "
                        "text; bucket: texts of similar length together, about half the work per epoch, but a "
                        "bidirectional model's outputs depend on padding, so it trains a different model")
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training examples")
    p.add_argument("--limit-eval", type=int, default=None, help="use only the first N validation/test examples")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--cpu-threads", type=int, default=None,
                   help="PyTorch's CPU threads (default: 1 with a CUDA --device, where the CPU only prepares batches "
                        "and a pool of one thread per core stalls whenever another process is busy; else PyTorch's "
                        "default)")


def _given_data(args) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k in DATA_DEFAULTS
            if (v := getattr(args, k)) is not None}


def _data_options(args, stored: dict | None = None, strict: bool = True) -> dict:
    """The data options of a run: the command line's over ``stored`` (a resumed run's) over the defaults. With
    ``strict`` (a resume) a command-line value that differs from the stored one is refused, except the folder,
    which may move between machines."""
    given = _given_data(args)
    if stored is not None:
        stored = {**_DATA_BEFORE, **stored}
    if not given.get("data_dir") and os.environ.get("SNN_SSM_DATA") and not (stored or {}).get("data_dir"):
        given["data_dir"] = os.environ["SNN_SSM_DATA"]
    if stored is not None and strict:
        changed = [k for k, v in given.items() if k != "data_dir" and stored.get(k) != v]
        if changed:
            raise ValueError("--resume continues a run on its own data; these options differ from the run's: "
                             + ", ".join(f"--{k.replace('_', '-')} ({stored.get(k)} -> {given[k]})" for k in changed))
    data = {**DATA_DEFAULTS, **(stored or {}), **given}
    if data["bpe_vocab"] < 257:
        raise ValueError(f"--bpe-vocab must be at least 257 (the 256 bytes and one merge), got {data['bpe_vocab']}")
    for k in ("limit_train", "limit_eval"):
        if data[k] is not None and data[k] < 1:
            raise ValueError(f"--{k.replace('_', '-')} must be a positive number of examples, got {data[k]}")
    lo, hi = data["listops_lengths"]
    if not 1 <= lo < hi:
        raise ValueError(f"--listops-lengths must be MIN MAX with 1 <= MIN < MAX, got {lo} {hi}")
    if min(data["listops_sizes"]) < 1:
        raise ValueError(f"--listops-sizes must be three positive counts, got {data['listops_sizes']}")
    return data


def _eval_pretrained(p, args) -> dict:
    """``eval --pretrained``: the file's model on the task its metadata names, in float32 (the weights as stored)."""
    from .loop import format_report

    try:
        check_device(args.device)
        with cpu_threads(args.cpu_threads, args.device):
            result, meta, info = _evaluate_pretrained(args)
    except (ValueError, FileNotFoundError) as e:
        p.exit(2, f"error: {e}\n")
    print(format_report({"model": meta["model_name"], "task": info["task"], "test": result}))
    return result


def _evaluate_pretrained(args):
    """The shipped model's result on its task's ``--split``, with the file's metadata: ``(result, meta, info)``."""
    from ..models.pretrained import load_pretrained
    from .lm import build_lm_task, evaluate_lm
    from .loop import evaluate

    model, tok, meta = load_pretrained(args.pretrained, device=args.device)
    info = meta.get("info") or {}
    train_cfg = (info.get("config") or {}).get("train") or {}
    if "task" not in info or "batch" not in train_cfg or (tok is not None and "seq_len" not in train_cfg):
        raise ValueError(f"{args.pretrained}: its metadata does not say which task (and batch, sequence length) "
                         f"it was trained on (write it with `python -m snn_ssm export`)")
    carry = bool(train_cfg.get("carry_state", False))
    if tok is not None:
        task = build_lm_task(info["task"], data_dir=args.data_dir, tokenizer=tok, seq_len=train_cfg["seq_len"],
                             batch=train_cfg["batch"], limit_eval=args.limit_eval)
        result = evaluate_lm(model, task, args.split, train_cfg["batch"], args.device, monitor=True, carry=carry)
    else:
        task = _build_task(args, info["task"], _data_options(args, info.get("data") or {}, strict=False), train_cfg)
        result = evaluate(model, task, args.split, train_cfg["batch"], args.device, monitor=True, carry=carry)
    return result, meta, info


def _build_task(args, name, data: dict, train_cfg: dict):
    from .loop import build_task

    return build_task(name, data_dir=data["data_dir"], cache_dir=args.cache_dir,
                      listops_sizes=data["listops_sizes"], listops_lengths=data["listops_lengths"],
                      limit_train=data["limit_train"], limit_eval=data["limit_eval"],
                      seq_len=train_cfg.get("seq_len"), batch=train_cfg["batch"], tokenizer=data["tokenizer"],
                      bpe_vocab=data["bpe_vocab"], listops_batching=data["listops_batching"])


def _build_model(model_name: str, task, model_cfg: dict):
    from .loop import make_model

    try:
        return make_model(model_name, task, model_cfg)
    except TypeError as e:  # an unknown key in the config reaches a constructor as an unexpected keyword
        if "unexpected keyword argument" in str(e):
            key = str(e).split("unexpected keyword argument")[-1].strip(" '\"")
            raise ValueError(f"model.{key} is not an option of the {model_name!r} model (its layers and neurons)") \
                from None
        raise


def train_main(argv=None) -> dict:
    from .configs import MODELS, PRECISIONS, TASKS

    p = argparse.ArgumentParser(prog="python -m snn_ssm train", description="Train a model on a task with its "
                                "named config; see snn_ssm.training.configs.")
    p.add_argument("--model", choices=MODELS, default=None,
                   help="default: spikingssm, or with --resume the run's own")
    p.add_argument("--task", choices=TASKS, default=None, help="default: smnist, or with --resume the run's own")
    p.add_argument("--set", dest="overrides", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                   help="config overrides, e.g. model.d_model=64 train.lr=3e-3 train.epochs=2")
    p.add_argument("--out", default=None, help="run folder (default: runs/<model>-<task>-<time>)")
    p.add_argument("--resume", default=None, help="a run folder or checkpoint to continue exactly")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out (deletes its files)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="32, tf32, bf16-mixed or 16-mixed (CUDA); stored in the run, kept on --resume (default: "
                   "bf16-mixed on CUDA, where it keeps float32's accuracy, except for binary_s4d_gsu, which is "
                   "faster in 32; 32 elsewhere)")
    p.add_argument("--compile", action="store_true",
                   help="train through torch.compile(model) (inductor; recorded in the run's config, as "
                        "--set train.compile=true, which can also name another backend)")
    p.add_argument("--max-steps", type=int, default=None, help="stop (and save) after this many steps in total")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop (and save) after the first step that ends this many minutes into this call's training")
    p.add_argument("--val-every", type=int, default=None, help="also validate every N steps")
    p.add_argument("--ckpt-every", type=int, default=500, help="write last.pt every N steps (default 500)")
    p.add_argument("--deterministic", action="store_true", help="torch deterministic algorithms")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _task_args(p)
    args = p.parse_args(argv)
    if args.precision is not None:  # the same as --set train.precision=...: a resume refuses a different one
        args.overrides = [*args.overrides, f"train.precision={args.precision}"]
    if args.compile:
        args.overrides = [*args.overrides, "train.compile=true"]
    try:
        check_device(args.device)
        with cpu_threads(args.cpu_threads, args.device):
            return _train(args)
    except (ValueError, FileNotFoundError) as e:
        p.exit(2, f"error: {e}\n")


def _train(args) -> dict:
    """``train_main`` once its arguments are parsed: the run's config and data (a resume's own), then training."""
    from .configs import default_precision, get_config
    from .loop import load_checkpoint, train

    for flag, v in (("--max-steps", args.max_steps), ("--val-every", args.val_every),
                    ("--ckpt-every", args.ckpt_every)):
        if v is not None:
            positive(v, flag, integer=True)
    if args.max_minutes is not None:
        positive(args.max_minutes, "--max-minutes")
    if args.resume:
        ckpt = load_checkpoint(args.resume, args.model)
        if args.task not in (None, ckpt["task"]):
            raise ValueError(f"{args.resume} was trained on {ckpt['task']!r}, not {args.task!r}: pass "
                             f"--task {ckpt['task']} or leave --task out")
        args.model, args.task = ckpt["model_name"], ckpt["task"]  # a resumed run is the run's own
        cfg = ckpt["config"]
        cfg["train"].setdefault("precision", "32")  # runs from before the option trained in float32
        cfg["train"].setdefault("compile", False)  # and eagerly
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
        args.model, args.task = args.model or "spikingssm", args.task or "smnist"
        overrides = args.overrides
        if not any(o.startswith("train.precision=") for o in overrides):
            overrides = [*overrides, f"train.precision={default_precision(args.device, args.model)}"]
        cfg = get_config(args.model, args.task, overrides)
        data = _data_options(args)
    if args.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    task = _build_task(args, args.task, data, cfg["train"])
    _build_model(args.model, task, cfg["model"])  # an unknown model key fails here, with its name
    out = args.out or (Path(args.resume).parent if args.resume and Path(args.resume).is_file() else args.resume) \
        or Path("runs") / f"{args.model}-{args.task}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    return train(args.model, task, cfg, out, device=args.device, resume=args.resume, max_steps=args.max_steps,
                 max_minutes=args.max_minutes, val_every=args.val_every, ckpt_every=args.ckpt_every,
                 progress=not args.quiet, plots=not args.no_plots, data=data, overwrite=args.overwrite)


def _eval_precision(ckpt: dict, device: str) -> str:
    """The run's precision, or float32 where this device lacks it (a float16 run evaluated on a CPU)."""
    prec = str(ckpt["config"]["train"].get("precision", "32"))
    return "32" if prec == "16-mixed" and torch.device(device).type != "cuda" else prec


def _lookup(cfg: dict, key: str):
    section, _, name = key.partition(".")
    return cfg.get(section, {}).get(name)


def eval_main(argv=None) -> dict:
    from .loop import format_report

    p = argparse.ArgumentParser(prog="python -m snn_ssm eval", description="Evaluate a checkpoint or shipped "
                                "weights.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a run folder (its best.pt) or a checkpoint file")
    src.add_argument("--pretrained", help="shipped weights or a .safetensors file (`python -m snn_ssm export`), "
                     "evaluated on the task they were trained on (--data-dir as for train)")
    p.add_argument("--split", choices=("val", "test"), default="test")
    _task_args(p)
    args = p.parse_args(argv)
    if args.pretrained is not None:
        return _eval_pretrained(p, args)
    try:
        check_device(args.device)
        with cpu_threads(args.cpu_threads, args.device):
            result, ckpt, task = _eval_checkpoint(args)
    except (ValueError, FileNotFoundError) as e:
        p.exit(2, f"error: {e}\n")
    best = ckpt.get("best_val", 0)
    print(format_report({"model": ckpt["model_name"], "task": ckpt["task"], "test": result,
                         **({"best_val_loss": -best} if task.kind == "lm" else {"best_val_accuracy": best})}))
    return result


def _eval_checkpoint(args):
    """``eval --checkpoint``: the checkpoint's model on its task's ``--split``; ``(result, checkpoint, task)``."""
    from .loop import evaluate

    path = Path(args.checkpoint)
    ckpt = _best_checkpoint(path)
    task = _build_task(args, ckpt["task"], _data_options(args, ckpt.get("data") or {}, strict=False),
                       ckpt["config"]["train"])
    model = _build_model(ckpt["model_name"], task, ckpt["config"]["model"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise ValueError(f"{args.checkpoint}: its weights do not fit the {ckpt['model_name']!r} model its config "
                         f"describes ({' '.join(line.strip() for line in first[:2])[:300]})") from None
    result = evaluate(model.to(args.device), task, args.split, ckpt["config"]["train"]["batch"], args.device,
                      monitor=True, precision=_eval_precision(ckpt, args.device),
                      carry=bool(ckpt["config"]["train"].get("carry_state", False)))
    return result, ckpt, task


def _shape_args(task_name: str) -> dict:
    """What a classifier for ``task_name`` is built with besides its config: ``d_input`` and ``d_output``."""
    from .loop import CLASSIFY_SHAPES

    d_input, d_output = CLASSIFY_SHAPES[task_name]
    return {"d_input": d_input, "d_output": d_output}


def _best_checkpoint(path: Path) -> dict:
    """The checkpoint to evaluate or export: a run folder's ``best.pt`` (else its ``last.pt``) or a checkpoint file;
    its weights, config and task are enough (a ``best.pt`` slimmed of its optimizer state is accepted)."""
    from .loop import load_checkpoint

    return load_checkpoint(path / "best.pt" if path.is_dir() and (path / "best.pt").exists() else path,
                           weights_only=True)


def _model_from_checkpoint(path, device, *, lm: bool = False):
    """``(model, tokenizer, checkpoint)`` of a run folder (its best.pt, else last.pt) or a checkpoint file, in eval
    mode; the tokenizer is ``None`` for a classifier, which ``lm=True`` refuses."""
    from ..data.text import tokenizer_from_state
    from ..registry import create

    path = Path(path)
    ckpt = _best_checkpoint(path)
    tok = tokenizer_from_state(ckpt["tokenizer"]) if "tokenizer" in ckpt else None
    if tok is None and lm:
        raise ValueError(f"{path} holds a {ckpt['model_name']!r} model trained on {ckpt['task']!r}, not a language "
                         f"model (train one with --model spikingssm_lm --task kjv)")
    shape = {"vocab_size": tok.vocab_size} if tok is not None else _shape_args(ckpt["task"])
    model = create(ckpt["model_name"], **shape, **ckpt["config"]["model"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), tok, ckpt


def generate_main(argv=None) -> str:
    from ..models.pretrained import PRETRAINED, load_pretrained

    p = argparse.ArgumentParser(prog="python -m snn_ssm generate", description="Continue a prompt with a trained "
                                "language model, one recurrent step per token.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a run folder (its best.pt) or a checkpoint file")
    src.add_argument("--pretrained", help=f"shipped weights ({', '.join(sorted(PRETRAINED))}) or a .safetensors "
                     "file written by `python -m snn_ssm export`")
    p.add_argument("--prompt", default="", help="the text to continue (default: empty, the model starts alone)")
    p.add_argument("--max-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--matmul-dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                   help="dtype of the weight matrices read per token (generate(matmul_dtype=)): float16 or "
                   "bfloat16 is about twice as fast on a CPU, with logits rounded to that dtype (default float32)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    try:
        check_device(args.device)
        positive(args.max_tokens, "--max-tokens", integer=True)
        if args.top_k is not None:
            positive(args.top_k, "--top-k", integer=True)
        if not args.temperature >= 0:
            raise ValueError(f"--temperature must be >= 0 (0: greedy), got {args.temperature}")
        if args.pretrained is not None:
            model, tok, _ = load_pretrained(args.pretrained, device=args.device)
        else:
            model, tok, _ = _model_from_checkpoint(args.checkpoint, args.device, lm=True)
        prompt = tok.encode(args.prompt) if args.prompt else torch.tensor([tok.encode("\n")[0].item()
                                                                           if tok.kind != "word" else 0])
    except (ValueError, FileNotFoundError) as e:
        p.exit(2, f"error: {e}\n")
    gen = torch.Generator(args.device).manual_seed(args.seed)
    kwargs = dict(temperature=args.temperature, top_k=args.top_k, matmul_dtype=getattr(torch, args.matmul_dtype))
    start = time.perf_counter()
    model.generate(prompt.to(args.device), 2, **kwargs)  # compiles the kernels (numba, CUDA) before the clock starts
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    out = model.generate(prompt.to(args.device), args.max_tokens, generator=gen, **kwargs)
    seconds = time.perf_counter() - start
    text = tok.decode(out.tolist())
    print(args.prompt + text)
    print(f"[{args.max_tokens} tokens in {seconds:.2f} s: {args.max_tokens / seconds:.0f} tokens/s on {args.device}, "
          f"after {warmup:.2f} s compiling the kernels]", file=sys.stderr)
    return text


def export_main(argv=None) -> Path:
    """``python -m snn_ssm export``: a run (classifier or language model) as one safetensors file: its weights, what
    rebuilds the model, and the run's config, data options and report."""
    from ..models.pretrained import save_pretrained

    dtypes = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
    p = argparse.ArgumentParser(prog="python -m snn_ssm export", description="Write a trained model as one "
                                ".safetensors file that `eval --pretrained FILE` (and, for a language model, "
                                "`generate --pretrained FILE`) loads.")
    p.add_argument("--checkpoint", required=True, help="a run folder (its best.pt) or a checkpoint file")
    p.add_argument("--out", required=True, help="the .safetensors file to write")
    p.add_argument("--dtype", choices=sorted(dtypes), default="float16", help="of the floating-point weights")
    args = p.parse_args(argv)
    try:
        model, tok, ckpt = _model_from_checkpoint(args.checkpoint, "cpu")
    except (ValueError, FileNotFoundError) as e:
        p.exit(2, f"error: {e}\n")
    run = Path(args.checkpoint)
    report = run / "report.json" if run.is_dir() else run.with_name("report.json")
    data = {k: v for k, v in (ckpt.get("data") or {}).items() if k != "data_dir"}  # a folder of the training machine
    info = {"task": ckpt["task"], "config": ckpt["config"], "data": data, "epoch": ckpt.get("epoch"),
            "step": ckpt.get("step"), "report": json.loads(report.read_text()) if report.exists() else None}
    config = ckpt["config"]["model"] if tok is not None else {**_shape_args(ckpt["task"]), **ckpt["config"]["model"]}
    path = save_pretrained(args.out, model, ckpt["model_name"], config, ckpt.get("tokenizer"),
                           dtype=dtypes[args.dtype], info=info)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, {args.dtype})")
    return path


def data_main(argv=None) -> dict:
    from ..data.text import prepare_kjv

    p = argparse.ArgumentParser(prog="python -m snn_ssm data", description="Prepare an offline corpus (`make kjv` "
                                "runs this after fetching the Debian packages).")
    p.add_argument("corpus", choices=("kjv",))
    p.add_argument("--dump", required=True, help="the output of `bible -f gen1:1-rev22:21`")
    p.add_argument("--out", required=True, help="the folder to write train.txt, valid.txt, test.txt, SHA256SUMS")
    args = p.parse_args(argv)
    try:
        sums = prepare_kjv(args.dump, args.out)
    except (ValueError, FileNotFoundError) as e:
        p.exit(2, f"error: {e}\n")
    for name, digest in sums.items():
        print(f"{digest}  {Path(args.out) / name}")
    return sums


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
