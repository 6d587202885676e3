"""Where one training step of a named config spends its time: torch.profiler over a few steps of what
``bench_train.py`` times, the operators ranked by their device time, with the step's wall time and the sum of
its kernels' times beside it (their difference is time the GPU waits for the host).

    cd benchmarks && python prof_train.py --device cuda --config spikingssm/smnist --precision bf16-mixed

Writes ``prof_train_{device}_{date}[_{tag}].txt`` under ``--out``.
"""
from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

import torch
from bench_train import training_step
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from snn_ssm.training.configs import PRECISIONS


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--config", nargs="+", default=["spikingssm/smnist"], help="model/task names")
    p.add_argument("--precision", default="bf16-mixed", choices=PRECISIONS)
    p.add_argument("--backend", default="auto")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rows", type=int, default=25)
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)
    cuda = args.device == "cuda"
    activities = [ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * cuda
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    name = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    report = [f"# prof_train.py, {name}, {datetime.date.today()}, torch {torch.__version__}, "
              f"precision {args.precision}, backend {args.backend}, {args.steps} profiled steps", ""]
    for config in args.config:
        step, batch = training_step(config, args.precision, False, args.device, args.backend)
        for _ in range(args.warmup):
            step()
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with profile(activities=activities) as prof:
            for _ in range(args.steps):
                step()
            if cuda:
                torch.cuda.synchronize()
        wall_ms = 1e3 * (time.perf_counter() - t0) / args.steps  # profiled: the host side is slowed a little
        events = prof.key_averages()
        # the kernels' own rows only: an operator's row also carries the time of the kernels it launched, so
        # summing every row would count each kernel twice (CuPy's kernels have no operator row, only their own)
        device_ms = (sum(e.self_device_time_total for e in events if e.device_type != DeviceType.CPU) / 1e3
                     / args.steps if cuda else float("nan"))
        host_ms = sum(e.self_cpu_time_total for e in events) / 1e3 / args.steps
        report += [f"## {config} (batch {batch})", "",
                   f"per step: wall {wall_ms:.2f} ms (under the profiler), kernels {device_ms:.2f} ms, "
                   f"host operators {host_ms:.2f} ms", "",
                   events.table(sort_by=sort, row_limit=args.rows, max_name_column_width=60), ""]
        print("\n".join(report[-5:]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / (f"prof_train_{args.device}_{datetime.date.today()}" + (f"_{args.tag}" if args.tag else "") + ".txt")
    path.write_text("\n".join(report) + "\n")
    return str(path)


if __name__ == "__main__":
    main()
