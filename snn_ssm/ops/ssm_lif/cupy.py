"""CuPy (CUDA C++) kernels for the fused SSM-dendrite LIF: a few threads per neuron, each holding a slice of its
modes in registers, time sequential; see ``README.md``.

A neuron's ``K = N/2`` complex modes are split over ``G`` neighbouring lanes of a warp (``P = K/G`` modes each,
``G`` in 1, 2, 4, 8): each lane steps its modes, the lanes sum ``Re Σ C h`` with a butterfly of warp shuffles, and
every lane of the group then steps the same soma (the lanes agree bit for bit, so no broadcast is needed). Small
batches fill the GPU because a neuron is ``G`` threads, not one.

The forward writes spikes and, every ``CHUNK`` steps, the membrane and the complex state. The backward walks the
chunks in reverse: (a) it recomputes the chunk from its checkpoint with the forward's own operations (bit-identical,
so the spikes and membranes are the forward's), keeping each step's soma input and membrane in shared memory and
the state every ``SUB`` steps in registers; (b) it runs the soma's adjoint backwards over the chunk; (c) for each
sub-chunk, newest first, it recomputes the ``SUB + 1`` states in registers and runs the dendrite's adjoint over them,
accumulating the per-neuron parameter gradients in registers. The complex products are written with explicit fused
multiply-adds and everything else is compiled with ``--fmad=false``, so the forward and the recomputations round
identically. One module is compiled per (input dtype, K) at first use; CuPy caches the binary on disk.
"""
from __future__ import annotations

import cupy
import numpy
import torch

from ..lif_scan.cupy import _ptr, _stream, on_device
from .cuda_source import CHUNK, OPTIONS, SUB, THREADS, group_size, source

# The most lanes per neuron, forward and backward: the fastest of bench_ssm_lif.py's sweep on an H200
# (benchmarks/results/ssm_lif_cuda_2026-12-01.md; 4 and 16 at N = 64, i.e. 8 and 2 modes per lane).
FWD_GROUP = 4
BWD_GROUP = 16
# The backward with the somas split off (``ssm_lif_bwd_split``, README.md "Where the CUDA kernel's time goes"):
# neurons per block, each neuron's soma run by one lane of the first warp. 0 (the default) runs ``ssm_lif_bwd``,
# where every lane of a neuron repeats its soma. The split kernel (ptxas, sm_90: 128 registers, no spills) passed
# its float64 GPU tests against the recurrence (tests/ops/test_ssm_lif.py, ``split``; an H100, 2026-12-06), and was
# 1.7 % faster at the sMNIST layer (H100, 2026-12-07: within run-to-run scatter), so the simpler default stays.
SPLIT_NEURONS = 0



_modules: dict = {}
# input dtype -> numpy type of the state (the kernels' scalar arguments)
_REAL = {torch.float32: numpy.float32, torch.float64: numpy.float64, torch.float16: numpy.float32,
         torch.bfloat16: numpy.float32}


def _module(dtype: torch.dtype, modes: int, group: int, threads: int, has_u: bool, soma: bool):
    key = (cupy.cuda.runtime.getDevice(), dtype, modes, group, threads, CHUNK, SUB, SPLIT_NEURONS, has_u, soma)
    if key not in _modules:
        code = source(dtype, modes, group, CHUNK, SUB, threads, SPLIT_NEURONS, has_u, soma)
        _modules[key] = cupy.RawModule(code=code, options=OPTIONS)
    return _modules[key]


