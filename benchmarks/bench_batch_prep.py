"""The CPU's work per training step when the model runs elsewhere, with PyTorch's CPU thread pool at its default
size and at one thread, while other processes keep some cores busy.

When ``python -m snn_ssm train`` runs on a GPU, the CPU's part of a step is fetching and collating the batch,
checking its values and copying it into pinned memory (``snn_ssm.training.loop.prepare_batch``). A batch of
sMNIST or ListOps is large enough (50 × 784, 32 × 2,000 values) for PyTorch to split those operations over its
thread pool, one thread per core by default. Each split waits for all its threads, so a single busy core anywhere
on the machine (a second run on the same GPU, a data generator, a compile) stalls every one of them for up to a
scheduler time slice. This times that host part, per batch, for each pool size × number of spinning processes,
alternated in one process. Mean milliseconds per batch are what a run pays (the stalls are rare and long, so the
median hides them); the median is shown beside it.

    cd benchmarks && python bench_batch_prep.py                      # the CPU path (no copy), 0 and 1 busy core
    cd benchmarks && python bench_batch_prep.py --device cuda --busy 0 1 4   # with the pinned-memory copy
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import spinning, write

from snn_ssm.training import get_config
from snn_ssm.training.loop import build_task, epoch_batches, make_model, prepare_batch

DEFAULT_CONFIGS = ["spikingssm/psmnist", "spikingssm/listops"]


def _case(config: str, data_dir, cache: str, listops_train: int):
    """``(prepare one batch, batch size)`` for ``config``: the loop's fetch, collate, checks and copy."""
    model_name, task_name = config.split("/")
    cfg = get_config(model_name, task_name)
    task = build_task(task_name, data_dir=data_dir, cache_dir=cache, listops_sizes=(listops_train, 64, 64))
    model = make_model(model_name, task, cfg["model"])  # stays on the CPU: only its value checks run
    ds, batch = task.datasets["train"], cfg["train"]["batch"]
    batches = epoch_batches(len(ds), batch, seed=0, epoch=0, lengths=task.lengths.get("train"))
    cursor = [0]

    def prepare(device):
        idx = batches[cursor[0] % len(batches)]
        cursor[0] += 1
        return prepare_batch(model, task.collate([ds[i] for i in idx]), device)

    return prepare, batch


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="where the batch goes (cuda: through pinned memory)")
    p.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    p.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="processes spinning beside (default 0 1)")
    p.add_argument("--data-dir", default=None, help="MNIST IDX folder (default: $SNN_SSM_DATA or the embedded subset)")
    p.add_argument("--listops-train", type=int, default=2000, help="ListOps training texts to generate")
    p.add_argument("--batches", type=int, default=200, help="batches per timed block")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)
    if min(args.busy) < 0:
        p.error(f"--busy takes counts >= 0, got {args.busy}")
    pools = sorted({torch.get_num_threads(), 1}, reverse=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(c, *_case(c, args.data_dir, tmp, args.listops_train)) for c in args.configs]
        for busy in args.busy:
            with spinning(busy):
                for config, prepare, batch in cases:
                    times = {n: [] for n in pools}
                    for n in pools:  # warm-up: caches, the pinned allocator
                        torch.set_num_threads(n)
                        for _ in range(10):
                            prepare(args.device)
                    for _ in range(args.repeats):  # alternated, so drifting clocks hit both pools alike
                        for n in pools:
                            torch.set_num_threads(n)
                            for _ in range(args.batches):
                                t0 = time.perf_counter()
                                prepare(args.device)
                                times[n].append(1e3 * (time.perf_counter() - t0))
                    for n in pools:
                        mean, median = statistics.fmean(times[n]), statistics.median(times[n])
                        rows.append({"config": config, "batch": batch, "busy": busy, "threads": n,
                                     "mean_ms": mean, "median_ms": median, "max_ms": max(times[n])})
                        print(f"{config:20s} busy {busy}  {n:3d} threads  mean {mean:7.3f} ms  "
                              f"median {median:7.3f} ms  max {max(times[n]):8.2f} ms", flush=True)
    torch.set_num_threads(pools[0])
    columns = {"config": ("config", "{}"), "batch": ("batch", "{}"), "busy processes": ("busy", "{}"),
               "CPU threads": ("threads", "{}"), "mean ms/batch": ("mean_ms", "{:.3f}"),
               "median ms": ("median_ms", "{:.3f}"), "max ms": ("max_ms", "{:.2f}")}
    write(args, "batch_prep", "the CPU's share of a training step (fetch, collate, check, copy)",
          "Batch preparation on the host", columns, rows)
    return rows


if __name__ == "__main__":
    main()
