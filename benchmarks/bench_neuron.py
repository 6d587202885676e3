"""Neuron fwd+bwd time and peak memory, side by side in one process.

GPU: our CuPy and Triton kernels, the torch reference loop (T <= 1024), SpikingJelly 2.0 ``LIFNode`` (auto: its
Triton path), snnTorch ``Leaky`` stepped in a Python loop (T <= 4096), and a device copy of the same bytes
(bandwidth floor).
CPU: our numba kernel vs the torch reference loop (and snnTorch ``Leaky``).
All neurons: hard reset, beta = 0.5 (tau = 2), threshold 1, fp32, loss = sum of spikes. Writes JSON and markdown
to ``benchmarks/results/``.

    cd benchmarks && python bench_neuron.py --device cuda     # B=64, H=256, T in 1024 4096 16384
    cd benchmarks && python bench_neuron.py --device cpu --T 1024
"""
from __future__ import annotations

import contextlib

import torch
from _common import lengths, parser, timed, write

from snn_ssm.ops import lif_scan
from snn_ssm.functional.lif import SomaOptions
from snn_ssm.ops.lif_scan import KernelOptions, scan


def candidates(T, B, H, device):
    x = torch.randn(T, B, H, device=device, requires_grad=True)

    def ours(backend):
        def run():
            s, _ = lif_scan(x, None, 0.5, backend=backend)
            s.sum().backward()
        return run

    def trusted(backend):  # the entry the neurons call: options checked once at construction, no value checks
        opts = SomaOptions()

        def run():
            s, _ = scan(x, None, 0.5, 1.0, opts, backend=backend)
            s.sum().backward()
        return run

    out = {}
    if device == "cuda":
        out["snn_ssm cupy"] = (ours("cupy"), 20)
        out["snn_ssm cupy (ops.lif_scan.scan, the neurons' entry)"] = (trusted("cupy"), 20)
        from snn_ssm.ops.lif_scan import cupy as kernels

        flat = x.detach().reshape(T, -1)
        ones_n = torch.full((flat.shape[1],), 0.5, device=device)
        opts = KernelOptions(v_reset=0.0, reset=0, detach_reset=False, local=False, surrogate=0, alpha=1.0)

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
        out["snn_ssm numba (ops.lif_scan.scan, the neurons' entry)"] = (trusted("numba"), 5)
    if T <= 1024 or device == "cpu":
        out["snn_ssm torch reference"] = (ours("torch"), 3 if device == "cuda" else 1)
    with contextlib.suppress(ImportError):  # peers that are not installed get no row
        from spikingjelly.activation_based import functional, neuron

        lif = neuron.LIFNode(tau=2.0, decay_input=False, step_mode="m").to(device)

        def sj():
            functional.reset_net(lif)
            lif(x).sum().backward()
        impl = functional.neuron_implementation("lif", torch.device(device))
        impl = impl.get("implementation", impl) if isinstance(impl, dict) else impl
        out[f"SpikingJelly 2.0 LIFNode ({impl})"] = (sj, 20 if device == "cuda" else 1)
    if T <= 4096:
        with contextlib.suppress(ImportError):
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
    return out


def main():
    args = parser(__doc__).parse_args()
    rows = []
    for T in lengths(args):
        for label, (fn, reps) in candidates(T, args.B, args.H, args.device).items():
            ms, peak = timed(fn, args.device, reps)
            rows.append({"T": T, "B": args.B, "H": args.H, "what": label, "ms": ms, "peak_MiB": peak})
            print(f"T={T:6d} {label:45s} {ms:10.3f} ms  peak {peak:8.1f} MiB", flush=True)
    write(args, "neuron", f"T x B={args.B} x H={args.H}, fp32, fwd+bwd", "Neuron fwd+bwd",
          {"T": ("T", "{}"), "what": ("what", "{}"), "ms": ("ms", "{:.3f}"), "peak MiB": ("peak_MiB", "{:.1f}")},
          rows)


if __name__ == "__main__":
    main()
