"""The CUDA C++ source of the fused SSM-LIF kernels (``cupy.py`` compiles and launches them; see ``README.md``),
apart from CuPy so that any machine with ``nvcc`` can compile every variant (``tests/ops/test_cuda_sources.py``).
"""
from __future__ import annotations

import torch

CHUNK = 32  # checkpoint interval: 8·K/CHUNK bytes per neuron-step in fp32 (8 at N = 64)
SUB = 8  # backward sub-chunk whose states are held in registers
THREADS = 64  # per block (32 for float64), so that the backward's shared chunk buffers fit 48 KiB for any split

#: nvcc options: no contraction into fused multiply-adds beyond the explicit ones (the recomputation rounds as the
#: forward did).
OPTIONS = ("--fmad=false", "-std=c++14")

# input dtype -> (C type of the input, C type of the state, its 2-vector, the fused multiply-add)
TYPES = {torch.float32: ("float", "float", "float2", "fmaf"),
         torch.float64: ("double", "double", "double2", "fma"),
         torch.float16: ("__half", "float", "float2", "fmaf"),
         torch.bfloat16: ("__nv_bfloat16", "float", "float2", "fmaf")}


def group_size(modes: int, largest: int = 8) -> int:
    """Lanes per neuron: the largest power of two up to ``largest`` that divides ``modes`` and leaves each lane 2
    modes or more, else 1."""
    return next((g for g in (16, 8, 4, 2) if g <= largest and modes % g == 0 and modes // g >= 2), 1)


def source(dtype: torch.dtype, modes: int, group: int, chunk: int, sub: int, threads: int, split_neurons: int,
           has_u: bool, soma: bool) -> str:
    """The module for one variant: input ``dtype``, ``modes`` = N/2 split over ``group`` lanes, checkpoints every
    ``chunk`` steps, backward sub-chunks of ``sub``, ``threads`` per block, the split backward for
    ``split_neurons`` neurons per block (0: not compiled), with the extra soma input (``has_u``), with the soma or
    the dendrite alone (``soma=False``)."""
    io, real, real2, fma = TYPES[dtype]
    code = SOURCE % {"modes": modes, "group": group, "chunk": chunk, "sub": sub, "threads": threads, "io": io,
                     "real": real, "real2": real2, "fma": fma, "nbs": split_neurons, "has_u": int(has_u),
                     "soma": int(soma)}
    return code.replace("make_real2", "make_" + real2)


SOURCE = r"""
#define K %(modes)d
#define G %(group)d
#define P (K / G)
#define CHUNK %(chunk)d
#define SUB %(sub)d
#define THREADS %(threads)d
#define NB (THREADS / G)
#define NBS %(nbs)d
#define HAS_U %(has_u)d
#define SOMA %(soma)d
#include <cuda_fp16.h>
#include <cuda_bf16.h>
typedef %(io)s io_t;
typedef %(real)s real;
typedef %(real2)s real2;
#define FMA %(fma)s

__device__ __forceinline__ real surrogate(real x, real alpha, int code) {
    if (code == 0) { real g = alpha - alpha * alpha * fabs(x); return g > (real)0 ? g : (real)0; }
    if (code == 1) { real z = (real)1.5707963267948966 * alpha * x; return (alpha / (real)2) / ((real)1 + z * z); }
    real sg = (real)1 / ((real)1 + exp(-alpha * x));
    return alpha * sg * ((real)1 - sg);
}

__device__ __forceinline__ real group_sum(real a) {
    #pragma unroll
    for (int o = G / 2; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
    return a;
}

// The lane's modes one step on, h <- A h + B x in place; returns its share of Re sum C h.
__device__ __forceinline__ real advance(const real* ar, const real* ai, const real* br, const real* bi,
                                        const real* cr, const real* ci, real* hr, real* hi, real xt) {
    real acc = (real)0;
    #pragma unroll
    for (int j = 0; j < P; ++j) {
        const real r = FMA(ar[j], hr[j], FMA(-ai[j], hi[j], br[j] * xt));
        const real i = FMA(ar[j], hi[j], FMA(ai[j], hr[j], bi[j] * xt));
        hr[j] = r;
        hi[j] = i;
        acc = FMA(cr[j], r, FMA(-ci[j], i, acc));
    }
    return acc;
}

__device__ __forceinline__ real reset_of(real u, real sp, real v_reset, int reset) {
    if (reset == 0) return u - sp * (u - v_reset);
    if (reset == 1) return u - sp;
    return u;
}

// One step of the soma's adjoint, newest first: from the step's input y, the membrane before it vp and the spike's
// gradient, with gv = dL/dv after the step; accumulates dL/dk and dL/dbeta, carries gv back, returns dL/dy.
__device__ __forceinline__ real soma_adjoint(real y, real vp, real g_spike, real bb, real kk, real& gv, real& gkk,
                                             real& gbb, real v_reset, real alpha, int reset, int detach, int local,
                                             int sg_code) {
    const real u = bb * vp + y * kk;
    const real sp = (u - (real)1 >= (real)0) ? (real)1 : (real)0;
    real gu;
    if (reset == 0) { gu = gv * ((real)1 - sp); if (!detach) g_spike -= gv * (u - v_reset); }
    else if (reset == 1) { gu = gv; if (!detach) g_spike -= gv; }
    else gu = gv;
    gu += g_spike * surrogate(u - (real)1, alpha, sg_code);
    gkk += gu * y;
    gbb += gu * vp;
    gv = local ? (real)0 : gu * bb;
    return gu * kk;
}

// The per-mode gradient registers of a lane: lambda = dL/dh (from dL/dh_T) and the sums for A, B, C.
#define GRADIENT_REGISTERS                                                                                     \
    real lr[P], li[P], ga_r[P], ga_i[P], gb_r[P], gb_i[P], gc_r[P], gc_i[P];                                  \
    _Pragma("unroll") for (int j = 0; j < P; ++j) {                                                           \
        const real2 l = ghT[(g * P + j) * N + n];                                                              \
        lr[j] = l.x; li[j] = l.y;                                                                              \
        ga_r[j] = ga_i[j] = gb_r[j] = gb_i[j] = gc_r[j] = gc_i[j] = (real)0;                                  \
    }

// (c) of both backwards: the dendrite's adjoint over the chunk, sub-chunk by sub-chunk, newest first, from the
// states kept every SUB steps (sr, si) and the soma-input gradients sh_g; lambda = dL/dh after the step.
#define DENDRITE_ADJOINT                                                                                       \
    _Pragma("unroll") for (int sb = CHUNK / SUB - 1; sb >= 0; --sb) {                                         \
        if (sb * SUB < L) {                                                                                    \
            real hs_r[SUB + 1][P], hs_i[SUB + 1][P];                                                           \
            _Pragma("unroll") for (int j = 0; j < P; ++j) {                                                   \
                hr[j] = hs_r[0][j] = sr[sb][j]; hi[j] = hs_i[0][j] = si[sb][j];                                \
            }                                                                                                  \
            _Pragma("unroll") for (int ii = 0; ii < SUB; ++ii) {                                              \
                const real xt = sb * SUB + ii < L ? sh_x[ln][sb * SUB + ii] : (real)0;                         \
                advance(ar, ai, br, bi, cr, ci, hr, hi, xt);                                                   \
                _Pragma("unroll") for (int j = 0; j < P; ++j) { hs_r[ii + 1][j] = hr[j]; hs_i[ii + 1][j] = hi[j]; } \
            }                                                                                                  \
            _Pragma("unroll") for (int ii = SUB - 1; ii >= 0; --ii) {                                         \
                const int i = sb * SUB + ii;                                                                   \
                if (i < L) {                                                                                   \
                    const long long t = t0 + i;                                                                \
                    const real xt = sh_x[ln][i];                                                               \
                    const real gy = sh_g[ln][i], g2 = gy + gy;                                                 \
                    real part = (real)0;                                                                       \
                    _Pragma("unroll") for (int j = 0; j < P; ++j) {                                           \
                        const real pr = lr[j] + g2 * cr[j], pi = li[j] - g2 * ci[j];                          \
                        gc_r[j] += g2 * hs_r[ii + 1][j];                                                       \
                        gc_i[j] -= g2 * hs_i[ii + 1][j];                                                       \
                        part += pr * br[j] + pi * bi[j];                                                       \
                        gb_r[j] += pr * xt;                                                                    \
                        gb_i[j] += pi * xt;                                                                    \
                        const real hpr = hs_r[ii][j], hpi = hs_i[ii][j];                                       \
                        ga_r[j] += pr * hpr + pi * hpi;                                                        \
                        ga_i[j] += pi * hpr - pr * hpi;                                                        \
                        lr[j] = pr * ar[j] + pi * ai[j];                                                       \
                        li[j] = pi * ar[j] - pr * ai[j];                                                       \
                    }                                                                                          \
                    part = group_sum(part);                                                                    \
                    gd += gy * xt;                                                                             \
                    if (active && g == 0) {                                                                    \
                        gx[t * N + n] = (io_t)(gy * d + part);                                                 \
                        if (HAS_U) g_u[t * N + n] = (io_t)gy;                                                       \
                    }                                                                                          \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    }

// The per-mode gradients of a lane's neuron, and dL/dh_0.
#define STORE_MODE_GRADIENTS                                                                                   \
    _Pragma("unroll") for (int j = 0; j < P; ++j) {                                                           \
        const long long o = (long long)(g * P + j) * N + n;                                                    \
        gA[o] = make_real2(ga_r[j], ga_i[j]);                                                                  \
        gB[o] = make_real2(gb_r[j], gb_i[j]);                                                                  \
        gC[o] = make_real2(gc_r[j], gc_i[j]);                                                                  \
        gh0[o] = make_real2(lr[j], li[j]);                                                                     \
    }

// The parameters of both backwards (the launcher passes them in this order)
#define BACKWARD_PARAMETERS                                                                                    \
        const io_t* __restrict__ x, const real2* __restrict__ dA, const real2* __restrict__ dB,                \
        const real2* __restrict__ Cc, const real* __restrict__ D, const real* __restrict__ beta,               \
        const real* __restrict__ k, const io_t* __restrict__ u, const real* __restrict__ ck_v,                 \
        const real2* __restrict__ ck_h, const io_t* __restrict__ gs, const real* __restrict__ gvT,             \
        const real2* __restrict__ ghT, io_t* __restrict__ gx, real2* __restrict__ gA, real2* __restrict__ gB,  \
        real2* __restrict__ gC, real* __restrict__ gD, real* __restrict__ gbeta, real* __restrict__ gk,        \
        real* __restrict__ gv0, real2* __restrict__ gh0, io_t* __restrict__ g_u, const real v_reset,           \
        const real alpha, const long long T, const long long N, const int channels, const long long M,         \
        const int reset, const int detach, const int local, const int sg_code

#define LOAD_PARAMS                                                                                            \
    const long long tid = (long long)blockIdx.x * THREADS + threadIdx.x;                                      \
    const long long n_raw = tid / G;                                                                           \
    const int g = (int)(tid %% G);                                                                             \
    const bool active = n_raw < N;                                                                             \
    const long long n = active ? n_raw : N - 1;                                                                \
    const int c = (int)((n / M) %% channels);                                                                  \
    real ar[P], ai[P], br[P], bi[P], cr[P], ci[P], hr[P], hi[P];                                              \
    _Pragma("unroll") for (int j = 0; j < P; ++j) {                                                           \
        const int m = g * P + j;                                                                               \
        const real2 a = dA[c * K + m], b = dB[c * K + m], cc = Cc[c * K + m];                                \
        ar[j] = a.x; ai[j] = a.y; br[j] = b.x; bi[j] = b.y; cr[j] = cc.x; ci[j] = cc.y;                     \
    }                                                                                                          \
    const real d = D[n], bb = SOMA ? beta[n] : (real)0, kk = SOMA ? k[n] : (real)0;

extern "C" __global__ void __launch_bounds__(THREADS) ssm_lif_fwd(
        const io_t* __restrict__ x, const real2* __restrict__ dA, const real2* __restrict__ dB,
        const real2* __restrict__ Cc, const real* __restrict__ D, const real* __restrict__ beta,
        const real* __restrict__ k, const real* __restrict__ v0, const real2* __restrict__ h0,
        const io_t* __restrict__ u, io_t* __restrict__ s, real* __restrict__ ck_v, real2* __restrict__ ck_h,
        const real v_reset,
        const long long T, const long long N, const int channels, const long long M, const int reset) {
    LOAD_PARAMS
    #pragma unroll
    for (int j = 0; j < P; ++j) { const real2 h = h0[n * K + g * P + j]; hr[j] = h.x; hi[j] = h.y; }
    real v = SOMA ? v0[n] : (real)0;
    const bool writer = active && g == 0;
    // The inputs of the next 8 steps are loaded while the current 8 are computed (they do not depend on the state),
    // and so is the extra soma input u in the module compiled with one (HAS_U; u is a null pointer otherwise).
    real cur[8], nxt[8], cur_u[8], nxt_u[8];
    #pragma unroll
    for (int i = 0; i < 8; ++i) {
        cur[i] = i < T ? (real)x[i * N + n] : (real)0;
        cur_u[i] = HAS_U && i < T ? (real)u[i * N + n] : (real)0;
    }
    for (long long t0 = 0; t0 < T; t0 += 8) {
        #pragma unroll
        for (int i = 0; i < 8; ++i) {
            nxt[i] = t0 + 8 + i < T ? (real)x[(t0 + 8 + i) * N + n] : (real)0;
            nxt_u[i] = HAS_U && t0 + 8 + i < T ? (real)u[(t0 + 8 + i) * N + n] : (real)0;
        }
        if (t0 %% CHUNK == 0 && active) {
            const long long row = t0 / CHUNK;
            if (SOMA && g == 0) ck_v[row * N + n] = v;
            #pragma unroll
            for (int j = 0; j < P; ++j) ck_h[(row * K + g * P + j) * N + n] = make_real2(hr[j], hi[j]);
        }
        #pragma unroll
        for (int i = 0; i < 8; ++i) {
            if (t0 + i < T) {
                const real xt = cur[i];
                const real acc = group_sum(advance(ar, ai, br, bi, cr, ci, hr, hi, xt));
                real y = (acc + acc) + d * xt;
                if (HAS_U) y += cur_u[i];
                if (SOMA) {
                    const real m = bb * v + y * kk;
                    const real sp = (m - (real)1 >= (real)0) ? (real)1 : (real)0;
                    if (writer) s[(t0 + i) * N + n] = (io_t)sp;
                    v = reset_of(m, sp, v_reset, reset);
                } else if (writer) {
                    s[(t0 + i) * N + n] = (io_t)y;  // the dendrite alone: its output
                }
            }
        }
        #pragma unroll
        for (int i = 0; i < 8; ++i) { cur[i] = nxt[i]; cur_u[i] = nxt_u[i]; }
    }
    if (active) {
        const long long row = (T + CHUNK - 1) / CHUNK;
        if (SOMA && g == 0) ck_v[row * N + n] = v;
        #pragma unroll
        for (int j = 0; j < P; ++j) ck_h[(row * K + g * P + j) * N + n] = make_real2(hr[j], hi[j]);
    }
}

extern "C" __global__ void __launch_bounds__(THREADS) ssm_lif_bwd(BACKWARD_PARAMETERS) {
    LOAD_PARAMS
    // Per neuron of the block, one chunk of: inputs, spike gradients, soma inputs, membranes, soma-input gradients
    // (rows padded by one so that the neurons of a warp fall in different banks).
    __shared__ real sh_x[NB][CHUNK + 1], sh_gs[NB][CHUNK + 1], sh_y[NB][CHUNK + 1], sh_v[NB][CHUNK + 1],
        sh_g[NB][CHUNK + 1];
    const int ln = threadIdx.x / G;
    GRADIENT_REGISTERS
    real gv = SOMA ? gvT[n] : (real)0, gd = 0, gbb = 0, gkk = 0;
    const long long n_chunks = (T + CHUNK - 1) / CHUNK;
    for (long long ch = n_chunks - 1; ch >= 0; --ch) {
        const long long t0 = ch * CHUNK;
        const int L = (int)(T - t0 < CHUNK ? T - t0 : CHUNK);
        #pragma unroll
        for (int j = 0; j < P; ++j) { const real2 h = ck_h[(ch * K + g * P + j) * N + n]; hr[j] = h.x; hi[j] = h.y; }
        real v = SOMA ? ck_v[ch * N + n] : (real)0;
        // The chunk's inputs and spike gradients, loaded once by the lanes of the group together.
        for (int i = g; i < L; i += G) {
            sh_x[ln][i] = (real)x[(t0 + i) * N + n];
            if (SOMA) sh_gs[ln][i] = (real)gs[(t0 + i) * N + n];
            else sh_g[ln][i] = (real)gs[(t0 + i) * N + n];  // the dendrite alone: gs is dL/dy
            if (HAS_U) sh_g[ln][i] = (real)u[(t0 + i) * N + n];  // read in (a), overwritten in (b)
        }
        __syncwarp();
        // (a) the chunk again, as the forward computed it; the state every SUB steps kept in registers
        real sr[CHUNK / SUB][P], si[CHUNK / SUB][P];
        #pragma unroll
        for (int sb = 0; sb < CHUNK / SUB; ++sb) {
            #pragma unroll
            for (int j = 0; j < P; ++j) { sr[sb][j] = hr[j]; si[sb][j] = hi[j]; }
            #pragma unroll
            for (int ii = 0; ii < SUB; ++ii) {
                const int i = sb * SUB + ii;
                if (i < L && !SOMA) {
                    advance(ar, ai, br, bi, cr, ci, hr, hi, sh_x[ln][i]);  // the states only
                } else if (i < L) {
                    const real xt = sh_x[ln][i];
                    const real acc = group_sum(advance(ar, ai, br, bi, cr, ci, hr, hi, xt));
                    real y = (acc + acc) + d * xt;
                    if (HAS_U) y += sh_g[ln][i];
                    const real m = bb * v + y * kk;
                    const real sp = (m - (real)1 >= (real)0) ? (real)1 : (real)0;
                    if (g == 0) { sh_y[ln][i] = y; sh_v[ln][i] = v; }
                    v = reset_of(m, sp, v_reset, reset);
                }
            }
        }
        __syncwarp();
        // (b) the soma's adjoint over the chunk, newest step first (every lane of the group alike)
        for (int i = SOMA ? L - 1 : -1; i >= 0; --i) {
            const real gy = soma_adjoint(sh_y[ln][i], sh_v[ln][i], sh_gs[ln][i], bb, kk, gv, gkk, gbb, v_reset, alpha,
                                         reset, detach, local, sg_code);
            if (g == 0) sh_g[ln][i] = gy;
        }
        __syncwarp();
        // (c) the dendrite's adjoint, sub-chunk by sub-chunk, newest first; lambda = dL/dh after the step
        DENDRITE_ADJOINT
        __syncwarp();
    }
    if (!active) return;
    STORE_MODE_GRADIENTS
    if (g == 0) gD[n] = gd;
    if (SOMA && g == 0) { gbeta[n] = gbb; gk[n] = gkk; gv0[n] = gv; }
}

// The backward with the somas split off: a block holds NBS neurons x G lanes. Per chunk, (a) every lane
// recomputes its modes and the group writes the dendrite output y_t; (b) NBS lanes of the first warp, one per
// neuron, rerun the soma over the chunk and its adjoint (the serial work, done once per neuron instead of once per
// lane: the block's other warps wait at the barrier and issue nothing); (c) every lane runs the dendrite's adjoint.
#if NBS > 0  // compiled only where it runs: with NBS = 0 its arrays would have no size
extern "C" __global__ void __launch_bounds__(NBS * G) ssm_lif_bwd_split(BACKWARD_PARAMETERS) {
    const int ln = threadIdx.x / G, g = threadIdx.x %% G;
    const long long n_raw = (long long)blockIdx.x * NBS + ln;
    const bool active = n_raw < N;
    const long long n = active ? n_raw : N - 1;
    const int c = (int)((n / M) %% channels);
    real ar[P], ai[P], br[P], bi[P], cr[P], ci[P], hr[P], hi[P];
    #pragma unroll
    for (int j = 0; j < P; ++j) {
        const int m = g * P + j;
        const real2 a = dA[c * K + m], b = dB[c * K + m], cc = Cc[c * K + m];
        ar[j] = a.x; ai[j] = a.y; br[j] = b.x; bi[j] = b.y; cr[j] = cc.x; ci[j] = cc.y;
    }
    const real d = D[n];
    // The soma of neuron slot sl = threadIdx.x (< NBS), held by one lane of the first warp.
    const bool soma = threadIdx.x < NBS;
    const int sl = soma ? threadIdx.x : 0;
    const long long ns_raw = (long long)blockIdx.x * NBS + sl;
    const bool soma_active = soma && ns_raw < N;
    const long long ns = ns_raw < N ? ns_raw : N - 1;
    const real sbb = beta[ns], skk = k[ns];
    real gv = gvT[ns], gbb = 0, gkk = 0;
    __shared__ real sh_x[NBS][CHUNK + 1], sh_gs[NBS][CHUNK + 1], sh_y[NBS][CHUNK + 1], sh_v[NBS][CHUNK + 1],
        sh_g[NBS][CHUNK + 1];
    GRADIENT_REGISTERS
    real gd = 0;
    const long long n_chunks = (T + CHUNK - 1) / CHUNK;
    for (long long ch = n_chunks - 1; ch >= 0; --ch) {
        const long long t0 = ch * CHUNK;
        const int L = (int)(T - t0 < CHUNK ? T - t0 : CHUNK);
        #pragma unroll
        for (int j = 0; j < P; ++j) { const real2 h = ck_h[(ch * K + g * P + j) * N + n]; hr[j] = h.x; hi[j] = h.y; }
        for (int i = g; i < L; i += G) {
            sh_x[ln][i] = (real)x[(t0 + i) * N + n];
            sh_gs[ln][i] = (real)gs[(t0 + i) * N + n];
            if (HAS_U) sh_g[ln][i] = (real)u[(t0 + i) * N + n];  // read in (a), overwritten in (b)
        }
        __syncthreads();
        // (a) the modes again, as the forward computed them; the group writes y_t; the state every SUB steps kept
        real sr[CHUNK / SUB][P], si[CHUNK / SUB][P];
        #pragma unroll
        for (int sb = 0; sb < CHUNK / SUB; ++sb) {
            #pragma unroll
            for (int j = 0; j < P; ++j) { sr[sb][j] = hr[j]; si[sb][j] = hi[j]; }
            #pragma unroll
            for (int ii = 0; ii < SUB; ++ii) {
                const int i = sb * SUB + ii;
                if (i < L) {
                    const real xt = sh_x[ln][i];
                    const real acc = group_sum(advance(ar, ai, br, bi, cr, ci, hr, hi, xt));
                    if (g == 0) {
                        real y = (acc + acc) + d * xt;
                        if (HAS_U) y += sh_g[ln][i];
                        sh_y[ln][i] = y;
                    }
                }
            }
        }
        __syncthreads();
        // (b) one lane per neuron: the soma over the chunk from its checkpoint, then its adjoint, newest step first
        if (soma) {
            real v = ck_v[ch * N + ns];
            for (int i = 0; i < L; ++i) {
                const real y = sh_y[sl][i];
                const real m = sbb * v + y * skk;
                const real sp = (m - (real)1 >= (real)0) ? (real)1 : (real)0;
                sh_v[sl][i] = v;
                v = reset_of(m, sp, v_reset, reset);
            }
            for (int i = L - 1; i >= 0; --i)
                sh_g[sl][i] = soma_adjoint(sh_y[sl][i], sh_v[sl][i], sh_gs[sl][i], sbb, skk, gv, gkk, gbb, v_reset,
                                           alpha, reset, detach, local, sg_code);
        }
        __syncthreads();
        // (c) the dendrite's adjoint, sub-chunk by sub-chunk, newest first (as ssm_lif_bwd)
        DENDRITE_ADJOINT
        __syncthreads();
    }
    if (soma_active) { gbeta[ns] = gbb; gk[ns] = gkk; gv0[ns] = gv; }
    if (!active) return;
    STORE_MODE_GRADIENTS
    if (g == 0) gD[n] = gd;
}
#endif

"""
