"""CuPy (CUDA C++) kernels for the LIF scan: one thread per neuron, a chunk of inputs in registers.

Each thread keeps two chunks of its neuron's inputs in registers: while it runs one chunk, the loads of the next
(independent of the state) are already in flight, so memory latency overlaps the sequential arithmetic. The
forward writes spikes and the membrane at each chunk start; the backward reloads a chunk's inputs and spike
gradients, recomputes its membranes in registers from the checkpoint and walks it in reverse. Compiled with
``--fmad=false`` so every multiply and add rounds as the torch reference's do: spikes and states are
bit-identical. Compiled at first use; CuPy caches the binary on disk.
"""
from __future__ import annotations

import cupy
import numpy
import torch

from .cuda_source import CHUNK, OPTIONS, THREADS, source




_modules: dict = {}
_streams: dict = {}
# input dtype -> numpy type of the state (the kernels' scalar arguments)
_REAL = {torch.float32: numpy.float32, torch.float64: numpy.float64, torch.float16: numpy.float32,
         torch.bfloat16: numpy.float32}


def _module(dtype, skip: bool):
    key = (cupy.cuda.runtime.getDevice(), dtype, skip)  # a loaded module belongs to one device
    if key not in _modules:
        _modules[key] = cupy.RawModule(code=source(dtype, CHUNK, skip), options=OPTIONS)
    return _modules[key]


def _ptr(t: torch.Tensor | None):
    # Raw device pointers passed by value: converting through __cuda_array_interface__ would make CuPy
    # synchronise the stream on every argument. A missing optional array is a null pointer the kernel never reads.
    return numpy.uint64(0 if t is None else t.data_ptr())


def _stream(device: torch.device):
    """The CuPy view of torch's current stream on ``device`` (the tensors' GPU, which need not be the current one)."""
    torch_stream = torch.cuda.current_stream(device)
    key = torch_stream.cuda_stream
    if key not in _streams:
        try:  # CuPy >= 14: streams implementing the __cuda_stream__ protocol
            _streams[key] = cupy.cuda.Stream.from_external(torch_stream)
        except (AttributeError, TypeError):
            _streams[key] = cupy.cuda.ExternalStream(key, torch_stream.device.index)
    return _streams[key]


def on_device(device: torch.device):
    """CuPy's current device set to ``device`` for a launch: a kernel runs on its tensors' GPU and that GPU's current
    torch stream, whichever device is current (a model on ``cuda:1``, a rank of a multi-GPU run)."""
    return cupy.cuda.Device(device.index if device.index is not None else torch.cuda.current_device())


def _launch(kernel_name, dtype, skip, N, args, device):
    with on_device(device):
        kernel = _module(dtype, skip).get_function(kernel_name)
        blocks = (N + THREADS - 1) // THREADS
        kernel((blocks,), (THREADS,), args, stream=_stream(device))


def launch_forward(y, v0, beta, k, opts, skip=None):
    v_reset, reset = opts.v_reset, opts.reset
    T, N = y.shape
    x, d = skip if skip is not None else (None, None)
    real = _REAL[y.dtype]
    spikes = torch.empty_like(y)
    ckpt = torch.empty(((T + CHUNK - 1) // CHUNK + 1, N), dtype=beta.dtype, device=y.device)
    _launch("lif_fwd", y.dtype, skip is not None, N,
            (_ptr(y), _ptr(x), _ptr(d), _ptr(v0), _ptr(beta), _ptr(k), _ptr(spikes), _ptr(ckpt), real(v_reset),
             numpy.int64(T), numpy.int64(N), numpy.int32(reset)), y.device)
    return spikes, ckpt


def launch_backward(y, beta, k, ckpt, g_s, g_vT, opts, skip=None):
    v_reset, reset, detach_reset, local, sg_code, alpha = (opts.v_reset, opts.reset, opts.detach_reset, opts.local,
                                                           opts.surrogate, opts.alpha)
    T, N = y.shape
    real = _REAL[y.dtype]
    g_s, g_vT = g_s.to(y.dtype).contiguous(), g_vT.contiguous()
    g_y, g_v0, g_beta, g_k = (torch.empty_like(t) for t in (y, beta, beta, k))
    x, d = skip if skip is not None else (None, None)
    g_x, g_d = (torch.empty_like(x), torch.empty_like(d)) if skip is not None else (None, None)
    _launch("lif_bwd", y.dtype, skip is not None, N,
            (_ptr(y), _ptr(x), _ptr(d), _ptr(beta), _ptr(k), _ptr(ckpt), _ptr(g_s), _ptr(g_vT), _ptr(g_y),
             _ptr(g_x), _ptr(g_d), _ptr(g_v0), _ptr(g_beta), _ptr(g_k), real(v_reset), real(alpha),
             numpy.int64(T), numpy.int64(N), numpy.int32(reset), numpy.int32(detach_reset), numpy.int32(local),
             numpy.int32(sg_code)), y.device)
    grads = (g_y, g_v0, g_beta, g_k)
    return grads if skip is None else (*grads, g_x, g_d)
