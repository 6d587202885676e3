"""Data-parallel training through the CLI: ``torchrun --nproc_per_node N -m snn_ssm train`` at each N, the same
global batch (``train.batch`` = global / N per process), each run stopped by ``--max-steps`` and validated there.

From each run's ``metrics.jsonl``: the time per step (the training seconds logged every 10 steps, between
``--warm`` and the last step, so start-up and compilation are left out), the time per epoch it implies, the speed-up
and scaling efficiency against the smallest N, the validation accuracy after the fixed number of steps, and on
CUDA rank 0's peak GPU memory. ``--resume-check`` also stops a run at half the steps, resumes it, and compares its
final weights with the uninterrupted run's (both at the largest N).

    cd benchmarks && python bench_ddp.py --device cuda --nproc 1 2 4 --data-dir /path/to/mnist --resume-check
    python bench_ddp.py --device cpu --nproc 1 2 --steps 40 --warm 20 --set model.d_model=32   # gloo, a smoke run

Scaling needs as many GPUs as the largest N (NCCL on CUDA, gloo on CPUs); CUDA counts above the GPUs present are
skipped with a message.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from _common import parser, write

from snn_ssm.training.configs import get_config
from snn_ssm.training.loop import build_task

ROOT = Path(__file__).resolve().parents[1]


def train(n: int, out: Path, args, steps: int, resume: bool = False) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n), "-m",
           "snn_ssm", "train"]
    if resume:
        cmd += ["--model", args.model, "--task", args.task, "--resume", str(out), "--max-steps", str(steps),
                "--quiet", "--no-plots"]
    else:
        cmd += ["--model", args.model, "--task", args.task, "--out", str(out), "--max-steps", str(steps),
                "--val-every", str(args.steps), "--quiet", "--no-plots", "--device", args.device,
                "--set", f"train.batch={args.global_batch // n}", *args.set]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    if args.device == "cpu":
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // n))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-4000:]}")


def measure(run: Path, warm: int, steps: int) -> dict:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in rows if "loss" in r and warm <= r["step"] <= steps]
    if len(timed) < 2:
        raise ValueError(f"{run}: fewer than two logged steps between --warm {warm} and --steps {steps}")
    val = [r for r in rows if "val_accuracy" in r]
    ms = 1e3 * (timed[-1]["seconds"] - timed[0]["seconds"]) / (timed[-1]["step"] - timed[0]["step"])
    return {"ms_per_step": ms, "val_accuracy": val[-1]["val_accuracy"] if val else float("nan"),
            "peak_mib": val[-1].get("peak_mib", float("nan")) if val else float("nan")}


def final_weights(run: Path) -> dict:
    return torch.load(run / "last.pt", map_location="cpu", weights_only=False)["model"]


def main():
    p = parser(__doc__)
    p.add_argument("--model", default="spikingssm")
    p.add_argument("--task", default="psmnist")
    p.add_argument("--data-dir", default=os.environ.get("SNN_SSM_DATA"))
    p.add_argument("--nproc", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--global-batch", type=int, default=None, help="default: the named config's batch")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps per run (validated at the last)")
    p.add_argument("--warm", type=int, default=50, help="steps left out of the timing (start-up, compilation)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    p.add_argument("--resume-check", action="store_true")
    p.add_argument("--timeout", type=int, default=3600)
    args = p.parse_args()
    if args.global_batch is None:
        args.global_batch = get_config(args.model, args.task)["train"]["batch"]
    if not 10 <= args.warm + 10 <= args.steps:
        p.error("--steps must exceed --warm by at least 10 (the CLI logs every 10 steps)")
    usable = [n for n in args.nproc if args.device != "cuda" or n <= torch.cuda.device_count()]
    for n in sorted(set(args.nproc) - set(usable)):
        print(f"nproc {n}: skipped, {torch.cuda.device_count()} GPU(s) here")
    for n in usable:
        if args.global_batch % n:
            p.error(f"--global-batch {args.global_batch} does not split over {n} processes")
    rows, tmp = [], Path(tempfile.mkdtemp(prefix="bench_ddp_"))
    steps_per_epoch = None
    for n in usable:
        train(n, tmp / f"n{n}", args, args.steps)
        row = {"nproc": n, "batch_per_process": args.global_batch // n, **measure(tmp / f"n{n}", args.warm,
                                                                                  args.steps)}
        if steps_per_epoch is None:
            data = torch.load(tmp / f"n{n}" / "last.pt", map_location="cpu", weights_only=False).get("data") or {}
            task = build_task(args.task, data_dir=data.get("data_dir"), listops_sizes=data.get(
                "listops_sizes", (96_000, 2_000, 2_000)), listops_lengths=data.get("listops_lengths", (500, 2000)))
            steps_per_epoch = len(task.datasets["train"]) // args.global_batch
        row["s_per_epoch"] = row["ms_per_step"] * steps_per_epoch / 1e3
        rows.append(row)
    for row in rows:
        row["speedup"] = rows[0]["s_per_epoch"] / row["s_per_epoch"]
        row["efficiency"] = row["speedup"] * rows[0]["nproc"] / row["nproc"]
        print(f"nproc {row['nproc']}: {row['ms_per_step']:.2f} ms/step, {row['s_per_epoch']:.1f} s/epoch, "
              f"x{row['speedup']:.2f} ({100 * row['efficiency']:.0f} %), val {100 * row['val_accuracy']:.2f} % after "
              f"{args.steps} steps, peak {row['peak_mib']} MiB", flush=True)
    if args.resume_check:
        n = usable[-1]
        part = tmp / f"n{n}-resumed"
        train(n, part, args, args.steps // 2)
        train(n, part, args, args.steps, resume=True)
        a, b = final_weights(tmp / f"n{n}"), final_weights(part)
        same = all(torch.equal(a[k], b[k]) for k in a)
        print(f"nproc {n}: stopped at step {args.steps // 2} and resumed: final weights "
              f"{'identical to' if same else 'DIFFERENT from'} the uninterrupted run's")
        rows[-1]["resume"] = (f"stopped at {args.steps // 2} and resumed: final weights "
                              f"{'identical' if same else 'DIFFERENT'}")
    write(args, "ddp", f"{args.model}/{args.task}, global batch {args.global_batch}, {args.steps} steps per run "
          f"(timed from step {args.warm}); overrides {args.set or 'none'}",
          "Data-parallel training through the CLI (torchrun)",
          {"processes": ("nproc", "{}"), "batch / process": ("batch_per_process", "{}"),
           "ms/step": ("ms_per_step", "{:.2f}"), "s/epoch": ("s_per_epoch", "{:.1f}"),
           "speed-up": ("speedup", "{:.2f}"),
           "efficiency": ("efficiency", "{:.0%}"), "val accuracy": ("val_accuracy", "{:.2%}"),
           "peak MiB (rank 0)": ("peak_mib", "{}"), "resume": ("resume", "{}")}, rows)


if __name__ == "__main__":
    main()
