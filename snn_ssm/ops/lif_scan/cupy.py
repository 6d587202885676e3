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

# Tuned on an H100 (B=64, H=256): 32-step chunks, 64 threads per block (256 blocks for 16k neurons).
CHUNK = 32
THREADS = 64

_SOURCE = r"""
#define CHUNK %(chunk)d
#define SKIP %(skip)d
#include <cuda_fp16.h>
#include <cuda_bf16.h>
typedef %(io)s io_t;    // dtype of y, spikes and their gradients
typedef %(real)s real;  // dtype of the state and parameters (float for half-precision inputs)

__device__ __forceinline__ real surrogate(real x, real alpha, int code) {
    if (code == 0) { real g = alpha - alpha * alpha * fabs(x); return g > (real)0 ? g : (real)0; }
    if (code == 1) { real z = (real)1.5707963267948966 * alpha * x; return (alpha / (real)2) / ((real)1 + z * z); }
    real sg = (real)1 / ((real)1 + exp(-alpha * x));
    return alpha * sg * ((real)1 - sg);
}

// The soma's input at step t: y_t, or with the fused D-skip (SKIP) y_t + d * x_t, rounded as torch rounds it.
#if SKIP
#define PRE(t) ((real)y[(t) * N + n] + d * (real)x[(t) * N + n])
#else
#define PRE(t) ((real)y[(t) * N + n])
#endif

extern "C" __global__ void lif_fwd(const io_t* __restrict__ y, const io_t* __restrict__ x,
                                   const real* __restrict__ dskip, const real* __restrict__ v0,
                                   const real* __restrict__ beta, const real* __restrict__ k,
                                   io_t* __restrict__ s, real* __restrict__ ckpt,
                                   const real v_reset, long long T, long long N, int reset) {
    long long n = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    real v = v0[n], b = beta[n], kk = k[n];
#if SKIP
    const real d = dskip[n];
#endif
    const long long n_chunks = (T + CHUNK - 1) / CHUNK;
    real cur[CHUNK], nxt[CHUNK];
    #pragma unroll
    for (int i = 0; i < CHUNK; ++i) cur[i] = (i < T) ? PRE(i) : (real)0;
    for (long long c = 0; c < n_chunks; ++c) {
        const long long t0 = c * CHUNK, t1 = t0 + CHUNK;
        // Issue the next chunk's loads first: they do not depend on the state, so they overlap this chunk.
        #pragma unroll
        for (int i = 0; i < CHUNK; ++i) nxt[i] = (t1 + i < T) ? PRE(t1 + i) : (real)0;
        ckpt[c * N + n] = v;
        #pragma unroll
        for (int i = 0; i < CHUNK; ++i) {
            if (t0 + i < T) {
                real u = b * v + cur[i] * kk;
                real sp = (u - (real)1 >= (real)0) ? (real)1 : (real)0;
                s[(t0 + i) * N + n] = (io_t)sp;
                if (reset == 0) u = u - sp * (u - v_reset);
                else if (reset == 1) u = u - sp;
                v = u;
            }
        }
        #pragma unroll
        for (int i = 0; i < CHUNK; ++i) cur[i] = nxt[i];
    }
    ckpt[n_chunks * N + n] = v;
}

extern "C" __global__ void lif_bwd(const io_t* __restrict__ y, const io_t* __restrict__ x,
                                   const real* __restrict__ dskip, const real* __restrict__ beta,
                                   const real* __restrict__ k, const real* __restrict__ ckpt,
                                   const io_t* __restrict__ gs, const real* __restrict__ gvT,
                                   io_t* __restrict__ gy, io_t* __restrict__ gx, real* __restrict__ gd,
                                   real* __restrict__ gv0, real* __restrict__ gbeta,
                                   real* __restrict__ gk, const real v_reset, const real alpha, long long T,
                                   long long N, int reset, int detach, int local, int sg_code) {
    long long n = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const real b = beta[n], kk = k[n];
    real gv = gvT[n], gb = 0, gkk = 0;
#if SKIP
    const real d = dskip[n];
    real gdd = 0;
#endif
    const long long n_chunks = (T + CHUNK - 1) / CHUNK;
    real ys[CHUNK], gss[CHUNK], ys_n[CHUNK], gss_n[CHUNK], vp[CHUNK];
    long long t0 = (n_chunks - 1) * CHUNK;
    #pragma unroll
    for (int i = 0; i < CHUNK; ++i) {
        const bool in = t0 + i < T;
        ys[i] = in ? PRE(t0 + i) : (real)0;
        gss[i] = in ? (real)gs[(t0 + i) * N + n] : (real)0;
    }
    real v_ck = ckpt[(n_chunks - 1) * N + n];
    for (long long c = n_chunks - 1; c >= 0; --c) {
        t0 = c * CHUNK;
        // Prefetch the previous chunk (inputs, spike gradients, checkpoint) while this one is processed.
        const long long tp = t0 - CHUNK;
        real v_ck_n = 0;
        if (c > 0) {
            #pragma unroll
            for (int i = 0; i < CHUNK; ++i) {
                ys_n[i] = PRE(tp + i);
                gss_n[i] = (real)gs[(tp + i) * N + n];
            }
            v_ck_n = ckpt[(c - 1) * N + n];
        }
        real v = v_ck;
        #pragma unroll
        for (int i = 0; i < CHUNK; ++i) {  // recompute the membrane before each step, exactly as the forward
            vp[i] = v;
            real u = b * v + ys[i] * kk;
            real sp = (u - (real)1 >= (real)0) ? (real)1 : (real)0;
            if (reset == 0) u = u - sp * (u - v_reset);
            else if (reset == 1) u = u - sp;
            v = u;
        }
        #pragma unroll
        for (int i = CHUNK - 1; i >= 0; --i) {
            if (t0 + i < T) {
                real u = b * vp[i] + ys[i] * kk;
                real sp = (u - (real)1 >= (real)0) ? (real)1 : (real)0;
                real g_spike = gss[i], gu;
                if (reset == 0) { gu = gv * ((real)1 - sp); if (!detach) g_spike -= gv * (u - v_reset); }
                else if (reset == 1) { gu = gv; if (!detach) g_spike -= gv; }
                else gu = gv;
                gu += g_spike * surrogate(u - (real)1, alpha, sg_code);
                const real g_pre = gu * kk;
                gy[(t0 + i) * N + n] = (io_t)g_pre;
#if SKIP
                // x is re-read here rather than held: its chunk is still in L1/L2 from the recompute loads
                const real xi = (real)x[(t0 + i) * N + n];
                gx[(t0 + i) * N + n] = (io_t)(g_pre * d);
                gdd += g_pre * xi;
#endif
                gkk += gu * ys[i];
                gb += gu * vp[i];
                gv = local ? (real)0 : gu * b;
            }
        }
        #pragma unroll
        for (int i = 0; i < CHUNK; ++i) { ys[i] = ys_n[i]; gss[i] = gss_n[i]; }
        v_ck = v_ck_n;
    }
    gv0[n] = gv;
    gbeta[n] = gb;
    gk[n] = gkk;
#if SKIP
    gd[n] = gdd;
#endif
}
"""

_modules: dict = {}
_streams: dict = {}
# input dtype -> (C type of the input, C type of the state, numpy type of the state)
_TYPES = {torch.float32: ("float", "float", numpy.float32), torch.float64: ("double", "double", numpy.float64),
          torch.float16: ("__half", "float", numpy.float32), torch.bfloat16: ("__nv_bfloat16", "float", numpy.float32)}


def _module(dtype, skip: bool):
    key = (cupy.cuda.runtime.getDevice(), dtype, skip)  # a loaded module belongs to one device
    if key not in _modules:
        io, real, _ = _TYPES[dtype]
        code = _SOURCE % {"chunk": CHUNK, "skip": int(skip), "io": io, "real": real}
        _modules[key] = cupy.RawModule(code=code, options=("--fmad=false", "-std=c++14"))
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
    real = _TYPES[y.dtype][2]
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
    real = _TYPES[y.dtype][2]
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
