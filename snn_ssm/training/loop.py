"""Training and evaluation loops behind ``python -m snn_ssm train|eval``: data, schedule, checkpoints with exact
resumption, JSON-lines metrics, DistributedDataParallel under ``torchrun``, and the final report."""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import _checks, param_groups
from .._checks import positive_number
from .._transfer import to_device
from ..data import ListOps, SequenceMNIST, bucket_batches, mnist_splits
from ..data.listops import VOCAB
from ..layers.sampler import SpikeSampler
from ..metrics import EnergyMeter, SpikeRateMonitor
from ..registry import create
from ._args import writable_folder
from .lm import LM_TASKS, RateRegulariser, build_lm_task, evaluate_lm, lm_loss

__all__ = ["Task", "build_task", "epoch_batches", "cosine_with_warmup", "train", "evaluate", "load_checkpoint"]


class Task:
    """Datasets of a task and how to batch them.

    Examples::

        >>> task = build_task("smnist", limit_train=64, limit_eval=32)
        >>> task.d_input, task.d_output, len(task.datasets["train"])
        (1, 10, 64)
    """

    kind = "classify"  # or "lm": next-token prediction (training.lm), with a tokenizer and byte counts

    def __init__(self, name, datasets, collate, d_input, d_output, lengths=None):
        self.name, self.datasets, self.collate = name, datasets, collate
        self.d_input, self.d_output = d_input, d_output
        self.lengths = lengths or {}  # split -> token counts (ListOps: for length-bucketed batches)


#: ``(d_input, d_output)`` of each classification task: the shape a model for it is built with.
CLASSIFY_SHAPES = {"smnist": (1, 10), "psmnist": (1, 10), "listops": (len(VOCAB), 10)}


def make_model(model_name: str, task: Task, model_cfg: dict):
    """The registered model ``model_name`` for ``task``: a classifier takes ``d_input``/``d_output``, a language
    model its vocabulary size."""
    if task.kind == "lm":
        return create(model_name, vocab_size=task.d_input, **model_cfg)
    return create(model_name, d_input=task.d_input, d_output=task.d_output, **model_cfg)


def build_task(name: str, *, data_dir=None, cache_dir=None, listops_sizes=(96_000, 2_000, 2_000),
               listops_lengths=(500, 2000), limit_train: int | None = None, limit_eval: int | None = None,
               seq_len: int | None = None, batch: int | None = None, tokenizer: str = "byte",
               bpe_vocab: int = 8192, listops_batching: str = "random") -> Task:
    """The datasets of ``name``; ``limit_train``/``limit_eval`` keep only the first examples (quick runs). Text
    tasks (``kjv``, ``wikitext103``: :func:`snn_ssm.training.lm.build_lm_task`) also need ``seq_len`` and ``batch``.

    ``listops_batching``: ``"random"`` (the official LRA/S4 pipeline: training batches drawn at random, evaluation
    batches in the split's order, each padded to its longest text) or ``"bucket"`` (texts of similar length batched
    together: little padding, about half the work per epoch; but a bidirectional layer reads a text's padding
    before the text itself, so its outputs depend on the padding and this trains a different model).

    Examples::

        >>> task = build_task("psmnist", limit_train=64, limit_eval=32)   # embedded subset, bit-reversal order
        >>> len(task.datasets["val"])
        32
    """
    if name in ("smnist", "psmnist"):
        splits = mnist_splits(data_dir)
        for split, limit in (("train", limit_train), ("val", limit_eval), ("test", limit_eval)):
            if limit:
                splits[split] = tuple(t[:limit] for t in splits[split])
        ds = {k: SequenceMNIST(*v, permute=name == "psmnist") for k, v in splits.items()}
        return Task(name, ds, SequenceMNIST.collate, *CLASSIFY_SHAPES[name])
    if name == "listops":
        cache = cache_dir or os.environ.get("SNN_SSM_CACHE") or Path.home() / ".cache" / "snn_ssm"
        ds = {k: ListOps(k, cache, sizes=tuple(listops_sizes), min_length=listops_lengths[0],
                         max_length=listops_lengths[1]) for k in ("train", "val", "test")}
        for split, limit in (("train", limit_train), ("val", limit_eval), ("test", limit_eval)):
            if limit:
                ds[split].keep_first(limit)
        if listops_batching not in ("random", "bucket"):
            raise ValueError(f"listops_batching must be 'random' or 'bucket', got {listops_batching!r}")
        lengths = ({k: d.piece_counts.tolist() for k, d in ds.items()} if listops_batching == "bucket" else None)
        return Task(name, ds, ListOps.collate, *CLASSIFY_SHAPES[name], lengths)
    if name in LM_TASKS:
        return build_lm_task(name, data_dir=data_dir, cache_dir=cache_dir, tokenizer=tokenizer, bpe_vocab=bpe_vocab,
                             seq_len=seq_len, batch=batch, limit_train=limit_train, limit_eval=limit_eval)
    raise ValueError(f"unknown task {name!r}: choose one of smnist, psmnist, listops, {', '.join(LM_TASKS)}")


