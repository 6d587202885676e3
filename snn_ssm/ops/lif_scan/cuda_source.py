"""The CUDA C++ source of the LIF scan kernels (``cupy.py`` compiles and launches them), apart from CuPy so that any
machine with ``nvcc`` can compile every variant (``tests/ops/test_cuda_sources.py``).
"""
from __future__ import annotations

import torch

# Tuned on an H100 (B=64, H=256): 32-step chunks, 64 threads per block (256 blocks for 16k neurons).
CHUNK = 32
THREADS = 64

#: nvcc options: every multiply and add rounds as the torch reference's do.
OPTIONS = ("--fmad=false", "-std=c++14")

# input dtype -> (C type of the input, C type of the state)
TYPES = {torch.float32: ("float", "float"), torch.float64: ("double", "double"), torch.float16: ("__half", "float"),
         torch.bfloat16: ("__nv_bfloat16", "float")}


def source(dtype: torch.dtype, chunk: int, skip: bool) -> str:
    """The module for input ``dtype``, checkpoints every ``chunk`` steps, with the fused D-skip (``skip``) or not."""
    io, real = TYPES[dtype]
    return SOURCE % {"chunk": chunk, "skip": int(skip), "io": io, "real": real}


SOURCE = r"""
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
