"""SpikingSSM layer vs the non-spiking S4D layer (GELU) at the same shape, fwd+bwd, in one process.

The two layers share the S4D convolution, D skip and GLU projection; the difference is the neuron (threshold
scaling + exact LIF through the dispatched kernel) against a GELU. Further rows run the SpikingSSM layer without
the fused epilogue (D·x added by torch, then the soma), to measure what the fusion saves, and, where a kernel
exists (numba on the CPU, CuPy on CUDA), with the dendrite and the soma as one fused recurrence (ops/ssm_lif).
Writes JSON + markdown to benchmarks/results/.

    cd benchmarks && python bench_block.py --device cuda      # B=64, H=256, N=64, T in 1024 4096 16384
    cd benchmarks && python bench_block.py --device cpu --T 1024
    cd benchmarks && python bench_block.py --device cpu --T 1024 --B 16 --H 128 --bidirectional   # ListOps' layers
"""
from __future__ import annotations

import torch
from _common import lengths, parser, timed, write

from snn_ssm import S4DLayer, SpikingS4D
from snn_ssm.ops.dispatch import available, choose


class UnfusedSpikingS4D(SpikingS4D):
    """The SpikingSSM layer with the D-skip added by torch before the soma (two passes instead of one)."""

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return self.soma(self.dendrite(x.unsqueeze(-1)).squeeze(-1))


class FFTSpikingS4D(SpikingS4D):
    """The SpikingSSM layer on the FFT path: the convolution, then D·x + LIF fused in the soma's kernel."""

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dendrite(x.unsqueeze(-1), skip=False).squeeze(-1)
        return self.soma(y, x, self.dendrite.D)


def main():
    p = parser(__doc__, N=64)
    p.add_argument("--bidirectional", action="store_true", help="two-sided layers (each fused row: two passes)")
    args = p.parse_args()
    kw = dict(d_state=args.N, bidirectional=args.bidirectional)
    backend = choose("lif_scan", args.device, {"numba": None, "cupy": None, "triton": None})
    rows = []
    for T in lengths(args):
        x = torch.randn(T, args.B, args.H, device=args.device, requires_grad=True)
        layers = [("S4D + GELU", S4DLayer(args.H, **kw)),
                  (f"SpikingS4D, D-skip unfused (LIF via {backend})", UnfusedSpikingS4D(args.H, **kw)),
                  (f"SpikingS4D (FFT, fused D-skip + LIF via {backend})", FFTSpikingS4D(args.H, **kw))]
        fused = {"cpu": "numba", "cuda": "cupy"}.get(args.device)
        if fused is not None and available(fused):
            layers.append((f"SpikingS4D, fused SSM-LIF recurrence ({fused})",
                           SpikingS4D(args.H, backend=fused, **kw)))
        for label, layer in layers:
            layer = layer.to(args.device)

            def run(layer=layer, x=x):
                layer(x).sum().backward()
            ms, peak = timed(run, args.device, 10 if args.device == "cuda" else 2)
            rows.append({"T": T, "what": label, "ms": ms, "peak_MiB": peak, "ratio_vs_s4d": 1.0})
            print(f"T={T:6d} {label:50s} {ms:9.3f} ms  peak {peak:8.1f} MiB", flush=True)
        base = rows[-len(layers)]["ms"]
        for r in rows[-len(layers) + 1:]:
            r["ratio_vs_s4d"] = r["ms"] / base
        print("         ratio to S4D: " + ", ".join(f"{r['ratio_vs_s4d']:.3f}" for r in rows[-len(layers) + 1:]))
    sides = ", bidirectional" if args.bidirectional else ""
    write(args, "block", f"T x B={args.B} x H={args.H}, N={args.N}{sides}, fp32, fwd+bwd",
          "SpikingSSM layer vs S4D layer",
          {"T": ("T", "{}"), "layer": ("what", "{}"), "ms": ("ms", "{:.3f}"), "peak MiB": ("peak_MiB", "{:.1f}"),
           "ratio to S4D": ("ratio_vs_s4d", "{:.3f}")}, rows)


if __name__ == "__main__":
    main()
