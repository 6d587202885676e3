"""numba CPU kernels for the LIF scan: blocks of neurons in parallel (``prange``), time sequential.

Layout: ``y`` ``[T, N]`` C-contiguous, per-neuron ``beta``, ``k = 1/v_th`` ``[N]``. The forward writes spikes and
the membrane at the start of every ``CHUNK``-step chunk; the backward recomputes each chunk from its checkpoint
(bit-identical to the forward) and walks it in reverse. See ``README.md`` for the derivation.
"""
from __future__ import annotations

import math

import numba
import numpy as np

CHUNK = 16
BLOCK = 64  # neurons per parallel task: contiguous in memory, so the inner loop vectorises


@numba.njit(inline="always")
def _surrogate(x, code, alpha):
    if code == 0:
        g = alpha - alpha * alpha * abs(x)
        return g if g > 0 else x * 0
    if code == 1:
        z = math.pi / 2 * alpha * x
        return (alpha / 2) / (1 + z * z)
    sg = 1 / (1 + math.exp(-alpha * x))
    return alpha * sg * (1 - sg)


@numba.njit(parallel=True, cache=True)
def forward(y, v0, beta, k, v_reset, reset, spikes, ckpt):
    T, N = y.shape
    one = y.dtype.type(1)
    for blk in numba.prange((N + BLOCK - 1) // BLOCK):
        lo = blk * BLOCK
        hi = min(lo + BLOCK, N)
        v = v0[lo:hi].copy()
        for t in range(T):
            if t % CHUNK == 0:
                ckpt[t // CHUNK, lo:hi] = v
            for j in range(hi - lo):
                n = lo + j
                u = beta[n] * v[j] + y[t, n] * k[n]
                s = one if u - one >= 0 else one * 0
                spikes[t, n] = s
                if reset == 0:
                    u = u - s * (u - v_reset)
                elif reset == 1:
                    u = u - s
                v[j] = u
        ckpt[(T + CHUNK - 1) // CHUNK, lo:hi] = v  # final state
    return


@numba.njit(parallel=True, cache=True)
def backward(y, beta, k, v_reset, reset, detach_reset, local, sg_code, alpha, ckpt, g_s, g_vT,
             g_y, g_v0, g_beta, g_k):
    T, N = y.shape
    one = y.dtype.type(1)
    n_chunks = (T + CHUNK - 1) // CHUNK
    for blk in numba.prange((N + BLOCK - 1) // BLOCK):
        lo = blk * BLOCK
        hi = min(lo + BLOCK, N)
        width = hi - lo
        gv = g_vT[lo:hi].copy()
        gb = np.zeros(width, dtype=y.dtype)
        gk = np.zeros(width, dtype=y.dtype)
        v_prev = np.empty((CHUNK + 1, width), dtype=y.dtype)  # membrane before each step of the chunk
        u_pre = np.empty((CHUNK, width), dtype=y.dtype)  # u' (before reset) at each step
        for c in range(n_chunks - 1, -1, -1):
            t0 = c * CHUNK
            t1 = min(t0 + CHUNK, T)
            v_prev[0] = ckpt[c, lo:hi]
            for i in range(t1 - t0):  # recompute the chunk exactly as the forward did
                for j in range(width):
                    n = lo + j
                    u = beta[n] * v_prev[i, j] + y[t0 + i, n] * k[n]
                    u_pre[i, j] = u
                    s = one if u - one >= 0 else one * 0
                    if reset == 0:
                        u = u - s * (u - v_reset)
                    elif reset == 1:
                        u = u - s
                    v_prev[i + 1, j] = u
            for i in range(t1 - t0 - 1, -1, -1):
                t = t0 + i
                for j in range(width):
                    n = lo + j
                    u = u_pre[i, j]
                    s = one if u - one >= 0 else one * 0
                    g_spike = g_s[t, n]
                    if reset == 0:
                        gu = gv[j] * (one - s)
                        if not detach_reset:
                            g_spike = g_spike - gv[j] * (u - v_reset)
                    elif reset == 1:
                        gu = gv[j]
                        if not detach_reset:
                            g_spike = g_spike - gv[j]
                    else:
                        gu = gv[j]
                    gu = gu + g_spike * _surrogate(u - one, sg_code, alpha)
                    g_y[t, n] = gu * k[n]
                    gk[j] += gu * y[t, n]
                    gb[j] += gu * v_prev[i, j]
                    gv[j] = gu * beta[n] if not local else gu * 0
        g_v0[lo:hi] = gv
        g_beta[lo:hi] = gb
        g_k[lo:hi] = gk
    return


def launch_forward(y, v0, beta, k, opts):
    """``(spikes [T, N], ckpt [ceil(T/CHUNK) + 1, N])`` for CPU tensors; the last checkpoint row is v_T."""
    import torch

    v_reset, reset = opts[0], opts[1]
    T, N = y.shape
    spikes = torch.empty_like(y)
    ckpt = torch.empty(((T + CHUNK - 1) // CHUNK + 1, N), dtype=y.dtype)
    yn = y.contiguous().numpy()
    forward(yn, v0.contiguous().numpy(), beta.contiguous().numpy(), k.contiguous().numpy(),
            yn.dtype.type(v_reset), reset, spikes.numpy(), ckpt.numpy())
    return spikes, ckpt


def launch_backward(y, beta, k, ckpt, g_s, g_vT, opts):
    import torch

    v_reset, reset, detach_reset, local, sg_code, alpha = opts
    g_y, g_v0, g_beta, g_k = (torch.empty_like(t) for t in (y, y[0], beta, k))
    yn = y.numpy()
    dt = yn.dtype.type
    backward(yn, beta.numpy(), k.numpy(), dt(v_reset), reset, detach_reset, local, sg_code, dt(alpha),
             ckpt.numpy(), g_s.contiguous().numpy(), g_vT.contiguous().numpy(), g_y.numpy(), g_v0.numpy(),
             g_beta.numpy(), g_k.numpy())
    return g_y, g_v0, g_beta, g_k
