"""Host (Python/dispatch) time per call of the LIF scan, side by side in one process.

Each case is timed on a problem so small that the device finishes its kernels long before the host has issued the
next call (T = 16 steps, 256 neurons): the loop's wall time per call is then the host's cost, the number that
decides whether short sequences keep the GPU busy. The same cases are also timed at the issue's shape
(T = 1,024, B·H = 64·256) with CUDA events, where the device's work is the floor.

    cd benchmarks && python bench_host.py --device cuda
    cd benchmarks && python bench_host.py --device cuda --profile 25   # also where each case's host time goes

``--profile N`` runs each small case once more under cProfile and writes its N costliest functions (by their own
time) to ``host_profile_{device}_{date}[_{tag}].txt``: the Python functions, torch's and CuPy's entry points (a
CuPy kernel launch shows as its ``__call__``) and the autograd engine's ``run_backward``. On CUDA the backward
runs on the engine's device thread, which cProfile does not follow: there ``run_backward`` is the whole
backward as the calling thread waits for it.
"""
from __future__ import annotations

import cProfile
import datetime
import io
import pstats
import time
from pathlib import Path

import torch
from _common import device_name, parser, timed, write

import snn_ssm
from snn_ssm.functional.lif import SomaOptions
from snn_ssm.ops.lif_scan import lif_scan, scan


#: calls per backward in the case that shares one ``backward()`` among several calls (the engine's fixed cost per
#: ``backward()`` (graph task, on CUDA the hand-off to its device thread) is then split among them, as in a model)
IN_ONE_BACKWARD = 8


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

    def trusted_in_one_backward():  # eight calls, one backward: what one op costs inside a model's backward
        spikes = [scan(y, None, beta, v_th, opts)[0] for _ in range(IN_ONE_BACKWARD)]
        torch.autograd.backward(spikes, [grad] * IN_ONE_BACKWARD)

    def neuron_forward_backward():
        neuron.reset()
        neuron(y).backward(grad)

    return {"lif_scan (public, checks values: 1 sync)": public_forward, "scan (trusted) forward": trusted_forward,
            "scan (trusted) forward+backward": trusted_forward_backward,
            f"scan (trusted) fwd+bwd, {IN_ONE_BACKWARD} calls in one backward": trusted_in_one_backward,
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


def profile_text(name, fn, calls, rows) -> str:
    """The ``rows`` functions with the most own time over ``calls`` calls of ``fn``, as pstats prints them."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(rows)
    return f"## {name} ({calls} calls)\n\n{text.getvalue()}"


def main(argv=None):
    p = parser(__doc__, calls=500, repeats=20, profile=0)
    args = p.parse_args(argv)
    rows = []
    small = cases(args.device, 16, 1, 256)
    big = cases(args.device, 1024, 64, 256)
    for name, fn in small.items():
        per_call = IN_ONE_BACKWARD if "in one backward" in name else 1  # rows are per lif_scan call
        us = host_us(fn, args.device, args.calls) / per_call
        ms = timed(big[name], args.device, args.repeats)[0] / per_call
        rows.append({"case": name, "host_us": us, "big_ms": ms})
        print(f"{name:52s} host {us:8.1f} us/call   T=1024 B=64 H=256: {ms:7.3f} ms", flush=True)
    columns = {"case": ("case", "{}"), "host µs/call (T=16, 256 neurons)": ("host_us", "{:.1f}"),
               "ms/call at T=1024, B=64, H=256": ("big_ms", "{:.3f}")}
    write(args, "host", "LIF scan host cost", "LIF scan: host time per call", columns, rows)
    if args.profile:
        texts = [profile_text(name, fn, args.calls, args.profile) for name, fn in small.items()]
        path = Path(args.out) / (f"host_profile_{args.device}_{datetime.date.today()}"
                                 + (f"_{args.tag}" if args.tag else "") + ".txt")
        path.write_text(f"# bench_host.py --profile {args.profile}, {device_name(args.device)}, torch "
                        f"{torch.__version__}: host time per case at T=16, 256 neurons\n\n" + "\n".join(texts))
        print(f"profiles: {path}")
    print(f"device: {device_name(args.device)}")
    return rows


if __name__ == "__main__":
    main()
