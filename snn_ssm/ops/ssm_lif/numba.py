"""numba CPU kernels for the fused SSM-dendrite LIF: blocks of neurons in parallel (``prange``), time sequential,
the innermost loop over the neurons of a block (contiguous in memory, so it vectorises); see ``README.md``.

Layout: ``x`` ``[T, N]`` C-contiguous, neuron ``n`` of channel ``(n // M) % C``; per-channel complex parameters are
gathered per block into real ``[N/2, BLOCK]`` arrays; the complex state is held as real and imaginary parts
``[N/2, N]``. The forward writes spikes and, every ``CHUNK`` steps, the membrane and the state; the backward
recomputes each chunk from its checkpoint with the forward's operations (bit-identical) and walks it in reverse.
Complex products are written out in real arithmetic, ``(a_r h_r − a_i h_i) + b_r x`` and
``(a_r h_i + a_i h_r) + b_i x``, without fused multiply-adds (numba does not contract without fastmath): the
forward and the backward's recomputation round identically. One kernel is compiled per configuration at its first
use.
"""
from __future__ import annotations

import functools

import numba
import numpy as np

from ..lif_scan.numba import soma_adjoint_fn, soma_step_fn

CHUNK = 128  # the state is checkpointed every CHUNK steps: 8·(N/2)/CHUNK bytes per neuron-step in fp32 (2 at N = 64)
BLOCK = 64  # neurons per parallel task


