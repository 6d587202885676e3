"""Time per training step and peak memory of the named configs, per precision (and with ``torch.compile``), side by
side in one process.

One step is what ``python -m snn_ssm train`` runs: forward under the precision's autocast, cross-entropy, backward
(through a GradScaler for ``16-mixed``), AdamW step, on a random batch of the config's shape (sMNIST/psMNIST: T = 784
pixels, ListOps: T = 2,000 tokens). The model, batch size and optimizer groups are the config's; the data do not
change the time. Medians over ``--steps`` steps after ``--warmup`` steps (CUDA events on a GPU); peak memory
is the step's, above what the model and optimizer state already hold.

    cd benchmarks && python bench_train.py --device cuda                       # every config x precision
    cd benchmarks && python bench_train.py --device cuda --configs spikingssm/smnist --compile --cuda-graph
    cd benchmarks && python bench_train.py --device cpu --configs spikingssm/smnist --precisions 32 bf16-mixed
    cd benchmarks && python bench_train.py --device cuda --backends cupy triton   # fused kernel vs FFT + LIF scan

"x fp32" is against the first backend's fp32 row of the same config without compile or graph.
"""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import device_name, timed, write

import snn_ssm
from snn_ssm.registry import create
from snn_ssm.training import get_config
from snn_ssm.training.configs import PRECISIONS
from snn_ssm.training.loop import precision_scope

DEFAULT_CONFIGS = ["spikingssm/smnist", "spikingssm/psmnist", "s4d/smnist", "pssm/psmnist", "binary_s4d_gsu/smnist",
                   "spikingssm/listops"]
SHAPES = {"smnist": (784, 1, 10), "psmnist": (784, 1, 10), "listops": (2000, 18, 10)}  # T, d_input (vocab), classes


def batch_for(task: str, batch: int, device):
    T, d_input, classes = SHAPES[task]
    y = torch.randint(0, classes, (batch,), device=device)
    if task == "listops":
        return torch.randint(0, d_input, (T, batch), device=device), y
    return torch.rand(T, batch, d_input, device=device), y


def training_step(config: str, precision: str, compiled: bool, device: str, backend: str = "auto",
                  graphed: bool = False):
    """``(step, batch)``: one training step of ``config`` as a closure (also what ``prof_train.py`` profiles)."""
    model_name, task = config.split("/")
    cfg = get_config(model_name, task)
    T, d_input, classes = SHAPES[task]
    torch.manual_seed(0)
    model = create(model_name, d_input=d_input, d_output=classes, **cfg["model"]).to(device)
    snn_ssm.set_backend(model, backend)
    x, y = batch_for(task, cfg["train"]["batch"], device)
    with torch.no_grad():
        model.eval()(x[:, :1])  # builds lazily created parameters, as the CLI does
    model.train()
    opt = torch.optim.AdamW(snn_ssm.param_groups(model, cfg["train"]["lr"], cfg["train"]["weight_decay"]),
                            capturable=graphed)
    scaler = torch.amp.GradScaler(torch.device(device).type, enabled=precision == "16-mixed")
    forward = torch.compile(model) if compiled else model

    def step():
        with precision_scope(precision, device):
            out = forward(x)
        loss = F.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=not graphed)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step, cfg["train"]["batch"]


def measure(config: str, precision: str, compiled: bool, device: str, warmup: int, steps: int,
            graphed: bool = False, backend: str = "auto") -> dict:
    step, batch = training_step(config, precision, compiled, device, backend, graphed)
    T = SHAPES[config.split("/")[1]][0]
    if graphed:  # the whole step recorded once as a CUDA graph, then replayed (no host work per step)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        run = graph.replay
    else:
        for _ in range(warmup):  # FFT plans, allocator, autotuning
            step()
        run = step
    ms, peak = timed(run, device, steps)
    return {"config": config, "precision": precision, "compile": compiled, "cuda_graph": graphed,
            "batch": batch, "T": T, "ms_per_step": ms, "peak_MiB": peak}


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, help="model/task names")
    p.add_argument("--precisions", nargs="+", default=None, choices=PRECISIONS,
                   help="default: all on CUDA, 32 and bf16-mixed on CPU")
    p.add_argument("--compile", action="store_true", help="also time torch.compile(model)")
    p.add_argument("--cuda-graph", action="store_true",
                   help="also time the whole step captured as one CUDA graph (not for 16-mixed: GradScaler syncs)")
    p.add_argument("--backends", nargs="+", default=["auto"],
                   help="soma backends to compare, e.g. cupy (the fused SSM-LIF kernel where it applies) triton "
                        "(the FFT dendrite + the Triton LIF scan)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)
    precisions = args.precisions or (list(PRECISIONS) if args.device == "cuda" else ["32", "bf16-mixed"])
    rows = []
    modes = [(False, False)] + [(True, False)] * args.compile + [(False, True)] * args.cuda_graph
    for config in args.configs:
        for backend in args.backends:
            for compiled, graphed in modes:
                for precision in precisions:
                    if (precision in ("16-mixed", "tf32") and args.device != "cuda"
                            or graphed and precision == "16-mixed"):
                        continue
                    with contextlib.suppress(torch.cuda.OutOfMemoryError):
                        r = measure(config, precision, compiled, args.device, args.warmup, args.steps, graphed,
                                    backend)
                        r["backend"] = backend
                        fp32 = next((q for q in rows if q["config"] == config and q["precision"] == "32"
                                     and not q["compile"] and not q["cuda_graph"]), None)
                        r["speedup_vs_fp32"] = fp32["ms_per_step"] / r["ms_per_step"] if fp32 else 1.0
                        rows.append(r)
                        print(f"{config:24s} {backend:6s} {precision:10s} compile={compiled!s:5s} "
                              f"graph={graphed!s:5s} {r['ms_per_step']:9.2f} ms/step x{r['speedup_vs_fp32']:.2f}  "
                              f"peak {r['peak_MiB']:8.0f} MiB", flush=True)
    columns = {"config": ("config", "{}"), "backend": ("backend", "{}"), "precision": ("precision", "{}"),
               "compile": ("compile", "{}"),
               "CUDA graph": ("cuda_graph", "{}"),
               "batch": ("batch", "{}"), "T": ("T", "{}"), "ms/step": ("ms_per_step", "{:.2f}"),
               "x fp32": ("speedup_vs_fp32", "{:.2f}"), "peak MiB": ("peak_MiB", "{:.0f}")}
    write(args, "train", "named configs, one training step", "Training step time", columns, rows)
    print(f"device: {device_name(args.device)}")
    return rows


if __name__ == "__main__":
    main()
