"""SDN mode vs every exact path of the SpikingSSM soma, fwd+bwd, across B·H and T, in one process.

Rows per shape: the exact neuron through the torch reference loop and through each fused kernel available on the
device (numba on CPU; CuPy and Triton on CUDA), and the SDN mode in both shipped variants (``paper``: the published
network; ``scan``: ours, with the parallel reset scan). Each runs ``LIFSoma(H)`` (learnable per-channel threshold,
β = 0.125, hard reset) on ``x`` ``[T, B, H]``; the timing covers forward and backward of ``s.sum()``. Writes JSON +
markdown to benchmarks/results/.

    cd benchmarks && python bench_sdn.py --device cuda                  # B in 1 64, H=256, T in 1024 4096 16384
    cd benchmarks && python bench_sdn.py --device cpu --T 256 1024
"""
from __future__ import annotations

import torch
from _common import parser, timed, write

from snn_ssm.layers import LIFSoma
from snn_ssm.ops import available


def paths(device: str) -> list[tuple[str, dict]]:
    kernels = ["numba"] if device == "cpu" else ["cupy", "triton"]
    out = [("exact, torch loop", dict(backend="torch"))]
    out += [(f"exact, {k} kernel", dict(backend=k)) for k in kernels if available(k)]
    out += [("SDN (paper)", dict(reset_mode="sdn")), ("SDN (scan, ours)", dict(reset_mode="sdn", sdn_variant="scan"))]
    return out


def main():
    p = parser(__doc__)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64], help="batch sizes B (default: 1 64)")
    p.add_argument("--loop-max-T", type=int, default=4096, help="skip the torch loop above this T (default 4096)")
    args = p.parse_args()
    Ts = args.T or ([1024, 4096, 16384] if args.device == "cuda" else [256, 1024])
    repeats = 10 if args.device == "cuda" else 3
    rows = []
    for B in args.batches:
        for T in Ts:
            x = torch.randn(T, B, args.H, device=args.device, requires_grad=True)
            for label, kw in paths(args.device):
                if label.endswith("torch loop") and T > args.loop_max_T:
                    continue
                soma = LIFSoma(args.H, **kw).to(args.device)

                def run(soma=soma, x=x):
                    soma(x).sum().backward()
                ms, peak = timed(run, args.device, repeats)
                rows.append({"B": B, "H": args.H, "T": T, "what": label, "ms": ms, "peak_MiB": peak})
                print(f"B={B:3d} T={T:6d} {label:22s} {ms:10.3f} ms  peak {peak:9.1f} MiB", flush=True)
            best_exact = min(r["ms"] for r in rows if r["T"] == T and r["B"] == B and r["what"].startswith("exact"))
            for r in rows:
                if r["T"] == T and r["B"] == B:
                    r["vs_best_exact"] = r["ms"] / best_exact
    write(args, "sdn", f"T x B x H={args.H}, fp32, fwd+bwd of LIFSoma", "SDN mode vs exact paths",
          {"B·H": ("BH", "{}"), "T": ("T", "{}"), "path": ("what", "{}"), "ms": ("ms", "{:.3f}"),
           "peak MiB": ("peak_MiB", "{:.1f}"), "time / fastest exact": ("vs_best_exact", "{:.2f}")},
          [{**r, "BH": r["B"] * r["H"]} for r in rows])


if __name__ == "__main__":
    main()
