"""SpikingSSM layer vs the non-spiking S4D layer (GELU) at the same shape, fwd+bwd, in one process.

The two layers share the S4D convolution, D skip and GLU projection; the difference is the neuron (threshold
scaling + exact LIF through the dispatched kernel) against a GELU. Writes JSON + markdown to benchmarks/results/.

    python benchmarks/bench_block.py --device cuda            # B=64, H=256, N=64, T in 1024 4096 16384
    python benchmarks/bench_block.py --device cpu --T 1024
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
from pathlib import Path

import torch

from snn_ssm import S4DLayer, SpikingS4D
from snn_ssm.ops.dispatch import choose

from bench_neuron import timed  # noqa: E402  (same folder)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--T", type=int, nargs="+", default=None)
    p.add_argument("--B", type=int, default=64)
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--N", type=int, default=64)
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = p.parse_args()
    Ts = args.T or ([1024, 4096, 16384] if args.device == "cuda" else [1024])
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    backend = choose("lif_scan", args.device, {"numba": None, "cupy": None, "triton": None})
    rows = []
    for T in Ts:
        x = torch.randn(T, args.B, args.H, device=args.device, requires_grad=True)
        for label, layer in (("S4D + GELU", S4DLayer(args.H, d_state=args.N)),
                             (f"SpikingS4D (LIF via {backend})", SpikingS4D(args.H, d_state=args.N))):
            layer = layer.to(args.device)

            def run():
                layer(x).sum().backward()
            ms, peak = timed(run, args.device, 10 if args.device == "cuda" else 2)
            rows.append({"T": T, "what": label, "ms": ms, "peak_MiB": peak})
            print(f"T={T:6d} {label:40s} {ms:9.3f} ms  peak {peak:8.1f} MiB", flush=True)
        ratio = rows[-1]["ms"] / rows[-2]["ms"]
        rows[-1]["ratio_vs_s4d"] = ratio
        print(f"         ratio SpikingS4D / S4D = {ratio:.3f}")
    meta = {"device": name, "date": datetime.date.today().isoformat(), "torch": torch.__version__,
            "python": platform.python_version(), "shape": f"T x B={args.B} x H={args.H}, N={args.N}, fp32, fwd+bwd"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"block_{args.device}_{meta['date']}"
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"# SpikingSSM layer vs S4D layer, fwd+bwd, {name}, {meta['date']}", "", f"{meta}", "",
             "| T | layer | ms | peak MiB | ratio to S4D |", "|---|---|---|---|---|"]
    lines += [f"| {r['T']} | {r['what']} | {r['ms']:.3f} | {r['peak_MiB']:.1f} | {r.get('ratio_vs_s4d', 1.0):.3f} |"
              for r in rows]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
