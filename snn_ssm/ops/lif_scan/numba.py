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


@numba.njit(inline="always")
def _pre(y, x, d, t, lo, hi, skip, out):
    """The soma's input at step ``t`` for neurons ``lo:hi``: ``y``, or ``y + d * x`` with the fused D-skip."""
    if skip:
        yt, xt, dd = y[t, lo:hi], x[t, lo:hi], d[lo:hi]
        for j in range(hi - lo):
            out[j] = yt[j] + dd[j] * xt[j]
        return out
    return y[t, lo:hi]


@functools.lru_cache(maxsize=None)
def soma_step_fn(reset: int):
    """One step of the soma as an inlined function: ``(spike, membrane after the reset)`` from the membrane ``v``
    before the step and the input ``y``. The one definition that every forward and every backward recomputation
    (here and in ``ssm_lif``) runs, so that they round alike and the recomputed spikes are the forward's."""
    @numba.njit(inline="always")
    def step(v, y, beta, k, v_reset, one, zero):
        u = beta * v + y * k
        s = one if u - one >= zero else zero
        if reset == 0:
            u = u - s * (u - v_reset)
        elif reset == 1:
            u = u - s
        return s, u

    return step


@functools.lru_cache(maxsize=None)
def _forward_kernel(reset: int, skip: bool):
    step = soma_step_fn(reset)

    @numba.njit(parallel=True)
    def forward(y, x, d, v0, beta, k, v_reset, spikes, ckpt):
        T, N = y.shape
        one, zero = y.dtype.type(1), y.dtype.type(0)
        for blk in numba.prange((N + BLOCK - 1) // BLOCK):
            lo = blk * BLOCK
            hi = min(lo + BLOCK, N)
            v = v0[lo:hi].copy()
            b, kk = beta[lo:hi], k[lo:hi]
            pre = np.empty(hi - lo, dtype=y.dtype)
            for t in range(T):
                if t % CHUNK == 0:
                    ckpt[t // CHUNK, lo:hi] = v
                yt, st = _pre(y, x, d, t, lo, hi, skip, pre), spikes[t, lo:hi]
                for j in range(hi - lo):
                    sp, vn = step(v[j], yt[j], b[j], kk[j], v_reset, one, zero)
                    st[j] = sp
                    v[j] = vn
            ckpt[(T + CHUNK - 1) // CHUNK, lo:hi] = v  # final state

    return forward


@functools.lru_cache(maxsize=None)
def surrogate_fn(sg_code: int):
    """The derivative of the named surrogate ``sg_code`` (0 triangle, 1 atan, 2 sigmoid) as an inlined function."""
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

    return surrogate


@functools.lru_cache(maxsize=None)
def soma_adjoint_fn(reset: int, detach: bool, sg_code: int):
    """One step of the soma's adjoint (README.md, "Backward") as an inlined function:
    ``∂L/∂u'_t`` from the pre-reset membrane ``u``, the spike ``s``, the carried ``∂L/∂v_t`` and ``∂L/∂s_t``."""
    surrogate = surrogate_fn(sg_code)

    @numba.njit(inline="always")
    def adjoint(u, s, gv, g_spike, v_reset, alpha, one):
        if reset == 0:
            gu = gv * (one - s)
            if not detach:
                g_spike = g_spike - gv * (u - v_reset)
        elif reset == 1:
            gu = gv
            if not detach:
                g_spike = g_spike - gv
        else:
            gu = gv
        return gu + g_spike * surrogate(u - one, alpha)

    return adjoint


@functools.lru_cache(maxsize=None)
def _backward_kernel(reset: int, detach: bool, local: bool, sg_code: int, skip: bool):
    adjoint = soma_adjoint_fn(reset, detach, sg_code)
    step = soma_step_fn(reset)

    @numba.njit(parallel=True)
    def backward(y, x, d, beta, k, v_reset, alpha, ckpt, g_s, g_vT, g_y, g_x, g_d, g_v0, g_beta, g_k):
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
            gd = np.zeros(width, dtype=y.dtype)
            b, kk, dd = beta[lo:hi], k[lo:hi], d[lo:hi]
            v_prev = np.empty((CHUNK + 1, width), dtype=y.dtype)  # membrane before each step of the chunk
            pre = np.empty((CHUNK, width), dtype=y.dtype)  # the soma's input over the chunk
            for c in range(n_chunks - 1, -1, -1):
                t0 = c * CHUNK
                t1 = min(t0 + CHUNK, T)
                v_prev[0] = ckpt[c, lo:hi]
                for i in range(t1 - t0):  # recompute the chunk exactly as the forward did
                    yt, vp, vn = _pre(y, x, d, t0 + i, lo, hi, skip, pre[i]), v_prev[i], v_prev[i + 1]
                    for j in range(width):
                        vn[j] = step(vp[j], yt[j], b[j], kk[j], v_reset, one, zero)[1]
                for i in range(t1 - t0 - 1, -1, -1):
                    t = t0 + i
                    yt = pre[i] if skip else y[t, lo:hi]
                    vp, gst, gyt = v_prev[i], g_s[t, lo:hi], g_y[t, lo:hi]
                    xt, gxt = x[t, lo:hi], g_x[t, lo:hi]
                    for j in range(width):
                        u = b[j] * vp[j] + yt[j] * kk[j]
                        s = one if u - one >= zero else zero
                        gu = adjoint(u, s, gv[j], gst[j], v_reset, alpha, one)
                        g_pre = gu * kk[j]
                        gyt[j] = g_pre
                        if skip:
                            gxt[j] = g_pre * dd[j]
                            gd[j] += g_pre * xt[j]
                        gk[j] += gu * yt[j]
                        gb[j] += gu * vp[j]
                        gv[j] = zero if local else gu * b[j]
            g_v0[lo:hi] = gv
            g_beta[lo:hi] = gb
            g_k[lo:hi] = gk
            if skip:
                g_d[lo:hi] = gd

    return backward


def launch_forward(y, v0, beta, k, opts, skip=None):
    """``(spikes [T, N], ckpt [ceil(T/CHUNK) + 1, N])`` for CPU tensors; the last checkpoint row is v_T."""
    import torch

    v_reset, reset = opts.v_reset, opts.reset
    T, N = y.shape
    x, d = skip if skip is not None else (y, beta)  # placeholders the kernel does not read without the skip
    spikes = torch.empty_like(y)
    ckpt = torch.empty(((T + CHUNK - 1) // CHUNK + 1, N), dtype=y.dtype)
    yn = y.numpy()
    _forward_kernel(reset, skip is not None)(yn, x.numpy(), d.numpy(), v0.numpy(), beta.numpy(), k.numpy(),
                                             yn.dtype.type(v_reset), spikes.numpy(), ckpt.numpy())
    return spikes, ckpt


def launch_backward(y, beta, k, ckpt, g_s, g_vT, opts, skip=None):
    import torch

    v_reset, reset, detach_reset, local, sg_code, alpha = (opts.v_reset, opts.reset, opts.detach_reset, opts.local,
                                                           opts.surrogate, opts.alpha)
    g_y, g_v0, g_beta, g_k = (torch.empty_like(t) for t in (y, beta, beta, k))
    if skip is not None:
        x, d = skip
        g_x, g_d = torch.empty_like(x), torch.empty_like(d)
    else:
        x, d, g_x, g_d = y, beta, g_y, g_beta  # placeholders the kernel does not touch without the skip
    yn = y.numpy()
    dt = yn.dtype.type
    _backward_kernel(reset, bool(detach_reset), bool(local), sg_code, skip is not None)(
        yn, x.numpy(), d.numpy(), beta.numpy(), k.numpy(), dt(v_reset), dt(alpha), ckpt.numpy(),
        g_s.contiguous().numpy(), g_vT.contiguous().numpy(), g_y.numpy(), g_x.numpy(), g_d.numpy(), g_v0.numpy(),
        g_beta.numpy(), g_k.numpy())
    grads = (g_y, g_v0, g_beta, g_k)
    return grads if skip is None else (*grads, g_x, g_d)
