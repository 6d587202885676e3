"""Neuron fwd+bwd time and peak memory, side by side in one process.

GPU: our CuPy and Triton kernels, the torch reference loop (T <= 1024), SpikingJelly 2.0 ``LIFNode`` (auto: its Triton path),
snnTorch ``Leaky`` stepped in a Python loop (T <= 4096), and a device copy of the same bytes (bandwidth floor).
CPU: our numba kernel vs the torch reference loop (and snnTorch ``Leaky``).
All neurons: hard reset, beta = 0.5 (tau = 2), threshold 1, fp32, loss = sum of spikes. Writes JSON and markdown
to ``benchmarks/results/``.

    python benchmarks/bench_neuron.py --device cuda          # B=64, H=256, T in 1024 4096 16384
    python benchmarks/bench_neuron.py --device cpu --T 1024
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from snn_ssm.ops import lif_scan


def timed(fn, device, repeats):
    fn()  # warm-up (compilation, allocator)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append(1e3 * (time.perf_counter() - t0))
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if device == "cuda" else float("nan")
    return statistics.median(times), peak


def candidates(T, B, H, device):
    x = torch.randn(T, B, H, device=device, requires_grad=True)

    def ours(backend):
        def run():
            s, _ = lif_scan(x, None, 0.5, backend=backend)
            s.sum().backward()
        return run

    out = {}
    if device == "cuda":
        out["snn_ssm cupy"] = (ours("cupy"), 20)
        from snn_ssm.ops.lif_scan import cupy as kernels

        flat = x.detach().reshape(T, -1)
        ones_n = torch.full((flat.shape[1],), 0.5, device=device)
        opts = (0.0, 0, False, False, 0, 1.0)

        def kernels_only():
            s, ckpt = kernels.launch_forward(flat, torch.zeros_like(ones_n), ones_n, ones_n * 2, opts)
            kernels.launch_backward(flat, ones_n, ones_n * 2, ckpt, s, torch.zeros_like(ones_n), opts)
        out["snn_ssm cupy (kernels only, no autograd)"] = (kernels_only, 20)
        out["snn_ssm triton"] = (ours("triton"), 20)
        x16 = x.detach().bfloat16().requires_grad_()

        def ours_bf16():
            s, _ = lif_scan(x16, None, 0.5, backend="cupy")
            s.sum().backward()
        out["snn_ssm cupy, bf16 input"] = (ours_bf16, 20)
        buf = torch.empty_like(x)
        # Minimal traffic of an exact fwd+bwd: read x, write spikes (1 bit), then read x and dL/ds, write dL/dx:
        # about 16 bytes per neuron-step = 2 copies of the fp32 input.
        out["device copy x2 (floor)"] = (lambda: (buf.copy_(x.detach()), buf.copy_(x.detach())), 20)
    else:
        out["snn_ssm numba"] = (ours("numba"), 5)
    if T <= 1024 or device == "cpu":
        out["snn_ssm torch reference"] = (ours("torch"), 3 if device == "cuda" else 1)
    try:
        from spikingjelly.activation_based import functional, neuron

        lif = neuron.LIFNode(tau=2.0, decay_input=False, step_mode="m").to(device)

        def sj():
            functional.reset_net(lif)
            lif(x).sum().backward()
        impl = functional.neuron_implementation("lif", torch.device(device))
        impl = impl.get("implementation", impl) if isinstance(impl, dict) else impl
        out[f"SpikingJelly 2.0 LIFNode ({impl})"] = (sj, 20 if device == "cuda" else 1)
    except ImportError:
        pass
    if T <= 4096:
        try:
            import snntorch as snn

            leaky = snn.Leaky(beta=0.5, reset_mechanism="zero").to(device)

            def st():
                mem = leaky.init_leaky()
                spikes = []
                for x_t in x:
                    spk, mem = leaky(x_t, mem)
                    spikes.append(spk)
                torch.stack(spikes).sum().backward()
            out["snnTorch 1.0 Leaky (loop)"] = (st, 3 if device == "cuda" else 1)
        except ImportError:
            pass
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--T", type=int, nargs="+", default=None)
    p.add_argument("--B", type=int, default=64)
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = p.parse_args()
    Ts = args.T or ([1024, 4096, 16384] if args.device == "cuda" else [1024])
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    rows = []
    for T in Ts:
        for label, (fn, reps) in candidates(T, args.B, args.H, args.device).items():
            ms, peak = timed(fn, args.device, reps)
            rows.append({"T": T, "B": args.B, "H": args.H, "what": label, "ms": ms, "peak_MiB": peak})
            print(f"T={T:6d} {label:45s} {ms:10.3f} ms  peak {peak:8.1f} MiB", flush=True)
    meta = {"device": name, "date": datetime.date.today().isoformat(), "torch": torch.__version__,
            "python": platform.python_version(), "shape": f"T x B={args.B} x H={args.H}, fp32, fwd+bwd"}
    try:
        import triton
        meta["triton"] = triton.__version__
    except ImportError:
        pass
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"neuron_{args.device}_{meta['date']}"
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"# Neuron fwd+bwd, {name}, {meta['date']}", "", f"{meta}", "", "| T | what | ms | peak MiB |",
             "|---|---|---|---|"]
    lines += [f"| {r['T']} | {r['what']} | {r['ms']:.3f} | {r['peak_MiB']:.1f} |" for r in rows]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
