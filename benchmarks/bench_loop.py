"""Time per training step of the CLI's loop on real batches, with the input path it has now beside the one it had.

``bench_train.py`` times a step on a batch already on the device; this times what ``python -m snn_ssm train`` does
per step, from the dataset to the optimizer: fetch and collate the batch on the CPU, move it, forward under the
precision's autocast, backward, AdamW step. Two input paths, alternated in one process on one model:

- ``before`` (the loop until 2026-12-07): ListOps texts encoded item by item when a batch is fetched; the batch
  moved with a plain ``.to(device)`` (which waits for the GPU's queued work), ListOps' lengths moved to the GPU, and
  the model's value checks (finite input, token ids, lengths) run on the GPU copies, each a full reduction that
  makes the host wait.
- ``now``: the texts encoded once when the dataset loads; the batch checked on the CPU, moved through pinned
  memory without waiting, lengths checked on the CPU (``snn_ssm.training.loop._forward``).

Wall-clock milliseconds per step (the host's time, which is what a run takes) over ``--steps`` steps after
``--warmup``, the GPU synchronised before and after each timed block; medians of ``--repeats`` blocks.

``--busy K`` keeps K more processes spinning on a core each beside the loop (another job on the machine), and
``--cpu-threads`` times each of several PyTorch CPU pool sizes (the CLI takes one thread on CUDA: a pool of one
thread per core stalls whenever a core is busy, ``bench_batch_prep.py``).

    cd benchmarks && python bench_loop.py --device cuda                          # ListOps and psMNIST configs
    cd benchmarks && python bench_loop.py --device cuda --busy 0 1 --cpu-threads 16 1
    cd benchmarks && python bench_loop.py --device cpu --configs spikingssm/listops --steps 3 --warmup 1
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import spinning, write

import snn_ssm
from snn_ssm.data.listops import encode
from snn_ssm.training import get_config
from snn_ssm.training._args import cpu_threads
from snn_ssm.training.loop import _forward, build_task, epoch_batches, make_model, precision_scope

DEFAULT_CONFIGS = ["spikingssm/listops", "spikingssm/psmnist"]


def _before_forward(model, batch, device):
    x, y = batch[0].to(device), batch[1].to(device)
    return (model(x) if len(batch) == 2 else model(x, batch[2].to(device))), y


def _runner(config: str, precision: str, device: str, data_dir, cache: str, listops_train: int, batching: str):
    model_name, task_name = config.split("/")
    cfg = get_config(model_name, task_name)
    task = build_task(task_name, data_dir=data_dir, cache_dir=cache, listops_sizes=(listops_train, 64, 64),
                      listops_batching=batching)
    torch.manual_seed(0)
    model = make_model(model_name, task, cfg["model"]).to(device)
    ds = task.datasets["train"]
    _forward(model.eval(), task.collate([ds[0]]), device)  # lazily built parameters, as the CLI builds them
    model.train()
    opt = torch.optim.AdamW(snn_ssm.param_groups(model, cfg["train"]["lr"], cfg["train"]["weight_decay"]))
    batches = epoch_batches(len(ds), cfg["train"]["batch"], seed=0, epoch=0, lengths=task.lengths.get("train"))
    fetch = {"now": lambda idx: task.collate([ds[i] for i in idx]),
             "before": (lambda idx: task.collate([(encode(ds.sources[i]), ds.labels[i]) for i in idx]))
             if task_name == "listops" else (lambda idx: task.collate([ds[i] for i in idx]))}
    forward = {"now": _forward, "before": _before_forward}
    cursor = [0]

    def run(path: str, steps: int) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            idx = batches[cursor[0] % len(batches)]
            cursor[0] += 1
            with precision_scope(precision, device):
                out, y = forward[path](model, fetch[path](idx), device)
                loss = F.cross_entropy(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return 1e3 * (time.perf_counter() - t0) / steps

    return run, cfg["train"]["batch"]


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    p.add_argument("--precision", default="bf16-mixed")
    p.add_argument("--data-dir", default=None, help="MNIST IDX folder (default: $SNN_SSM_DATA or the embedded subset)")
    p.add_argument("--cache-dir", default=None, help="ListOps cache (default: a temporary folder)")
    p.add_argument("--listops-train", type=int, default=3000, help="ListOps training texts to generate")
    p.add_argument("--listops-batching", choices=("random", "bucket"), default="random",
                   help="as the CLI's option (bucket: as the SpikingSSM ListOps run of RESULTS.md)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cpu-threads", type=int, nargs="+", default=None,
                   help="PyTorch's CPU thread pool sizes to time (default: the CLI's choice, 1 on CUDA)")
    p.add_argument("--busy", type=int, nargs="+", default=[0],
                   help="processes spinning on a core each beside the loop (another job on the machine; default 0)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)
    with cpu_threads(None, args.device) as cli_choice:  # the pool the CLI would train with on this device
        pools = args.cpu_threads or [cli_choice]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs:
            run, batch = _runner(config, args.precision, args.device, args.data_dir, args.cache_dir or tmp,
                                 args.listops_train, args.listops_batching)
            for busy in args.busy:
                with spinning(busy):
                    cases = [(path, n) for n in pools for path in ("before", "now")]
                    for path, n in cases:
                        torch.set_num_threads(n)
                        run(path, args.warmup)
                    times = {case: [] for case in cases}
                    for _ in range(args.repeats):  # alternated, so drifting clocks hit every case alike
                        for path, n in cases:
                            torch.set_num_threads(n)
                            times[path, n].append(run(path, args.steps))
                for path, n in cases:
                    ms = statistics.median(times[path, n])
                    rows.append({"config": config, "path": path, "precision": args.precision, "batch": batch,
                                 "batching": args.listops_batching if "listops" in config else "random",
                                 "threads": n, "busy": busy, "ms_per_step": ms,
                                 "speedup": statistics.median(times["before", n]) / ms})
                    print(f"{config:22s} {path:6s} {n:3d} threads  busy {busy}  {ms:8.2f} ms/step  "
                          f"x{rows[-1]['speedup']:.2f}", flush=True)
    columns = {"config": ("config", "{}"), "input path": ("path", "{}"), "precision": ("precision", "{}"),
               "batch": ("batch", "{}"), "batches": ("batching", "{}"), "CPU threads": ("threads", "{}"),
               "busy processes": ("busy", "{}"), "ms/step (wall)": ("ms_per_step", "{:.2f}"),
               "x before": ("speedup", "{:.2f}")}
    write(args, "loop", "the CLI's training step on real batches", "Training loop step time", columns, rows)
    return rows


if __name__ == "__main__":
    main()