def _run(name: str, device: torch.device, dtype: torch.dtype, modes: int, N: int, args, has_u: bool = False,
         soma: bool = True) -> None:
    """Launch ``name`` from the module of its variant: with the extra soma input (``has_u``) or not, with the soma
    or the dendrite alone (``soma=False``); a variant compiles only the code it runs, so the plain kernel keeps
    its registers. It runs on ``device`` (the tensors' GPU) and its current stream."""
    group = group_size(modes, FWD_GROUP if name.endswith("fwd") else BWD_GROUP)
    threads = THREADS // 2 if dtype == torch.float64 else THREADS
    with on_device(device):
        module = _module(dtype, modes, group, threads, has_u, soma)
        if name == "ssm_lif_bwd" and SPLIT_NEURONS and soma:  # SPLIT_NEURONS neurons x group lanes per block
            module.get_function("ssm_lif_bwd_split")((-(-N // SPLIT_NEURONS),), (SPLIT_NEURONS * group,), args,
                                                     stream=_stream(device))
            return
        blocks = (N * group + threads - 1) // threads
        module.get_function(name)((blocks,), (threads,), args, stream=_stream(device))


def _state_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _gradient_buffers(x, dA):
    """``g_x`` and the per-neuron complex gradients of Ā, B̄, C and h_0 ``[N/2, N]`` the backwards write."""
    return (torch.empty_like(x), *(torch.empty((dA.shape[1], x.shape[1]), dtype=dA.dtype, device=x.device)
                                   for _ in range(4)))


def launch_forward(x, dA, dB, Cc, D, beta, k, v0, h0, extra, opts, channels: int, M: int):
    """``(spikes [T, N], ck_v [ceil(T/CHUNK) + 1, N], ck_h [ceil(T/CHUNK) + 1, N/2, N] complex)``; the last rows
    hold v_T and h_T (modes first). ``x`` (and ``extra`` ``[T, N]``, added to the soma's input, or ``None``) may be
    half precision; parameters and states are float32 (float64 for float64 input); ``h0`` is ``[N, N/2]``."""
    T, N = x.shape
    modes = dA.shape[1]
    rows = (T + CHUNK - 1) // CHUNK + 1
    real = _REAL[x.dtype]
    spikes = torch.empty_like(x)
    ck_v = torch.empty((rows, N), dtype=beta.dtype, device=x.device)
    ck_h = torch.empty((rows, modes, N), dtype=dA.dtype, device=x.device)
    _run("ssm_lif_fwd", x.device, x.dtype, modes, N,
         (_ptr(x), _ptr(dA), _ptr(dB), _ptr(Cc), _ptr(D), _ptr(beta), _ptr(k), _ptr(v0), _ptr(h0), _ptr(extra),
          _ptr(spikes),
          _ptr(ck_v), _ptr(ck_h), real(opts.v_reset), numpy.int64(T), numpy.int64(N), numpy.int32(channels),
          numpy.int64(M), numpy.int32(opts.reset)), has_u=extra is not None)
    return spikes, ck_v, ck_h


def launch_backward(x, dA, dB, Cc, D, beta, k, extra, ck_v, ck_h, g_s, g_vT, g_hT, opts, channels: int, M: int):
    """``(g_x, g_dA, g_dB, g_C, g_D, g_beta, g_k, g_v0, g_h0, g_extra)`` as numba's: complex parameter gradients
    per neuron, modes first ``[N/2, N]``; ``g_hT``/``g_h0`` ``[N/2, N]``; ``g_extra`` ``[T, N]`` or ``None``."""
    T, N = x.shape
    modes = dA.shape[1]
    real = _REAL[x.dtype]
    g_s = g_s.to(x.dtype).contiguous()
    g_x, gA, gB, gC, gh0 = _gradient_buffers(x, dA)
    g_D, g_beta, g_k, g_v0 = (torch.empty(N, dtype=beta.dtype, device=x.device) for _ in range(4))
    g_extra = None if extra is None else torch.empty_like(x)
    _run("ssm_lif_bwd", x.device, x.dtype, modes, N,
         (_ptr(x), _ptr(dA), _ptr(dB), _ptr(Cc), _ptr(D), _ptr(beta), _ptr(k), _ptr(extra), _ptr(ck_v), _ptr(ck_h),
          _ptr(g_s), _ptr(g_vT), _ptr(g_hT), _ptr(g_x), _ptr(gA), _ptr(gB), _ptr(gC), _ptr(g_D), _ptr(g_beta),
          _ptr(g_k), _ptr(g_v0), _ptr(gh0), _ptr(g_extra), real(opts.v_reset), real(opts.alpha), numpy.int64(T),
          numpy.int64(N), numpy.int32(channels), numpy.int64(M), numpy.int32(opts.reset),
          numpy.int32(bool(opts.detach_reset)), numpy.int32(bool(opts.local)), numpy.int32(opts.surrogate)),
         has_u=extra is not None)
    return g_x, gA, gB, gC, g_D, g_beta, g_k, g_v0, gh0, g_extra


def launch_dendrite_forward(x, dA, dB, Cc, D, h0, channels: int, M: int):
    """The dendrite alone, the same kernel without its soma: ``(y [T, N], ck_h [ceil(T/CHUNK) + 1, N/2, N])`` with
    ``y_t = 2 Re Σ C h_t + D x_t`` in ``x``'s dtype; the last row of ``ck_h`` holds h_T."""
    T, N = x.shape
    modes = dA.shape[1]
    rows = (T + CHUNK - 1) // CHUNK + 1
    y = torch.empty_like(x)
    ck_h = torch.empty((rows, modes, N), dtype=dA.dtype, device=x.device)
    real = _REAL[x.dtype]
    _run("ssm_lif_fwd", x.device, x.dtype, modes, N,
         (_ptr(x), _ptr(dA), _ptr(dB), _ptr(Cc), _ptr(D), _ptr(None), _ptr(None), _ptr(None), _ptr(h0), _ptr(None),
          _ptr(y), _ptr(None), _ptr(ck_h), real(0), numpy.int64(T), numpy.int64(N), numpy.int32(channels),
          numpy.int64(M), numpy.int32(0)), soma=False)
    return y, ck_h


def launch_dendrite_backward(x, dA, dB, Cc, D, ck_h, g_y, g_hT, channels: int, M: int):
    """``(g_x, g_dA, g_dB, g_C, g_D, g_h0)`` of :func:`launch_dendrite_forward` from ``g_y`` ``[T, N]`` and
    ``g_hT`` ``[N/2, N]``, per neuron as :func:`launch_backward`'s."""
    T, N = x.shape
    modes = dA.shape[1]
    real = _REAL[x.dtype]
    g_y = g_y.to(x.dtype).contiguous()
    g_x, gA, gB, gC, gh0 = _gradient_buffers(x, dA)
    g_D = torch.empty(N, dtype=D.dtype, device=x.device)
    _run("ssm_lif_bwd", x.device, x.dtype, modes, N,
         (_ptr(x), _ptr(dA), _ptr(dB), _ptr(Cc), _ptr(D), _ptr(None), _ptr(None), _ptr(None), _ptr(None), _ptr(ck_h),
          _ptr(g_y), _ptr(None), _ptr(g_hT), _ptr(g_x), _ptr(gA), _ptr(gB), _ptr(gC), _ptr(g_D), _ptr(None),
          _ptr(None), _ptr(None), _ptr(gh0), _ptr(None), real(0), real(1), numpy.int64(T), numpy.int64(N),
          numpy.int32(channels), numpy.int64(M), numpy.int32(0), numpy.int32(0), numpy.int32(0), numpy.int32(0)),
         soma=False)
    return g_x, gA, gB, gC, g_D, gh0
