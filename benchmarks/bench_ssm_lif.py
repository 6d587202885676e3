"""The fused SSM-LIF op (ops/ssm_lif) against the layers' other path (FFT convolution + LIF scan), forward and
forward+backward, in one process, and a sweep of the CUDA kernel's lane split (lanes per neuron, forward and
backward) and backward sub-chunk. Shapes: the bench_block example, the sMNIST and kjv language-model layers and a
large batch; N = 64 (32 complex modes per neuron) unless ``--N``; float32.

    cd benchmarks && python bench_ssm_lif.py --device cuda             # the sweep and the comparison
    cd benchmarks && python bench_ssm_lif.py --device cpu --repeats 2  # numba vs the FFT path
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from _common import timed, write

import snn_ssm
from snn_ssm.functional import s4d
from snn_ssm.ops.lif_scan import lif_scan
from snn_ssm.functional.lif import SomaOptions
from snn_ssm.ops.ssm_lif import scan as fused_scan
from snn_ssm.ops.ssm_lif import ssm_lif, ssm_lif_ref

# "large batch": many neurons per channel, where the CPU cost model's terms per neuron dominate
SHAPES = {"bench_block": (1024, 64, 256), "smnist layer": (784, 50, 400), "kjv LM layer": (512, 16, 512),
          "large batch": (1024, 512, 32)}


def problem(T, B, H, N, device):
    torch.manual_seed(0)
    p = snn_ssm.S4DDendrite(H, d_state=N).to(device).discrete(H)
    leaves = [t.detach().clone().requires_grad_() for t in (p.dA, p.dB, p.C[0], p.D)]
    beta = torch.full((H,), 0.5, device=device, requires_grad=True)
    v_th = torch.ones(H, device=device, requires_grad=True)
    x = (torch.randn(T, B, H, device=device) * 2).requires_grad_()
    return x, leaves + [beta, v_th]


def layer_path(x, dA, dB, C, D, beta, v_th):
    """What the layers run without the fused kernel: the S4D kernel, the FFT convolution, then the LIF scan with
    the D-skip fused (no final dendrite state: a layer does not ask for it)."""
    y = s4d.fft_conv(x.unsqueeze(-1), s4d.vandermonde_kernel(torch.log(dA), dB, C, x.shape[0])).squeeze(-1)
    s, v = lif_scan(y, None, beta, v_th, skip_input=x, skip_weight=D)
    return s, None, v


def cases(x, params, backend, trusted: bool = False):
    """Forward and forward+backward closures of the layers' path (``backend=None``), the reference (``"ref"``) or
    the fused op with ``backend``: its public entry (which checks its values: host synchronisations) or, with
    ``trusted``, the entry the layers call (``ops.ssm_lif.scan``, no checks)."""
    if trusted:
        opts = SomaOptions()
        op = (lambda x, dA, dB, C, D, beta, v_th: fused_scan(x, dA, dB, C, D, beta, v_th, None, None, opts, backend))
    else:
        op = {None: layer_path, "ref": ssm_lif_ref}.get(backend, lambda *a: ssm_lif(*a, backend=backend))
    w = torch.randn_like(x)

    def forward():
        with torch.no_grad():
            op(x, *params)

    def both():
        s, h, v = op(x, *params)
        (s * w).sum().backward()
    return forward, both


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--N", type=int, default=64)
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--no-sweep", action="store_true", help="only the default kernel settings")
    p.add_argument("--split", type=int, nargs="*", default=None,
                   help="time these SPLIT_NEURONS settings of the CUDA backward (0: the kernel without the split)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--tag", default="")
    args = p.parse_args()
    fused = "cupy" if args.device == "cuda" else "numba"
    rows = []

    def row(shape, what, fwd, both):
        r = {"shape": shape, "what": what, "fwd_ms": fwd, "fwd_bwd_ms": both, "x_vs_fft": 1.0}
        rows.append(r)
        print(f"{shape:14s} {what:52s} fwd {fwd:8.3f} ms   fwd+bwd {both:8.3f} ms", flush=True)
        return r

    for name in args.shapes:
        T, B, H = SHAPES[name]
        x, params = problem(T, B, H, args.N, args.device)
        f, b = cases(x, params, None)
        ref = row(name, "FFT + lif_scan (the layers' path)", timed(f, args.device, args.repeats)[0],
                  timed(b, args.device, args.repeats)[0])
        f, b = cases(x, params, "ref")
        row(name, "ssm_lif_ref (FFT path + closed-form h_T)", timed(f, args.device, args.repeats)[0],
            timed(b, args.device, args.repeats)[0])["x_vs_fft"] = float("nan")
        settings = [(None, None, None)]
        if fused == "cupy" and args.split:
            from snn_ssm.ops.ssm_lif import cupy as impl
            for nbs in args.split:
                impl.SPLIT_NEURONS = nbs
                f, b = cases(x, params, fused)
                r = row(name, f"fused ({fused}) backward " + (f"somas split off, {nbs} neurons per block" if nbs
                                                             else "with every lane repeating the soma"),
                        timed(f, args.device, args.repeats)[0], timed(b, args.device, args.repeats)[0])
                r["x_vs_fft"] = ref["fwd_bwd_ms"] / r["fwd_bwd_ms"]
            continue
        if fused == "cupy" and not args.no_sweep:
            settings = [(fg, bg, sub) for fg in (4, 8, 16) for bg in (4, 8, 16) for sub in (4, 8)
                        if (fg == 8 or (bg == 8 and sub == 8))]
        best = None
        for fg, bg, sub in settings:
            label = f"fused ({fused})"
            if fg is not None:
                from snn_ssm.ops.ssm_lif import cupy as impl
                impl.FWD_GROUP, impl.BWD_GROUP, impl.SUB = fg, bg, sub
                label += f" fwd lanes<={fg} bwd lanes<={bg} sub={sub}"
            f, b = cases(x, params, fused)
            r = row(name, label, timed(f, args.device, args.repeats)[0], timed(b, args.device, args.repeats)[0])
            r["x_vs_fft"] = ref["fwd_bwd_ms"] / r["fwd_bwd_ms"]
            if best is None or r["fwd_bwd_ms"] < best["fwd_bwd_ms"]:
                best = r
        print(f"{name}: best {best['what']}: {best['x_vs_fft']:.2f}x the FFT path (fwd+bwd)", flush=True)
    write(args, "ssm_lif", f"T x B x H per shape ({', '.join(f'{k}: {v}' for k, v in SHAPES.items())}), "
          f"N={args.N}, float32", "Fused SSM-LIF op vs FFT + LIF scan",
          {"shape": ("shape", "{}"), "what": ("what", "{}"), "fwd ms": ("fwd_ms", "{:.3f}"),
           "fwd+bwd ms": ("fwd_bwd_ms", "{:.3f}"), "x vs FFT (fwd+bwd)": ("x_vs_fft", "{:.2f}")}, rows)


if __name__ == "__main__":
    main()
