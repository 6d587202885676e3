"""CuPy (CUDA C++) kernels for the LIF scan: one thread per neuron, a chunk of inputs in registers.

Each thread loads the ``CHUNK`` inputs of its neuron for the next chunk at once (independent of the state, so
the loads overlap), then runs the chunk from registers. The forward writes spikes and the membrane at each chunk
start; the backward reloads a chunk's inputs and spike gradients, recomputes its membranes in registers from the
checkpoint and walks it in reverse. Compiled with ``--fmad=false`` so every multiply and add rounds as the torch
reference's do: spikes and states are bit-identical. Compiled at first use; CuPy caches the binary on disk.
"""
from __future__ import annotations

import cupy
import torch

CHUNK = 16
THREADS = 128

_SOURCE = r"""
#define CHUNK %(chunk)d
typedef %(real)s real;

__device__ __forceinline__ real surrogate(real x, real alpha, int code) {
    if (code == 0) { real g = alpha - alpha * alpha * fabs(x); return g > (real)0 ? g : (real)0; }
    if (code == 1) { real z = (real)1.5707963267948966 * alpha * x; return (alpha / (real)2) / ((real)1 + z * z); }
    real sg = (real)1 / ((real)1 + exp(-alpha * x));
    return alpha * sg * ((real)1 - sg);
}

extern "C" __global__ void lif_fwd(const real* __restrict__ y, const real* __restrict__ v0,
                                   const real* __restrict__ beta, const real* __restrict__ k,
                                   real* __restrict__ s, real* __restrict__ ckpt,
                                   const real* __restrict__ scalars, long long T, long long N, int reset) {
    long long n = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const real v_reset = scalars[0];
    real v = v0[n], b = beta[n], kk = k[n];
    long long n_chunks = (T + CHUNK - 1) / CHUNK;
    for (long long c = 0; c < n_chunks; ++c) {
        ckpt[c * N + n] = v;
        const long long t0 = c * CHUNK;
        real buf[CHUNK];
        #pragma unroll
        for (int i = 0; i < CHUNK; ++i) buf[i] = (t0 + i < T) ? y[(t0 + i) * N + n] : (real)0;
        #pragma unroll
        for (int i = 0; i < CHUNK; ++i) {
            if (t0 + i < T) {
                real u = b * v + buf[i] * kk;
                real sp = (u - (real)1 >= (real)0) ? (real)1 : (real)0;
                s[(t0 + i) * N + n] = sp;
                if (reset == 0) u = u - sp * (u - v_reset);
                else if (reset == 1) u = u - sp;
                v = u;
            }
        }
    }
    ckpt[n_chunks * N + n] = v;
}

extern "C" __global__ void lif_bwd(const real* __restrict__ y, const real* __restrict__ beta,
                                   const real* __restrict__ k, const real* __restrict__ ckpt,
                                   const real* __restrict__ gs, const real* __restrict__ gvT,
                                   real* __restrict__ gy, real* __restrict__ gv0, real* __restrict__ gbeta,
                                   real* __restrict__ gk, const real* __restrict__ scalars, long long T, long long N,
                                   int reset, int detach, int local, int sg_code) {
    long long n = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const real v_reset = scalars[0], alpha = scalars[1];
    const real b = beta[n], kk = k[n];
    real gv = gvT[n], gb = 0, gkk = 0;
    long long n_chunks = (T + CHUNK - 1) / CHUNK;
    for (long long c = n_chunks - 1; c >= 0; --c) {
        const long long t0 = c * CHUNK;
        real ys[CHUNK], gss[CHUNK], vp[CHUNK];
        #pragma unroll
        for (int i = 0; i < CHUNK; ++i) {
            const bool in = t0 + i < T;
            ys[i] = in ? y[(t0 + i) * N + n] : (real)0;
            gss[i] = in ? gs[(t0 + i) * N + n] : (real)0;
        }
        real v = ckpt[c * N + n];
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
                gy[(t0 + i) * N + n] = gu * kk;
                gkk += gu * ys[i];
                gb += gu * vp[i];
                gv = local ? (real)0 : gu * b;
            }
        }
    }
    gv0[n] = gv;
    gbeta[n] = gb;
    gk[n] = gkk;
}
"""

_modules: dict = {}
_REAL = {torch.float32: "float", torch.float64: "double"}


def _module(dtype):
    if dtype not in _modules:
        code = _SOURCE % {"chunk": CHUNK, "real": _REAL[dtype]}
        _modules[dtype] = cupy.RawModule(code=code, options=("--fmad=false", "-std=c++14"))
    return _modules[dtype]


def _cp(t: torch.Tensor):
    return cupy.asarray(t)  # zero-copy view through __cuda_array_interface__


def _launch(kernel_name, dtype, N, args):
    kernel = _module(dtype).get_function(kernel_name)
    blocks = (N + THREADS - 1) // THREADS
    with cupy.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream):
        kernel((blocks,), (THREADS,), args)


def _scalars(y, v_reset, alpha=0.0):
    return torch.tensor([v_reset, alpha], dtype=y.dtype, device=y.device)


def launch_forward(y, v0, beta, k, opts):
    v_reset, reset = opts[0], opts[1]
    T, N = y.shape
    spikes = torch.empty_like(y)
    ckpt = torch.empty(((T + CHUNK - 1) // CHUNK + 1, N), dtype=y.dtype, device=y.device)
    _launch("lif_fwd", y.dtype, N, (_cp(y), _cp(v0), _cp(beta), _cp(k), _cp(spikes), _cp(ckpt),
                                    _cp(_scalars(y, v_reset)), cupy.int64(T), cupy.int64(N), cupy.int32(reset)))
    return spikes, ckpt


def launch_backward(y, beta, k, ckpt, g_s, g_vT, opts):
    v_reset, reset, detach_reset, local, sg_code, alpha = opts
    T, N = y.shape
    g_y, g_v0, g_beta, g_k = (torch.empty_like(t) for t in (y, y[0], beta, k))
    _launch("lif_bwd", y.dtype, N, (_cp(y), _cp(beta), _cp(k), _cp(ckpt), _cp(g_s.contiguous()),
                                    _cp(g_vT.contiguous()), _cp(g_y), _cp(g_v0), _cp(g_beta), _cp(g_k),
                                    _cp(_scalars(y, v_reset, alpha)), cupy.int64(T), cupy.int64(N),
                                    cupy.int32(reset), cupy.int32(detach_reset), cupy.int32(local),
                                    cupy.int32(sg_code)))
    return g_y, g_v0, g_beta, g_k
