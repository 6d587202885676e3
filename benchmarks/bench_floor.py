"""The fused SSM-LIF op beside its floor on this GPU, measured in the same process.

The floor of a pass is the larger of its arithmetic at the GPU's measured float32 rate and its memory traffic at
the measured copy bandwidth:

- float32 rate: a CuPy kernel of independent fused multiply-add chains (8 per thread, enough threads for every
  SM), counted as 2 FLOPs per FMA;
- copy bandwidth: ``dst.copy_(src)`` of 1 GiB, counting the bytes read and written.

The op's arithmetic per neuron-step, for K = N/2 complex modes (the minimum of the algorithm in ``ops/ssm_lif``'s
README, not of our kernel, which spends more):

- forward, per mode: h ← Āh + B̄x is a complex product and a real-by-complex product with their sums (10 FLOPs),
  its part of y = 2 Re(C h) 4 FLOPs: **14 K**, plus the soma (~8, ignored);
- backward, per mode: the states recomputed once from the checkpoints with their outputs (14), the adjoint
  λ ← conj(Ā)λ + conj(C) g_y (10), and the gradients dĀ += λ conj(h), dB̄ += λ x, dC += g_y h, g_x += 2 Re(B̄ λ)
  (8 + 4 + 4 + 4): **44 K** (one recomputation: keeping the states instead would cost 8 K bytes per neuron-step).

Bytes per neuron-step (input dtype size e): forward reads x and writes s (2e), backward reads x and g_s and writes
g_x (3e); the checkpoints (one state per 32 steps) are ignored.

The op is timed through the entry the layers call (``ops.ssm_lif.scan``: no value checks), ``--inner`` calls back to
back per timing, so its host work overlaps the previous call's kernels as it does in a model; the ratio to the
floor uses that time. The public ``ssm_lif``, one call per timing, is beside it: it checks its values (host
synchronisations), so the GPU also waits for the host there.

    cd benchmarks && python bench_floor.py --device cuda
"""
from __future__ import annotations

import torch
from _common import device_name, parser, timed, write
from bench_ssm_lif import SHAPES, cases, problem

FMA_SOURCE = r"""
extern "C" __global__ void fma_chains(float* out, float b, float c, int iters) {
    float a0 = threadIdx.x, a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3, a4 = a0 + 4, a5 = a0 + 5, a6 = a0 + 6, a7 = a0 + 7;
    for (int i = 0; i < iters; ++i) {
        a0 = fmaf(a0, b, c); a1 = fmaf(a1, b, c); a2 = fmaf(a2, b, c); a3 = fmaf(a3, b, c);
        a4 = fmaf(a4, b, c); a5 = fmaf(a5, b, c); a6 = fmaf(a6, b, c); a7 = fmaf(a7, b, c);
    }
    out[blockIdx.x * blockDim.x + threadIdx.x] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}
"""

FLOPS_FWD, FLOPS_BWD = 14, 44  # per complex mode and neuron-step (see the module docstring)


def fp32_rate(repeats: int) -> float:
    """Measured float32 FLOP/s of independent FMA chains."""
    import cupy
    import numpy
    kernel = cupy.RawKernel(FMA_SOURCE, "fma_chains")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    blocks, threads, iters = sms * 8, 256, 1 << 14
    out = torch.empty(blocks * threads, device="cuda")
    stream = cupy.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream)

    def run():
        kernel((blocks,), (threads,), (numpy.uint64(out.data_ptr()), numpy.float32(0.999), numpy.float32(1e-3),
                                       numpy.int32(iters)), stream=stream)
    ms, _ = timed(run, "cuda", repeats)
    return 2 * 8 * iters * blocks * threads / (ms * 1e-3)