@numba.njit(inline="always")
def _gather(src, channels, M, lo, hi):
    """``out[j, w] = src[channel of neuron lo + w, j]``: a per-channel ``[C, N/2]`` parameter per neuron."""
    out = np.empty((src.shape[1], hi - lo), dtype=src.dtype)
    for w in range(hi - lo):
        c = ((lo + w) // M) % channels
        for j in range(src.shape[1]):
            out[j, w] = src[c, j]
    return out


@numba.njit(inline="always")
def _gather_all(A_r, A_i, B_r, B_i, C_r, C_i, channels, M, lo, hi):
    return (_gather(A_r, channels, M, lo, hi), _gather(A_i, channels, M, lo, hi), _gather(B_r, channels, M, lo, hi),
            _gather(B_i, channels, M, lo, hi), _gather(C_r, channels, M, lo, hi), _gather(C_i, channels, M, lo, hi))


@numba.njit(inline="always")
def _advance(ar, ai, br, bi, cr, ci, hr, hi_, xt, acc, width, zero, out_r, out_i):
    """The modes of a block one step on: ``out = Ā h + B̄ x`` (``out`` may be ``h`` itself); ``acc = Re Σ C out``
    per neuron."""
    for w in range(width):
        acc[w] = zero
    for j in range(hr.shape[0]):
        for w in range(width):
            r = ar[j, w] * hr[j, w] - ai[j, w] * hi_[j, w] + br[j, w] * xt[w]
            i = ar[j, w] * hi_[j, w] + ai[j, w] * hr[j, w] + bi[j, w] * xt[w]
            out_r[j, w] = r
            out_i[j, w] = i
            acc[w] += cr[j, w] * r - ci[j, w] * i


@functools.lru_cache(maxsize=None)
def _forward_kernel(reset: int, soma: bool = True):
    """The forward; ``soma=False`` compiles the dendrite alone, which writes its output ``y`` where the spikes go."""
    step = soma_step_fn(reset)  # the soma's step, shared with lif_scan

    @numba.njit(parallel=True)
    def forward(x, A_r, A_i, B_r, B_i, C_r, C_i, D, beta, k, v0, h0_r, h0_i, extra, v_reset, channels, M, spikes,
                ck_v, ck_hr, ck_hi):
        T, N = x.shape
        has_extra = extra.shape[0] > 0  # an input added to the soma's (the anti-causal side of a layer), or [0, N]
        one, zero = x.dtype.type(1), x.dtype.type(0)
        for blk in numba.prange((N + BLOCK - 1) // BLOCK):
            lo = blk * BLOCK
            hi = min(lo + BLOCK, N)
            width = hi - lo
            ar, ai, br, bi, cr, ci = _gather_all(A_r, A_i, B_r, B_i, C_r, C_i, channels, M, lo, hi)
            hr, hi_ = h0_r[:, lo:hi].copy(), h0_i[:, lo:hi].copy()
            v = v0[lo:hi].copy()
            d, bb, kk = D[lo:hi], beta[lo:hi], k[lo:hi]
            acc = np.empty(width, dtype=x.dtype)
            for t in range(T):
                if t % CHUNK == 0:
                    ck_v[t // CHUNK, lo:hi] = v
                    ck_hr[t // CHUNK, :, lo:hi] = hr
                    ck_hi[t // CHUNK, :, lo:hi] = hi_
                xt, st = x[t, lo:hi], spikes[t, lo:hi]
                _advance(ar, ai, br, bi, cr, ci, hr, hi_, xt, acc, width, zero, hr, hi_)
                for w in range(width):
                    y = (acc[w] + acc[w]) + d[w] * xt[w]
                    if has_extra:
                        y += extra[t, lo + w]
                    if soma:
                        sp, vn = step(v[w], y, bb[w], kk[w], v_reset, one, zero)
                        st[w] = sp
                        v[w] = vn
                    else:
                        st[w] = y
            last = (T + CHUNK - 1) // CHUNK
            ck_v[last, lo:hi] = v
            ck_hr[last, :, lo:hi] = hr
            ck_hi[last, :, lo:hi] = hi_

    return forward


@functools.lru_cache(maxsize=None)
def _backward_kernel(reset: int, detach: bool, local: bool, sg_code: int, soma: bool = True):
    """The backward; ``soma=False``: of the dendrite alone, ``g_s`` being the gradient of its output."""
    adjoint = soma_adjoint_fn(reset, detach, sg_code)  # the soma's adjoint and step, shared with lif_scan
    step = soma_step_fn(reset)

    @numba.njit(parallel=True)
    def backward(x, A_r, A_i, B_r, B_i, C_r, C_i, D, beta, k, extra, v_reset, alpha, channels, M, ck_v, ck_hr,
                 ck_hi, g_s, g_vT, g_hTr, g_hTi, g_x, gA_r, gA_i, gB_r, gB_i, gC_r, gC_i, g_D, g_beta, g_k, g_v0,
                 g_h0r, g_h0i, g_extra):
        T, N = x.shape
        has_extra = extra.shape[0] > 0
        modes = A_r.shape[1]
        n_chunks = (T + CHUNK - 1) // CHUNK
        one, zero = x.dtype.type(1), x.dtype.type(0)
        for blk in numba.prange((N + BLOCK - 1) // BLOCK):
            lo = blk * BLOCK
            hi = min(lo + BLOCK, N)
            width = hi - lo
            ar, ai, br, bi, cr, ci = _gather_all(A_r, A_i, B_r, B_i, C_r, C_i, channels, M, lo, hi)
            d, bb, kk = D[lo:hi], beta[lo:hi], k[lo:hi]
            gv = g_vT[lo:hi].copy()
            lr, li = g_hTr[:, lo:hi].copy(), g_hTi[:, lo:hi].copy()  # ∂L/∂h after the current step (Re, Im)
            ga_r = np.zeros((modes, width), dtype=x.dtype)
            ga_i = np.zeros((modes, width), dtype=x.dtype)
            gb_r = np.zeros((modes, width), dtype=x.dtype)
            gb_i = np.zeros((modes, width), dtype=x.dtype)
            gc_r = np.zeros((modes, width), dtype=x.dtype)
            gc_i = np.zeros((modes, width), dtype=x.dtype)
            gd = np.zeros(width, dtype=x.dtype)
            gbeta = np.zeros(width, dtype=x.dtype)
            gk = np.zeros(width, dtype=x.dtype)
            hs_r = np.empty((CHUNK + 1, modes, width), dtype=x.dtype)  # the state before each step, then after
            hs_i = np.empty((CHUNK + 1, modes, width), dtype=x.dtype)
            vs = np.empty((CHUNK + 1, width), dtype=x.dtype)
            ys = np.empty((CHUNK, width), dtype=x.dtype)
            acc = np.empty(width, dtype=x.dtype)
            gy = np.empty(width, dtype=x.dtype)
            g2 = np.empty(width, dtype=x.dtype)
            lam_r = np.empty(width, dtype=x.dtype)  # λ_t of one mode, before the step back
            lam_i = np.empty(width, dtype=x.dtype)
            for ch in range(n_chunks - 1, -1, -1):
                t0 = ch * CHUNK
                t1 = min(t0 + CHUNK, T)
                hs_r[0] = ck_hr[ch, :, lo:hi]
                hs_i[0] = ck_hi[ch, :, lo:hi]
                vs[0] = ck_v[ch, lo:hi]
                for i in range(t1 - t0):  # recompute the chunk exactly as the forward did
                    xt = x[t0 + i, lo:hi]
                    # the states straight into the chunk's buffer (no copy of the state at each step)
                    _advance(ar, ai, br, bi, cr, ci, hs_r[i], hs_i[i], xt, acc, width, zero, hs_r[i + 1],
                             hs_i[i + 1])
                    for w in range(width if soma else 0):
                        y = (acc[w] + acc[w]) + d[w] * xt[w]
                        if has_extra:
                            y += extra[t0 + i, lo + w]
                        ys[i, w] = y
                        vs[i + 1, w] = step(vs[i, w], y, bb[w], kk[w], v_reset, one, zero)[1]
                for i in range(t1 - t0 - 1, -1, -1):
                    t = t0 + i
                    xt, gst, gxt = x[t, lo:hi], g_s[t, lo:hi], g_x[t, lo:hi]
                    for w in range(width):  # the soma's adjoint (as lif_scan's)
                        if soma:
                            y, vp = ys[i, w], vs[i, w]
                            u = bb[w] * vp + y * kk[w]
                            s = one if u - one >= zero else zero
                            gu = adjoint(u, s, gv[w], gst[w], v_reset, alpha, one)
                            gy[w] = gu * kk[w]
                            gk[w] += gu * y
                            gbeta[w] += gu * vp
                            gv[w] = zero if local else gu * bb[w]
                        else:
                            gy[w] = gst[w]
                        gxt[w] = gy[w] * d[w]
                        gd[w] += gy[w] * xt[w]
                        if has_extra:
                            g_extra[t, lo + w] = gy[w]
                    for w in range(width):
                        g2[w] = gy[w] + gy[w]
                    for j in range(modes):  # the dendrite's adjoint: λ_t = ∂L/∂h_t, then λ_{t-1} = conj(Ā) λ_t
                        # Three loops over the block's neurons, each with few arrays, so that LLVM vectorises
                        # them (one loop touching all twenty arrays stays scalar, 3.5x slower); every sum keeps
                        # its order, so the results are the one-loop form's bit for bit.
                        for w in range(width):
                            pr = lr[j, w] + g2[w] * cr[j, w]  # + 2 g_y conj(C)
                            pi = li[j, w] - g2[w] * ci[j, w]
                            lam_r[w] = pr
                            lam_i[w] = pi
                            gxt[w] += pr * br[j, w] + pi * bi[j, w]  # Re(λ conj(B̄))
                            lr[j, w] = pr * ar[j, w] + pi * ai[j, w]  # λ conj(Ā)
                            li[j, w] = pi * ar[j, w] - pr * ai[j, w]
                        for w in range(width):
                            pr, pi = lam_r[w], lam_i[w]
                            gb_r[j, w] += pr * xt[w]
                            gb_i[j, w] += pi * xt[w]
                            hpr, hpi = hs_r[i, j, w], hs_i[i, j, w]
                            ga_r[j, w] += pr * hpr + pi * hpi  # λ conj(h_{t-1})
                            ga_i[j, w] += pi * hpr - pr * hpi
                        for w in range(width):
                            gc_r[j, w] += g2[w] * hs_r[i + 1, j, w]  # + 2 g_y conj(h_t)
                            gc_i[j, w] -= g2[w] * hs_i[i + 1, j, w]
            g_v0[lo:hi] = gv
            g_h0r[:, lo:hi] = lr
            g_h0i[:, lo:hi] = li
            gA_r[:, lo:hi] = ga_r
            gA_i[:, lo:hi] = ga_i
            gB_r[:, lo:hi] = gb_r
            gB_i[:, lo:hi] = gb_i
            gC_r[:, lo:hi] = gc_r
            gC_i[:, lo:hi] = gc_i
            g_D[lo:hi] = gd
            g_beta[lo:hi] = gbeta
            g_k[lo:hi] = gk

    return backward


@functools.lru_cache(maxsize=None)
def _step_kernel(reset: int):
    step = soma_step_fn(reset)

    @numba.njit
    def one_step(x, h, A_r, A_i, B_r, B_i, C_r, C_i, D, beta, k, v, v_reset, spikes, h_out, v_out):
        one, zero = x.dtype.type(1), x.dtype.type(0)
        channels, modes = x.shape[1], A_r.shape[0]
        acc = np.empty(channels, dtype=x.dtype)
        for b in range(x.shape[0]):
            xt = x[b]
            acc[:] = zero
            for j in range(modes):  # as the forward kernel's _advance: modes outside, channels' sums independent
                for c in range(channels):
                    hr, hi_ = h[b, c, j, 0], h[b, c, j, 1]
                    r = A_r[j, c] * hr - A_i[j, c] * hi_ + B_r[j, c] * xt[c]
                    i = A_r[j, c] * hi_ + A_i[j, c] * hr + B_i[j, c] * xt[c]
                    h_out[b, c, j, 0] = r
                    h_out[b, c, j, 1] = i
                    acc[c] += C_r[j, c] * r - C_i[j, c] * i
            for c in range(channels):
                y = (acc[c] + acc[c]) + D[c] * xt[c]
                spikes[b, c], v_out[b, c] = step(v[b, c], y, beta[c], k[c], v_reset, one, zero)

    return one_step


def launch_step(x, h, params, v, opts):
    """One step without autograd (generation): ``x`` ``[B, C]``, ``h`` ``[B, C, N/2]`` complex, ``params`` from
    :func:`step_params`, ``v`` ``[B, C]``, in ``x``'s (real and complex) dtype → ``(spikes, h_next, v_next)``: the
    forward kernel's arithmetic for one step of each neuron."""
    import torch

    h = torch.view_as_real(h.contiguous())
    spikes, v_out, h_out = torch.empty_like(x), torch.empty_like(v), torch.empty_like(h)
    xn = x.contiguous().numpy()
    _step_kernel(opts.reset)(xn, h.numpy(), *params, v.contiguous().numpy(), xn.dtype.type(opts.v_reset),
                             spikes.numpy(), h_out.numpy(), v_out.numpy())
    return spikes, torch.view_as_complex(h_out), v_out


def step_params(dA, dB, C, D, beta, k):
    """:func:`launch_step`'s parameters: the complex ``[C, N/2]`` ones as real and imaginary parts ``[N/2, C]``
    (modes first, as the kernels gather them), ``D``, ``beta``, ``k`` ``[C]``; numpy arrays."""
    parts = [t.t().contiguous().numpy() for z in (dA, dB, C) for t in (z.real, z.imag)]
    return (*parts, *(t.contiguous().numpy() for t in (D, beta, k)))


def _parts(z):
    """Real and imaginary parts of a complex tensor as contiguous numpy arrays."""
    return z.real.contiguous().numpy(), z.imag.contiguous().numpy()


def launch_forward(x, dA, dB, Cc, D, beta, k, v0, h0, extra, opts, channels: int, M: int):
    """``(spikes [T, N], ck_v [ceil(T/CHUNK) + 1, N], ck_h [ceil(T/CHUNK) + 1, N/2, N] complex)``; the last rows
    hold v_T and h_T (modes first: the kernel's layout). ``extra`` ``[T, N]`` (or ``None``) is added to the soma's
    input at each step."""
    return _launch_forward(x, dA, dB, Cc, D, beta, k, v0, h0, extra, opts.reset, opts.v_reset, channels, M)


def _launch_forward(x, dA, dB, Cc, D, beta, k, v0, h0, extra, reset, v_reset, channels, M, soma=True):
    import torch

    T, N = x.shape
    modes = dA.shape[1]
    rows = (T + CHUNK - 1) // CHUNK + 1
    spikes = torch.empty_like(x)
    ck_v = torch.empty((rows, N), dtype=x.dtype)
    ck_hr, ck_hi = torch.empty((rows, modes, N), dtype=x.dtype), torch.empty((rows, modes, N), dtype=x.dtype)
    xn = x.numpy()
    h0t = h0.t()
    _forward_kernel(reset, soma)(xn, *_parts(dA), *_parts(dB), *_parts(Cc), D.numpy(), beta.numpy(), k.numpy(),
                                 v0.numpy(), *_parts(h0t), _extra(extra, x), xn.dtype.type(v_reset), channels, M,
                                 spikes.numpy(),
                                ck_v.numpy(), ck_hr.numpy(), ck_hi.numpy())
    return spikes, ck_v, torch.complex(ck_hr, ck_hi)


def launch_backward(x, dA, dB, Cc, D, beta, k, extra, ck_v, ck_h, g_s, g_vT, g_hT, opts, channels: int, M: int):
    """``(g_x, g_dA, g_dB, g_C, g_D, g_beta, g_k, g_v0, g_h0, g_extra)``: the complex parameter gradients per
    neuron, modes first ``[N/2, N]`` (the caller sums each channel's neurons), ``g_hT``/``g_h0`` ``[N/2, N]``;
    ``g_extra`` ``[T, N]`` (the soma-input gradients) when ``extra`` is given, else ``None``."""
    return _launch_backward(x, dA, dB, Cc, D, beta, k, extra, ck_v, ck_h, g_s, g_vT, g_hT, opts.reset,
                            bool(opts.detach_reset), bool(opts.local), opts.surrogate, opts.v_reset, opts.alpha,
                            channels, M)


def _launch_backward(x, dA, dB, Cc, D, beta, k, extra, ck_v, ck_h, g_s, g_vT, g_hT, reset, detach, local, sg_code,
                     v_reset, alpha, channels, M, soma=True):
    import torch

    N, modes = x.shape[1], dA.shape[1]
    g_x = torch.empty_like(x)
    per_mode = [torch.empty((modes, N), dtype=x.dtype) for _ in range(8)]  # A, B, C, h0 as (Re, Im)
    g_D, g_beta, g_k, g_v0 = (torch.empty(N, dtype=x.dtype) for _ in range(4))
    g_extra = torch.empty_like(x) if extra is not None else x.new_empty((0, N))
    dt = x.numpy().dtype.type
    _backward_kernel(reset, detach, local, sg_code, soma)(
        x.numpy(), *_parts(dA), *_parts(dB), *_parts(Cc), D.numpy(), beta.numpy(), k.numpy(), _extra(extra, x),
        dt(v_reset), dt(alpha), channels, M, ck_v.numpy(), *_parts(ck_h), g_s.numpy(), g_vT.numpy(), *_parts(g_hT),
        g_x.numpy(), *(t.numpy() for t in per_mode[:6]), g_D.numpy(), g_beta.numpy(), g_k.numpy(), g_v0.numpy(),
        per_mode[6].numpy(), per_mode[7].numpy(), g_extra.numpy())
    gA, gB, gC, gh0 = (torch.complex(per_mode[2 * i], per_mode[2 * i + 1]) for i in range(4))
    return g_x, gA, gB, gC, g_D, g_beta, g_k, g_v0, gh0, g_extra if extra is not None else None


def _extra(extra, x):
    """The kernels' ``extra`` argument: the array ``[T, N]``, or an empty ``[0, N]`` one for none."""
    return (extra if extra is not None else x.new_empty((0, x.shape[1]))).numpy()


def launch_dendrite_forward(x, dA, dB, Cc, D, h0, channels: int, M: int):
    """The dendrite alone, the same kernel without its soma: ``(y [T, N], ck_h [ceil(T/CHUNK) + 1, N/2, N])`` with
    ``y_t = 2 Re Σ C h_t + D x_t``; the last row of ``ck_h`` holds h_T."""
    N = x.shape[1]
    none = x.new_zeros(N)  # the soma's arguments, unread
    y, _, ck_h = _launch_forward(x, dA, dB, Cc, D, none, none, none, h0, None, 0, 0.0, channels, M, soma=False)
    return y, ck_h


def launch_dendrite_backward(x, dA, dB, Cc, D, ck_h, g_y, g_hT, channels: int, M: int):
    """``(g_x, g_dA, g_dB, g_C, g_D, g_h0)`` of :func:`launch_dendrite_forward` from ``g_y`` ``[T, N]`` and
    ``g_hT`` ``[N/2, N]``."""
    N = x.shape[1]
    none = x.new_zeros(N)
    ck_v = x.new_zeros((ck_h.shape[0], N))
    g = _launch_backward(x, dA, dB, Cc, D, none, none, None, ck_v, ck_h, g_y, none, g_hT, 0, False, False, 0, 0.0,
                         1.0, channels, M, soma=False)
    g_x, gA, gB, gC, g_D, _, _, _, gh0, _ = g
    return g_x, gA, gB, gC, g_D, gh0