def epoch_batches(n: int, batch: int, *, seed: int, epoch: int, shuffle: bool = True, lengths=None, rank: int = 0,
                  world: int = 1, drop_last: bool = True) -> list[list[int]]:
    """The batches of one epoch, a function of (seed, epoch) only, so a resumed run sees the same order; with
    ``world > 1`` each rank takes every ``world``-th example (as ``DistributedSampler``).

    Examples::

        >>> epoch_batches(10, 4, seed=0, epoch=0, shuffle=False)
        [[0, 1, 2, 3], [4, 5, 6, 7]]
    """
    if lengths is not None:
        batches = bucket_batches(lengths, batch * world, seed=seed * 1000 + epoch, shuffle=shuffle)
        return [b[rank::world] for b in batches if not drop_last or len(b) == batch * world]
    order = (torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch)) if shuffle
             else torch.arange(n)).tolist()
    order = order[rank::world][: n // world]
    stop = len(order) - len(order) % batch if drop_last else len(order)
    return [order[i:i + batch] for i in range(0, stop, batch)]


def cosine_with_warmup(optimizer, warmup: int, total: int):
    """Linear warmup to the base learning rates over ``warmup`` steps, then cosine decay to 0 at ``total``.

    Examples::

        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        >>> sched = cosine_with_warmup(opt, warmup=2, total=10)
        >>> [round(sched.get_last_lr()[0], 2) for _ in range(3) if not sched.step()]
        [1.0, 1.0, 0.96]
    """
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def _rng_state(model) -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state(),
             "samplers": [s.rng_state() for s in _unwrap(model).modules() if isinstance(s, SpikeSampler)]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(model, state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for s, st in zip((s for s in _unwrap(model).modules() if isinstance(s, SpikeSampler)), state["samplers"]):
        s.set_rng_state(st)


def _batches(ds, batches, collate):
    """Collated batches in the given order. (A DataLoader would draw a seed from torch's global generator each
    epoch, which a resumed run would draw again.)"""
    for idx in batches:
        yield collate([ds[i] for i in idx])


def check_precision(precision: str, device) -> str:
    """The device type, after a ``ValueError`` if ``precision`` cannot run on ``device`` (float16 needs CUDA).

    Examples::

        >>> check_precision("bf16-mixed", "cpu")
        'cpu'
    """
    kind = torch.device(device).type
    if precision == "16-mixed" and kind != "cuda":
        raise ValueError("precision 16-mixed needs a CUDA device (float16 autocast with a GradScaler); use "
                         "bf16-mixed on a CPU")
    return kind


@contextlib.contextmanager
def precision_scope(precision: str, device):
    """The numeric setting ``precision`` (:data:`~snn_ssm.training.configs.PRECISIONS`) for the code inside:
    ``"tf32"`` enables TF32 matmuls and convolutions (restored after), ``"bf16-mixed"``/``"16-mixed"`` autocast to
    bfloat16/float16 (the layers keep their FFTs and neuron states in float32), ``"32"`` changes nothing.

    Examples::

        >>> with precision_scope("bf16-mixed", "cpu"):
        ...     torch.nn.Linear(2, 2)(torch.rand(1, 2)).dtype
        torch.bfloat16
    """
    kind = check_precision(precision, device)
    if precision == "tf32":
        old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
    elif precision in ("bf16-mixed", "16-mixed"):
        with torch.autocast(kind, dtype=torch.bfloat16 if precision == "bf16-mixed" else torch.float16):
            yield
    else:
        yield


def prepare_batch(model, batch, device):
    """The host's share of a step before the model runs, with no wait for the GPU: the batch's values checked on the
    CPU (the model's own checks, which :func:`_forward` then skips inside ``checked``), the inputs and labels moved
    to ``device`` through pinned memory (a plain ``.to`` would wait for the GPU's queued work), ListOps' ``lengths``
    left on the CPU, where the model checks them. Returns the model's arguments, the labels and whether the batch
    was checked here."""
    check = getattr(_unwrap(model), "check_values", None)  # a classifier's; other models check their own input
    if check is not None:
        check(batch[0])
    return (to_device(batch[0], device), *batch[2:3]), to_device(batch[1], device), check is not None


def _forward(model, batch, device):
    """The model's output and the labels on ``device``, with no step of the host waiting for the GPU
    (:func:`prepare_batch`), so the host collates the next batch while the GPU still runs this step."""
    args, y, checked = prepare_batch(model, batch, device)
    with _checks.checked() if checked else contextlib.nullcontext():
        return model(*args), y


@torch.no_grad()
def evaluate(model, task: Task, split: str, batch: int, device, *, monitor: bool = False,
             precision: str = "32", carry: bool = False) -> dict:
    """Accuracy and loss on ``split``; with ``monitor``, spike rates per layer and operations/energy per example.

    Examples::

        >>> task = build_task("smnist", limit_eval=16)
        >>> model = snn_ssm.SpikingSSM(1, 10, d_model=8, n_layers=1)
        >>> sorted(evaluate(model, task, "test", 16, "cpu"))
        ['accuracy', 'examples', 'loss']
    """
    if task.kind == "lm":  # perplexity and bits per byte (carry: the state runs on across chunks)
        return evaluate_lm(model, task, split, batch, device, monitor=monitor, precision=precision, carry=carry)
    ds = task.datasets[split]
    batches = epoch_batches(len(ds), batch, seed=0, epoch=0, shuffle=False, lengths=task.lengths.get(split),
                            drop_last=False)
    correct, loss, n = 0, 0.0, 0
    with evaluating(model, monitor) as monitored:
        for b in _batches(ds, batches, task.collate):
            with precision_scope(precision, device):
                out, y = _forward(model, b, device)
            out = out.float()
            loss += float(F.cross_entropy(out, y, reduction="sum"))
            correct += int((out.argmax(-1) == y).sum())
            n += len(y)
    return {"accuracy": correct / n, "loss": loss / n, "examples": n, **monitored(n, "example")}


def load_checkpoint(path, model_name: str | None = None, *, weights_only: bool = False) -> dict:
    """A checkpoint written by :func:`train` (a run folder means its ``last.pt``), checked to be one and, with
    ``model_name``, to hold that model; a clear ``ValueError``/``FileNotFoundError`` otherwise. ``weights_only``:
    what evaluating or exporting needs (the model, its config and task) is enough, so a ``best.pt`` slimmed of its
    optimizer and RNG states is accepted; resuming needs the whole checkpoint.

    Examples::

        >>> ckpt = load_checkpoint("runs/spikingssm-smnist-20261124-120000")    # doctest: +SKIP
        >>> ckpt["model_name"], ckpt["step"]                                      # doctest: +SKIP
        ('spikingssm', 9000)
    """
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file
        raise ValueError(f"{path} is not an snn_ssm checkpoint ({type(e).__name__}: {e})") from None
    needed = CHECKPOINT_KEYS[:4] if weights_only else CHECKPOINT_KEYS
    missing = [k for k in needed if k not in ckpt] if isinstance(ckpt, dict) else ["model_name"]
    if missing:
        raise ValueError(f"{path} is not a complete snn_ssm checkpoint (missing {', '.join(missing)})")
    if model_name is not None and ckpt["model_name"] != model_name:
        raise ValueError(f"{path} holds a {ckpt['model_name']!r} model, not {model_name!r}: pass --model "
                         f"{ckpt['model_name']} or start a new run")
    return ckpt


def atomic_save(obj, path) -> None:
    """``torch.save`` to ``path`` so that a kill at any moment leaves either the old file or the new one: write a
    temporary file beside it, flush it to disk, then rename it over ``path`` (atomic on POSIX and Windows).

    Examples::

        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "last.pt"
        >>> atomic_save({"step": 1}, p); torch.load(p)["step"]
        1
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


#: The files of a run in its folder (a fresh run refuses a folder that holds any of them).
RUN_FILES = ("metrics.jsonl", "last.pt", "best.pt", "report.json")

#: Checkpoint keys a resume needs (a file without them is not a whole snn_ssm checkpoint); eval and export need
#: only the first four.
CHECKPOINT_KEYS = ("model_name", "task", "config", "model", "optimizer", "scheduler", "epoch", "batch_in_epoch",
                   "step", "best_val", "rng")


def _setup_distributed(device: str):
    """``(rank, world, owned)``: under torchrun, the process group, opened here unless the caller opened it
    (``owned`` says which: :func:`_close_distributed` closes only a group opened here)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, False
    import torch.distributed as dist

    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank(), world, owned


def _close_distributed(world: int, owned: bool) -> None:
    """End a multi-process run cleanly: the ranks wait for each other, then a group opened by :func:`train` is
    destroyed before the interpreter exits. Left to the interpreter's shutdown, gloo's threads aborted a rank now
    and then ("terminate called without an active exception", about one 2-process CPU run in five)."""
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        if owned:
            dist.destroy_process_group()


def train(model_name: str, task: Task, cfg: dict, out_dir, *, device: str = "cpu", resume=None,
          max_steps: int | None = None, max_minutes: float | None = None, val_every: int | None = None,
          ckpt_every: int | None = 500, progress: bool = True, plots: bool = True, log=print, data: dict | None = None,
          overwrite: bool = False) -> dict:
    """Train, validate each epoch (and every ``val_every`` steps), keep best/last checkpoints, and report.

    ``max_steps`` stops after that many optimizer steps in total, and ``max_minutes`` after the first step that ends
    that many minutes after this call began training, each saving ``last.pt`` (a job with a time limit; ``resume``
    continues it exactly). The training time, summed over the resumed parts, is kept in the checkpoints, stamped
    on each validation line of ``metrics.jsonl`` (``seconds``) and reported as ``train_seconds``. ``last.pt`` is
    also written every ``ckpt_every`` steps and at each epoch's end, so a killed run loses at most that much.
    Returns the final report (also written to ``report.json``).

    ``data`` (the options the task was built with) is stored in every checkpoint, so a resume can rebuild the same
    data. A fresh run refuses a folder that already holds a run (its ``metrics.jsonl`` or checkpoints) unless
    ``overwrite``, which deletes that run's files first; a resume writes into its own folder.

    Examples::

        >>> import tempfile
        >>> task = build_task("smnist", limit_train=32, limit_eval=16)
        >>> from snn_ssm.training import get_config
        >>> cfg = get_config("s4d", "smnist", ["model.d_model=8", "model.n_layers=1", "train.epochs=1",
        ...                                    "train.batch=16"])
        >>> report = train("s4d", task, cfg, tempfile.mkdtemp(), progress=False, plots=False, log=lambda s: None)
        >>> report["steps"], report["test"]["examples"]
        (2, 16)
    """
    rank, world, owned = _setup_distributed(device)
    if device.startswith("cuda") and world > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(device)
    out = Path(out_dir)
    main_proc = rank == 0
    for name, v in (("max_steps", max_steps), ("val_every", val_every), ("ckpt_every", ckpt_every)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if max_minutes is not None:
        positive_number(max_minutes, "max_minutes")
    if main_proc:
        _prepare_run_folder(out, resume=bool(resume), overwrite=overwrite)
    t = cfg["train"]
    ckpt = load_checkpoint(resume, model_name) if resume else None
    if ckpt is not None:
        cfg = ckpt["config"]
        t = cfg["train"]
    torch.manual_seed(t["seed"])
    random.seed(t["seed"])
    np.random.seed(t["seed"] % 2**32)
    model = make_model(model_name, task, cfg["model"]).to(device)
    lm = task.kind == "lm"
    carry = lm and bool(t.get("carry_state", False))  # truncated BPTT: consecutive chunks, in order
    n_train = len(task.datasets["train"])
    steps_per_epoch = len(epoch_batches(n_train, t["batch"], seed=t["seed"], epoch=0,
                                        lengths=task.lengths.get("train"), rank=rank, world=world))
    if steps_per_epoch == 0:
        raise ValueError(f"batch {t['batch']} x {world} processes is larger than the {n_train} training examples")
    total = t["epochs"] * steps_per_epoch
    if hasattr(model, "manual_seed"):  # P-SpikeSSM's samplers draw from their own seeded generators
        model.manual_seed(t["seed"])
    # a dry forward (eval mode: no norm statistics move) builds lazily created parameters before the optimizer
    with torch.no_grad():
        _forward(model.eval(), task.collate([task.datasets["train"][0]]), device)
    opt = torch.optim.AdamW(param_groups(model, lr=t["lr"], weight_decay=t["weight_decay"]), betas=(0.9, 0.999))
    prec = str(t.get("precision", "32"))  # runs from before the option trained in float32
    scaler = torch.amp.GradScaler(check_precision(prec, device), enabled=prec == "16-mixed")
    warmup = t["warmup"]
    if 2 * warmup > total:  # a short run (few epochs or a small subset): keep a tenth of it for the warmup
        warmup = max(1, total // 10)
        if main_proc:
            log(f"warmup shortened from {t['warmup']} to {warmup} steps for a run of {total} steps")
    sched = cosine_with_warmup(opt, warmup, total)
    start_epoch, skip, step, best, history = 0, 0, 0, -math.inf if lm else -1.0, []
    seconds_before = 0.0  # training time of the parts of this run before a resume
    carried = None  # the language model's state between consecutive chunks (carry_state)
    if ckpt is not None:
        _restore(ckpt, resume, model_name, model, opt, sched, scaler)
        start_epoch, skip, step, best = ckpt["epoch"], ckpt["batch_in_epoch"], ckpt["step"], ckpt["best_val"]
        seconds_before = float(ckpt.get("train_seconds", 0.0))  # absent from runs before it was kept
        _set_rng_state(model, ckpt["rng"])
        if carry and skip:
            carried = _state_to(ckpt.get("lm_state"), device)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    # train.compile: the training steps run the model through torch.compile (validation and the test stay eager)
    compiled = t.get("compile", False)
    step_model = model if not compiled else torch.compile(model, backend="inductor" if compiled is True else compiled)
    log_path = out / "metrics.jsonl"
    if ckpt is not None and main_proc:
        _drop_lines_after(log_path, step)

    data_options = data if data is not None else (ckpt or {}).get("data")

    def save(name, epoch, batch_in_epoch, best_val):
        if not main_proc:
            return
        extra = {"tokenizer": task.tokenizer.state(), "lm_state": _state_to(carried, "cpu")} if lm else {}
        atomic_save({"model_name": model_name, "task": task.name, "config": cfg, "data": data_options,
                     "model": _unwrap(model).state_dict(), "optimizer": opt.state_dict(),
                     "scheduler": sched.state_dict(), "epoch": epoch, "batch_in_epoch": batch_in_epoch, "step": step,
                     "best_val": best_val, "rng": _rng_state(model), "scaler": scaler.state_dict(),
                     "train_seconds": seconds(), **extra},
                    out / name)

    def seconds():
        return seconds_before + time.time() - start

    def record(entry):
        entry = {**entry, "seconds": round(seconds(), 3)}  # training time so far (a train line follows a .item())
        if ("val_accuracy" in entry or "val_loss" in entry) and torch.device(device).type == "cuda":
            entry["peak_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)  # this rank's GPU
        history.append(entry)
        if main_proc:
            with open(log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")

    bar = None
    if progress and main_proc:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=step, desc=f"{model_name}/{task.name}", unit="step")
    stopped = False
    start = time.time()
    rate_reg = RateRegulariser(_unwrap(model), t.get("rate_target", 0.0), t.get("rate_weight", 0.0))
    for epoch in range(start_epoch, t["epochs"]):
        batches = epoch_batches(n_train, t["batch"], seed=t["seed"], epoch=epoch, lengths=task.lengths.get("train"),
                                rank=rank, world=world, shuffle=not carry)
        loader = _batches(task.datasets["train"], batches[skip:], task.collate)
        model.train()
        if not skip:
            carried = None
        for i, b in enumerate(loader, start=skip):
            with precision_scope(prec, device), (rate_reg if lm else contextlib.nullcontext()):
                rate_reg.collect()
                if lm:
                    loss, carried = lm_loss(step_model, b, device, carried, carry)
                    loss = loss + rate_reg.penalty()
                else:
                    out_, y = _forward(step_model, b, device)
                    loss = F.cross_entropy(out_.float(), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)  # float16: skips a step whose gradients overflowed, as the scaler lowers its scale
            scaler.update()
            sched.step()
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", best=f"{max(best, 0):.3f}")
            if step % 10 == 0 or i == len(batches) - 1:
                entry = {"step": step, "epoch": epoch, "loss": loss.item(), "lr": sched.get_last_lr()[0]}
                if lm and rate_reg.rates():
                    entry["spike_rates"] = rate_reg.rates()
                record(entry)
            if val_every and step % val_every == 0:
                best = _validate(model, task, t, device, step, epoch, best, record, save, i + 1)
            if ckpt_every and step % ckpt_every == 0:
                save("last.pt", epoch, i + 1, best)
            if (max_steps is not None and step >= max_steps) or \
                    (max_minutes is not None and time.time() - start >= 60 * max_minutes):
                save("last.pt", epoch, i + 1, best)
                stopped = True
                break
        if stopped:
            break
        skip = 0
        best = _validate(model, task, t, device, step, epoch, best, record, save, None)
        save("last.pt", epoch + 1, 0, best)
    if bar is not None:
        bar.close()
    if stopped:
        if main_proc:
            log(f"stopped after {step} steps; continue with --resume {out}")
        _close_distributed(world, owned)
        return {"stopped_at_step": step, "history": history}
    report = {"model": model_name, "task": task.name, "steps": step, "train_seconds": round(seconds(), 2),
              **({"best_val_loss": -best} if lm else {"best_val_accuracy": best})}
    report = _test_report(_unwrap(model), task, cfg, out, device, report, write=main_proc, plots=plots, log=log)
    _close_distributed(world, owned)
    return report


def _prepare_run_folder(out: Path, *, resume: bool, overwrite: bool) -> None:
    """``out`` ready for a run: a writable folder; a fresh run refuses one that holds a run (deletes its files with
    ``overwrite``), a resume writes into its own."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"the run folder {out} is a file, not a folder")
    earlier = [p for p in RUN_FILES if (out / p).exists()]
    if earlier and not resume:
        if not overwrite:
            raise ValueError(f"{out} already holds a run ({', '.join(earlier)}): continue it with --resume {out}, "
                             f"pick another --out, or pass --overwrite to replace it")
        for p in earlier:
            (out / p).unlink()
    writable_folder(out, "the run folder")


def _restore(ckpt: dict, resume, model_name: str, model, opt, sched, scaler) -> None:
    """Load a checkpoint's weights (a clear ``ValueError`` if they do not fit), optimizer, schedule and scaler."""
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ValueError(f"{resume}: its weights do not fit the {model_name!r} model its config describes "
                         f"({' '.join(str(e).split())[:300]})") from None
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    if ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])


def _drop_lines_after(log_path: Path, step: int) -> None:
    """Drop the lines a resumed run will log again: those of steps after its checkpoint."""
    if not log_path.exists():
        return
    kept = [line for line in log_path.read_text().splitlines() if json.loads(line)["step"] <= step]
    tmp = log_path.with_name(".metrics.jsonl.tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, log_path)


def _test_report(model, task: Task, cfg: dict, out: Path, device, report: dict, *, write: bool, plots: bool,
                 log) -> dict:
    """``report`` with the best checkpoint's test result (spike rates, operations and energy) and the config;
    with ``write``, saved as ``report.json`` (and the plots), and logged."""
    t = cfg["train"]
    if (out / "best.pt").exists():
        model.load_state_dict(torch.load(out / "best.pt", map_location="cpu", weights_only=False)["model"])
    carry = task.kind == "lm" and bool(t.get("carry_state", False))
    test = evaluate(model, task, "test", t["batch"], device, monitor=True, precision=str(t.get("precision", "32")),
                    carry=carry)
    report = {**report, "test": test, "config": cfg}
    if write:
        (out / "report.json").write_text(json.dumps(report, indent=1))
        if plots and task.kind != "lm":
            from .plots import write_plots

            write_plots(out, model, task, device)
        log(format_report(report))
    return report


def _validate(model, task, t, device, step, epoch, best, record, save, batch_in_epoch):
    """Validate; keep ``best.pt`` at the best score (accuracy, or −loss for a language model)."""
    val = evaluate(model, task, "val", t["batch"], device, precision=str(t.get("precision", "32")),
                   carry=task.kind == "lm" and bool(t.get("carry_state", False)))
    if task.kind == "lm":
        record({"step": step, "epoch": epoch, "val_loss": val["loss"], "val_perplexity": val["perplexity"],
                "val_bits_per_byte": val["bits_per_byte"]})
        score = -val["loss"]
    else:
        record({"step": step, "epoch": epoch, "val_accuracy": val["accuracy"], "val_loss": val["loss"]})
        score = val["accuracy"]
    if score > best:
        best = score
        save("best.pt", epoch if batch_in_epoch is not None else epoch + 1, batch_in_epoch or 0, best)
    return best


def _state_to(state, device):
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.to(device)
    return type(state)(_state_to(s, device) for s in state)


@contextlib.contextmanager
def evaluating(model, monitor: bool):
    """``model`` in eval mode for the block (its training flag restored after, also on an error), with spike-rate
    and energy hooks on its layers when ``monitor``. Yields ``monitored(n, unit)``: after the block, the monitors'
    entries of a result for ``n`` examples or tokens (``unit``), or ``{}`` without ``monitor``."""
    was_training = model.training
    inner = _unwrap(model)
    rates, meter = SpikeRateMonitor(inner), EnergyMeter(inner)
    model.eval()
    try:
        with contextlib.ExitStack() as hooks:
            if monitor:
                hooks.enter_context(rates)
                hooks.enter_context(meter)
            yield lambda n, unit: monitor_fields(rates, meter, n, unit) if monitor else {}
    finally:
        model.train(was_training)


def monitor_fields(rates: SpikeRateMonitor, meter: EnergyMeter, n: int, unit: str) -> dict:
    """The spike rates and the operations and energy per ``unit`` (``"example"``, ``"token"``) of ``n`` of them."""
    energy = meter.report()
    return {"spike_rates": rates.rates(), "mean_spike_rate": rates.mean_rate(),
            f"ops_per_{unit}": {"MACs": energy["full"]["MACs"] / n, "ACs": energy["full"]["ACs"] / n},
            f"energy_uJ_per_{unit}": {"full": energy["full"]["energy_uJ"] / n,
                                      "paper (feature mix on spikes)": energy["paper"]["energy_uJ"] / n,
                                      "paper, same layers as an ANN": energy["paper"]["ann_energy_uJ"] / n},
            "energy_constants_pJ": energy["constants_pJ"]}


def format_report(report: dict) -> str:
    test = report["test"]
    if "perplexity" in test:
        head = (f"{report['model']} on {report['task']}: test perplexity {test['perplexity']:.2f}, "
                f"{test['bits_per_byte']:.3f} bits per byte ({test['tokens']} tokens)"
                + (f", best validation loss {report['best_val_loss']:.4f}" if "best_val_loss" in report else ""))
        unit = "token"
    else:
        head = (f"{report['model']} on {report['task']}: test accuracy {100 * test['accuracy']:.2f}% "
                f"({test['examples']} examples)"
                + (f", best validation {100 * max(report['best_val_accuracy'], 0):.2f}%"
                   if "best_val_accuracy" in report else ""))
        unit = "example"
    lines = [head]
    for name, r in test.get("spike_rates", {}).items():
        lines.append(f"  spike rate {name}: {r:.4f} (sparsity {100 * (1 - r):.1f}%)")
    if f"ops_per_{unit}" in test:
        ops, e = test[f"ops_per_{unit}"], test[f"energy_uJ_per_{unit}"]
        lines.append(f"  per {unit}: {ops['MACs']:.3g} MACs, {ops['ACs']:.3g} ACs (synaptic operations)")
        lines.append(f"  energy per {unit}: full accounting {e['full']:.4g} uJ; SpikingSSM paper's accounting "
                     f"(feature mix on spikes only) {e['paper (feature mix on spikes)']:.4g} uJ vs "
                     f"{e['paper, same layers as an ANN']:.4g} uJ for the same layers as MACs")
    return "\n".join(lines)
