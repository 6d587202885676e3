"""SpikingSSM layer vs the non-spiking S4D layer (GELU) at the same shape, fwd+bwd, in one process.

The two layers share the S4D convolution, D skip and GLU projection; the difference is the neuron (threshold
scaling + exact LIF through the dispatched kernel) against a GELU. A third row runs the SpikingSSM layer without
the fused epilogue (D·x added by torch, then the soma), to measure what the fusion saves. Writes JSON + markdown to
benchmarks/results/.

    cd benchmarks && python bench_block.py --device cuda      # B=64, H=256, N=64, T in 1024 4096 16384
    cd benchmarks && python bench_block.py --device cpu --T 1024
"""
from __future__ import annotations

import torch
from _common import lengths, parser, timed, write

from snn_ssm import S4DLayer, SpikingS4D
from snn_ssm.ops.dispatch import choose


class UnfusedSpikingS4D(SpikingS4D):
    """The SpikingSSM layer with the D-skip added by torch before the soma (two passes instead of one)."""

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return self.soma(self.dendrite(x.unsqueeze(-1)).squeeze(-1))


def main():
    args = parser(__doc__, N=64).parse_args()
    backend = choose("lif_scan", args.device, {"numba": None, "cupy": None, "triton": None})
    rows = []
    for T in lengths(args):
        x = torch.randn(T, args.B, args.H, device=args.device, requires_grad=True)
        for label, layer in (("S4D + GELU", S4DLayer(args.H, d_state=args.N)),
                             (f"SpikingS4D, D-skip unfused (LIF via {backend})",
                              UnfusedSpikingS4D(args.H, d_state=args.N)),
                             (f"SpikingS4D (fused D-skip + LIF via {backend})", SpikingS4D(args.H, d_state=args.N))):
            layer = layer.to(args.device)

            def run(layer=layer, x=x):
                layer(x).sum().backward()
            ms, peak = timed(run, args.device, 10 if args.device == "cuda" else 2)
            rows.append({"T": T, "what": label, "ms": ms, "peak_MiB": peak, "ratio_vs_s4d": 1.0})
            print(f"T={T:6d} {label:50s} {ms:9.3f} ms  peak {peak:8.1f} MiB", flush=True)
        for r in rows[-2:]:
            r["ratio_vs_s4d"] = r["ms"] / rows[-3]["ms"]
        print(f"         ratio to S4D: unfused {rows[-2]['ratio_vs_s4d']:.3f}, fused {rows[-1]['ratio_vs_s4d']:.3f}")
    write(args, "block", f"T x B={args.B} x H={args.H}, N={args.N}, fp32, fwd+bwd", "SpikingSSM layer vs S4D layer",
          {"T": ("T", "{}"), "layer": ("what", "{}"), "ms": ("ms", "{:.3f}"), "peak MiB": ("peak_MiB", "{:.1f}"),
           "ratio to S4D": ("ratio_vs_s4d", "{:.3f}")}, rows)


if __name__ == "__main__":
    main()