def copy_bandwidth(repeats: int) -> float:
    """Measured bytes/s of a device-to-device copy of 1 GiB (read + write)."""
    src = torch.empty(1 << 28, device="cuda")
    dst = torch.empty_like(src)
    ms, _ = timed(lambda: dst.copy_(src), "cuda", repeats)
    return 2 * src.numel() * 4 / (ms * 1e-3)


def main(argv=None) -> list[dict]:
    p = parser(__doc__, repeats=10)
    p.add_argument("--N", type=int, default=64)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--inner", type=int, default=10, help="calls back to back per timing of the layers' entry")
    args = p.parse_args(argv)
    if args.device != "cuda":
        raise SystemExit("bench_floor.py measures a GPU: run it with --device cuda")
    rate, bandwidth = fp32_rate(args.repeats), copy_bandwidth(args.repeats)
    print(f"float32 FMA rate {rate / 1e12:.1f} TFLOP/s, copy bandwidth {bandwidth / 1e12:.2f} TB/s", flush=True)
    dtype = getattr(torch, args.dtype)
    e = torch.finfo(dtype).bits // 8
    K = args.N // 2
    rows = []
    for name, (T, B, H) in SHAPES.items():
        steps = T * B * H
        x, params = problem(T, B, H, args.N, "cuda")
        x = x.detach().to(dtype).requires_grad_()
        forward, both = cases(x, params, "cupy")
        public_fwd, public_both = timed(forward, "cuda", args.repeats)[0], timed(both, "cuda", args.repeats)[0]
        forward, both = cases(x, params, "cupy", trusted=True)
        fwd_ms = timed(forward, "cuda", args.repeats, inner=args.inner)[0]
        both_ms = timed(both, "cuda", args.repeats, inner=args.inner)[0]
        floors = {}
        for part, flops, nbytes in (("fwd", FLOPS_FWD * K, 2 * e), ("bwd", FLOPS_BWD * K, 3 * e)):
            floors[part] = max(1e3 * steps * flops / rate, 1e3 * steps * nbytes / bandwidth)
        floor_both = floors["fwd"] + floors["bwd"]
        r = {"shape": f"{name} (T={T}, B={B}, H={H})", "public_fwd_ms": public_fwd,
             "public_fwd_bwd_ms": public_both, "fwd_ms": fwd_ms, "fwd_floor_ms": floors["fwd"],
             "fwd_bwd_ms": both_ms, "fwd_bwd_floor_ms": floor_both, "x_floor": both_ms / floor_both,
             "bound": "FLOPs" if FLOPS_BWD * K / rate > 3 * e / bandwidth else "bytes"}
        rows.append(r)
        print(f"{r['shape']:36s} fwd {fwd_ms:7.3f} ms (floor {floors['fwd']:6.3f}, public {public_fwd:6.3f})   "
              f"fwd+bwd {both_ms:7.3f} ms (floor {floor_both:6.3f}, x{r['x_floor']:.1f}, {r['bound']}; public "
              f"{public_both:6.3f})", flush=True)
    write(args, "floor", f"the fused SSM-LIF op (cupy), N={args.N}, {args.dtype}; float32 rate "
          f"{rate / 1e12:.1f} TFLOP/s, copy {bandwidth / 1e12:.2f} TB/s (measured)", "Fused SSM-LIF op vs its floor",
          {"shape": ("shape", "{}"), "public op fwd ms": ("public_fwd_ms", "{:.3f}"),
           "public op fwd+bwd ms": ("public_fwd_bwd_ms", "{:.3f}"), "fwd ms": ("fwd_ms", "{:.3f}"),
           "fwd floor ms": ("fwd_floor_ms", "{:.3f}"),
           "fwd+bwd ms": ("fwd_bwd_ms", "{:.3f}"), "fwd+bwd floor ms": ("fwd_bwd_floor_ms", "{:.3f}"),
           "x floor": ("x_floor", "{:.1f}"), "bound by": ("bound", "{}")}, rows)
    print(f"device: {device_name('cuda')}")
    return rows


if __name__ == "__main__":
    main()
