"""Host (Python/dispatch) time per call of the LIF scan, side by side in one process.

Each case is timed on a problem so small that the device finishes its kernels long before the host has issued the
next call (T = 16 steps, 256 neurons): the loop's wall time per call is then the host's cost, the number that
decides whether short sequences keep the GPU busy. The same cases are also timed at the issue's shape
(T = 1,024, B·H = 64·256) with CUDA events, where the device's work is the floor.

    cd benchmarks && python bench_host.py --device cuda
"""
from __future__ import annotations

import time

import torch
from _common import device_name, parser, timed, write

import snn_ssm
from snn_ssm.functional.lif import SomaOptions
from snn_ssm.ops.lif_scan import lif_scan, scan


def cases(device, T, B, H):
    y = (torch.rand(T, B, H, device=device) * 1.5).requires_grad_()
    beta, v_th = torch.full((H,), 0.5, device=device), torch.ones(H, device=device, requires_grad=True)
    opts = SomaOptions()
    neuron = snn_ssm.LIF(H).to(device)
    grad = torch.ones(T, B, H, device=device)

    def public_forward():
        with torch.no_grad():
            lif_scan(y, None, beta, v_th)

    def trusted_forward():
        with torch.no_grad():
            scan(y, None, beta, v_th, opts)

    def trusted_forward_backward():
        s, _ = scan(y, None, beta, v_th, opts)
        s.backward(grad)

    def neuron_forward_backward():
        neuron.reset()
        neuron(y).backward(grad)

    return {"lif_scan (public, checks values: 1 sync)": public_forward, "scan (trusted) forward": trusted_forward,
            "scan (trusted) forward+backward": trusted_forward_backward,
            "LIF neuron forward+backward": neuron_forward_backward}


def host_us(fn, device, calls):
    for _ in range(10):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return 1e6 * (time.perf_counter() - t0) / calls


def main(argv=None):
    p = parser(__doc__, calls=500, repeats=20)
    args = p.parse_args(argv)
    rows = []
    small = cases(args.device, 16, 1, 256)
    big = cases(args.device, 1024, 64, 256)
    for name, fn in small.items():
        us = host_us(fn, args.device, args.calls)
        ms, _ = timed(big[name], args.device, args.repeats)
        rows.append({"case": name, "host_us": us, "big_ms": ms})
        print(f"{name:45s} host {us:8.1f} us/call   T=1024 B=64 H=256: {ms:7.3f} ms", flush=True)
    columns = {"case": ("case", "{}"), "host µs/call (T=16, 256 neurons)": ("host_us", "{:.1f}"),
               "ms/call at T=1024, B=64, H=256": ("big_ms", "{:.3f}")}
    write(args, "host", "LIF scan host cost", "LIF scan: host time per call", columns, rows)
    print(f"device: {device_name(args.device)}")
    return rows


if __name__ == "__main__":
    main()
