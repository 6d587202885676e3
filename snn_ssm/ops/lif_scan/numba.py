"""numba CPU kernels for the LIF scan: blocks of neurons in parallel (``prange``), time sequential.

Layout: ``y`` ``[T, N]`` C-contiguous, per-neuron ``beta``, ``k = 1/v_th`` ``[N]``. The forward writes spikes and
the membrane at the start of every ``CHUNK``-step chunk; the backward recomputes each chunk from its checkpoint
(bit-identical to the forward) and walks it in reverse. See ``README.md`` for the derivation.

One kernel is compiled per configuration (reset kind, detach, gradient mode, surrogate), with the options as
compile-time constants: without run-time branches the inner loop over a block of neurons vectorises, which makes
the backward about 10x faster than a single generic kernel. Each variant compiles at its first use (a second or
two) and is kept for the process.
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np

CHUNK = 16
BLOCK = 256  # neurons per parallel task: contiguous in memory, so the inner loop vectorises


@functools.lru_cache(maxsize=None)
def _forward_kernel(reset: int):
    @numba.njit(parallel=True)
    def forward(y, v0, beta, k, v_reset, spikes, ckpt):
        T, N = y.shape
        one, zero = y.dtype.type(1), y.dtype.type(0)
        for blk in numba.prange((N + BLOCK - 1) // BLOCK):
            lo = blk * BLOCK
            hi = min(lo + BLOCK, N)
            v = v0[lo:hi].copy()
            b, kk = beta[lo:hi], k[lo:hi]
            for t in range(T):
                if t % CHUNK == 0:
                    ckpt[t // CHUNK, lo:hi] = v
                yt, st = y[t, lo:hi], spikes[t, lo:hi]
                for j in range(hi - lo):
                    u = b[j] * v[j] + yt[j] * kk[j]
                    s = one if u - one >= zero else zero
                    st[j] = s
                    if reset == 0:
                        u = u - s * (u - v_reset)
                    elif reset == 1:
                        u = u - s
                    v[j] = u
            ckpt[(T + CHUNK - 1) // CHUNK, lo:hi] = v  # final state

    return forward


@functools.lru_cache(maxsize=None)
def _backward_kernel(reset: int, detach: bool, local: bool, sg_code: int):
    half_pi = math.pi / 2

    @numba.njit(inline="always")
    def surrogate(x, alpha):
        if sg_code == 0:
            g = alpha - alpha * alpha * abs(x)
            return g if g > 0 else x * 0
        if sg_code == 1:
            z = half_pi * alpha * x
            return (alpha / 2) / (1 + z * z)
        sg = 1 / (1 + math.exp(-alpha * x))
        return alpha * sg * (1 - sg)

    @numba.njit(parallel=True)
    def backward(y, beta, k, v_reset, alpha, ckpt, g_s, g_vT, g_y, g_v0, g_beta, g_k):
        T, N = y.shape
        one, zero = y.dtype.type(1), y.dtype.type(0)
        n_chunks = (T + CHUNK - 1) // CHUNK
        for blk in numba.prange((N + BLOCK - 1) // BLOCK):
            lo = blk * BLOCK
            hi = min(lo + BLOCK, N)
            width = hi - lo
            gv = g_vT[lo:hi].copy()
            gb = np.zeros(width, dtype=y.dtype)
            gk = np.zeros(width, dtype=y.dtype)
            b, kk = beta[lo:hi], k[lo:hi]
            v_prev = np.empty((CHUNK + 1, width), dtype=y.dtype)  # membrane before each step of the chunk
            for c in range(n_chunks - 1, -1, -1):
                t0 = c * CHUNK
                t1 = min(t0 + CHUNK, T)
                v_prev[0] = ckpt[c, lo:hi]
                for i in range(t1 - t0):  # recompute the chunk exactly as the forward did
                    yt, vp, vn = y[t0 + i, lo:hi], v_prev[i], v_prev[i + 1]
                    for j in range(width):
                        u = b[j] * vp[j] + yt[j] * kk[j]
                        s = one if u - one >= zero else zero
                        if reset == 0:
                            u = u - s * (u - v_reset)
                        elif reset == 1:
                            u = u - s
                        vn[j] = u
                for i in range(t1 - t0 - 1, -1, -1):
                    t = t0 + i
                    yt, vp, gst, gyt = y[t, lo:hi], v_prev[i], g_s[t, lo:hi], g_y[t, lo:hi]
                    for j in range(width):
                        u = b[j] * vp[j] + yt[j] * kk[j]
                        s = one if u - one >= zero else zero
                        g_spike = gst[j]
                        if reset == 0:
                            gu = gv[j] * (one - s)
                            if not detach:
                                g_spike = g_spike - gv[j] * (u - v_reset)
                        elif reset == 1:
                            gu = gv[j]
                            if not detach:
                                g_spike = g_spike - gv[j]
                        else:
                            gu = gv[j]
                        gu = gu + g_spike * surrogate(u - one, alpha)
                        gyt[j] = gu * kk[j]
                        gk[j] += gu * yt[j]
                        gb[j] += gu * vp[j]
                        gv[j] = zero if local else gu * b[j]
            g_v0[lo:hi] = gv
            g_beta[lo:hi] = gb
            g_k[lo:hi] = gk

    return backward


def launch_forward(y, v0, beta, k, opts):
    """``(spikes [T, N], ckpt [ceil(T/CHUNK) + 1, N])`` for CPU tensors; the last checkpoint row is v_T."""
    import torch

    v_reset, reset = opts[0], opts[1]
    T, N = y.shape
    spikes = torch.empty_like(y)
    ckpt = torch.empty(((T + CHUNK - 1) // CHUNK + 1, N), dtype=y.dtype)
    yn = y.numpy()
    _forward_kernel(reset)(yn, v0.numpy(), beta.numpy(), k.numpy(), yn.dtype.type(v_reset), spikes.numpy(),
                           ckpt.numpy())
    return spikes, ckpt


def launch_backward(y, beta, k, ckpt, g_s, g_vT, opts):
    import torch

    v_reset, reset, detach_reset, local, sg_code, alpha = opts
    g_y, g_v0, g_beta, g_k = (torch.empty_like(t) for t in (y, beta, beta, k))
    yn = y.numpy()
    dt = yn.dtype.type
    _backward_kernel(reset, bool(detach_reset), bool(local), sg_code)(
        yn, beta.numpy(), k.numpy(), dt(v_reset), dt(alpha), ckpt.numpy(), g_s.contiguous().numpy(),
        g_vT.contiguous().numpy(), g_y.numpy(), g_v0.numpy(), g_beta.numpy(), g_k.numpy())
    return g_y, g_v0, g_beta, g_k
