"""Triton kernels for the LIF scan: one program per ``BLOCK`` neurons, time sequential inside the program.

Layout: ``y`` ``[T, N]`` contiguous, so each step's loads and stores are coalesced across the block. The inner
``CHUNK``-step loop is unrolled so the input loads of a chunk (independent of the state) can be issued ahead of
the arithmetic. Floating-point contraction is disabled at launch: the forward then performs exactly the rounded
operations of the torch reference, so spikes and states are bit-identical. The backward recomputes each chunk from
its checkpoint into a ``[CHUNK, N]`` scratch (L2-resident) and walks it in reverse. See ``README.md``.
"""
from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

CHUNK = 16
BLOCK = 128
NUM_WARPS = 4


@triton.jit
def _surrogate(x, alpha, SG: tl.constexpr):
    if SG == 0:
        g = tl.maximum(alpha - alpha * alpha * tl.abs(x), 0.0)
    elif SG == 1:
        z = 1.5707963267948966 * alpha * x
        g = (alpha / 2) / (1 + z * z)
    else:
        sg = 1 / (1 + tl.exp(-alpha * x))
        g = alpha * sg * (1 - sg)
    return g


@triton.jit
def _pre(y_ptr, x_ptr, d, idx, m, dtype, SKIP: tl.constexpr):
    """The soma's input: ``y``, or with the fused D-skip ``y + d * x``, in the state's dtype."""
    y = tl.load(y_ptr + idx, mask=m, other=0.0).to(dtype)
    if SKIP:
        y = y + d * tl.load(x_ptr + idx, mask=m, other=0.0).to(dtype)
    return y


@triton.jit
def _lif_scan_fwd_kernel(y_ptr, x_ptr, d_ptr, v0_ptr, beta_ptr, k_ptr, s_ptr, ckpt_ptr, scalars_ptr, T, N,
                         RESET: tl.constexpr, SKIP: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    v_reset = tl.load(scalars_ptr)
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0)
    beta = tl.load(beta_ptr + offs, mask=mask, other=0.0)
    k = tl.load(k_ptr + offs, mask=mask, other=0.0)
    d = k  # unused without SKIP
    if SKIP:
        d = tl.load(d_ptr + offs, mask=mask, other=0.0)
    n_chunks = tl.cdiv(T, CHUNK)
    for c in range(0, n_chunks):
        tl.store(ckpt_ptr + c * N + offs, v, mask=mask)
        for i in tl.static_range(CHUNK):
            t = c * CHUNK + i
            m = mask & (t < T)
            y = _pre(y_ptr, x_ptr, d, t * N + offs, m, beta.dtype, SKIP)
            u = beta * v + y * k
            s = tl.where(u - 1.0 >= 0, 1.0, 0.0).to(u.dtype)
            tl.store(s_ptr + t * N + offs, s.to(s_ptr.dtype.element_ty), mask=m)
            if RESET == 0:
                u = u - s * (u - v_reset)
            elif RESET == 1:
                u = u - s
            v = tl.where(m, u, v)
    tl.store(ckpt_ptr + n_chunks * N + offs, v, mask=mask)


@triton.jit
def _lif_scan_bwd_kernel(y_ptr, x_ptr, d_ptr, beta_ptr, k_ptr, ckpt_ptr, gs_ptr, gvT_ptr, gy_ptr, gx_ptr, gd_ptr,
                         gv0_ptr, gbeta_ptr, gk_ptr, scratch_ptr, scalars_ptr, T, N,
                         RESET: tl.constexpr, DETACH: tl.constexpr, LOCAL: tl.constexpr, SG: tl.constexpr,
                         SKIP: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    # v_reset and alpha in the state's dtype (float32 for half inputs), read from memory: a float kernel argument
    # would be fp32 even for float64 inputs
    v_reset = tl.load(scalars_ptr)
    alpha = tl.load(scalars_ptr + 1)
    beta = tl.load(beta_ptr + offs, mask=mask, other=0.0)
    k = tl.load(k_ptr + offs, mask=mask, other=0.0)
    gv = tl.load(gvT_ptr + offs, mask=mask, other=0.0)
    gb = tl.zeros_like(gv)
    gk = tl.zeros_like(gv)
    d = k  # unused without SKIP
    if SKIP:
        d = tl.load(d_ptr + offs, mask=mask, other=0.0)
    gd = tl.zeros_like(gv)
    n_chunks = tl.cdiv(T, CHUNK)
    for cc in range(0, n_chunks):
        c = n_chunks - 1 - cc
        v = tl.load(ckpt_ptr + c * N + offs, mask=mask, other=0.0)
        for i in tl.static_range(CHUNK):  # recompute the chunk: membrane before each step -> scratch
            t = c * CHUNK + i
            m = mask & (t < T)
            tl.store(scratch_ptr + i * N + offs, v, mask=m)
            y = _pre(y_ptr, x_ptr, d, t * N + offs, m, beta.dtype, SKIP)
            u = beta * v + y * k
            s = tl.where(u - 1.0 >= 0, 1.0, 0.0).to(u.dtype)
            if RESET == 0:
                u = u - s * (u - v_reset)
            elif RESET == 1:
                u = u - s
            v = u
        tl.debug_barrier()
        for j in tl.static_range(CHUNK):  # and walk it backwards
            i = CHUNK - 1 - j
            t = c * CHUNK + i
            m = mask & (t < T)
            vp = tl.load(scratch_ptr + i * N + offs, mask=m, other=0.0)
            y = _pre(y_ptr, x_ptr, d, t * N + offs, m, beta.dtype, SKIP)
            u = beta * vp + y * k
            s = tl.where(u - 1.0 >= 0, 1.0, 0.0).to(u.dtype)
            g_spike = tl.load(gs_ptr + t * N + offs, mask=m, other=0.0).to(u.dtype)
            if RESET == 0:
                gu = gv * (1.0 - s)
                if not DETACH:
                    g_spike = g_spike - gv * (u - v_reset)
            elif RESET == 1:
                gu = gv
                if not DETACH:
                    g_spike = g_spike - gv
            else:
                gu = gv
            gu = gu + g_spike * _surrogate(u - 1.0, alpha, SG)
            gu = tl.where(m, gu, 0.0)
            g_pre = gu * k
            tl.store(gy_ptr + t * N + offs, g_pre.to(gy_ptr.dtype.element_ty), mask=m)
            if SKIP:
                xt = tl.load(x_ptr + t * N + offs, mask=m, other=0.0).to(beta.dtype)
                tl.store(gx_ptr + t * N + offs, (g_pre * d).to(gx_ptr.dtype.element_ty), mask=m)
                gd += g_pre * xt
            gk += gu * y
            gb += gu * vp
            if LOCAL:
                gv = tl.where(m, 0.0, gv)
            else:
                gv = tl.where(m, gu * beta, gv)
        tl.debug_barrier()
    tl.store(gv0_ptr + offs, gv, mask=mask)
    tl.store(gbeta_ptr + offs, gb, mask=mask)
    tl.store(gk_ptr + offs, gk, mask=mask)
    if SKIP:
        tl.store(gd_ptr + offs, gd, mask=mask)


def _grid(N):
    return (triton.cdiv(N, BLOCK),)


@functools.lru_cache(maxsize=256)
def _scalar_tensor(dtype, device, v_reset, alpha):
    return torch.tensor([v_reset, alpha], dtype=dtype, device=device)


def _scalars(like, v_reset, alpha=0.0):
    """``[v_reset, alpha]`` on the device, made once per value: a host-to-device copy in every call would cost a
    transfer and could not be recorded in a CUDA graph (a captured step replays the tensor made before capture)."""
    return _scalar_tensor(like.dtype, like.device, float(v_reset), float(alpha))


def launch_forward(y, v0, beta, k, opts, skip=None):
    v_reset, reset = opts.v_reset, opts.reset
    T, N = y.shape
    x, d = skip if skip is not None else (y, beta)  # placeholders the kernel does not read without SKIP
    spikes = torch.empty_like(y)
    ckpt = torch.empty((triton.cdiv(T, CHUNK) + 1, N), dtype=beta.dtype, device=y.device)
    with torch.cuda.device(y.device):  # Triton launches on the current device: make it the tensors'
        _lif_scan_fwd_kernel[_grid(N)](y, x, d, v0, beta, k, spikes, ckpt, _scalars(beta, v_reset), T, N,
                                       RESET=reset, SKIP=skip is not None, CHUNK=CHUNK, BLOCK=BLOCK,
                                       num_warps=NUM_WARPS, enable_fp_fusion=False)
    return spikes, ckpt


def launch_backward(y, beta, k, ckpt, g_s, g_vT, opts, skip=None):
    v_reset, reset, detach_reset, local, sg_code, alpha = (opts.v_reset, opts.reset, opts.detach_reset, opts.local,
                                                           opts.surrogate, opts.alpha)
    T, N = y.shape
    g_y, g_v0, g_beta, g_k = (torch.empty_like(t) for t in (y, beta, beta, k))
    if skip is not None:
        x, d = skip
        g_x, g_d = torch.empty_like(x), torch.empty_like(d)
    else:
        x, d, g_x, g_d = y, beta, g_y, g_beta  # placeholders the kernel does not touch without SKIP
    scratch = torch.empty((CHUNK, N), dtype=beta.dtype, device=y.device)
    with torch.cuda.device(y.device):
        _lif_scan_bwd_kernel[_grid(N)](y, x, d, beta, k, ckpt, g_s.to(y.dtype).contiguous(), g_vT.contiguous(), g_y,
                                       g_x, g_d, g_v0, g_beta, g_k, scratch, _scalars(beta, v_reset, alpha), T, N,
                                       RESET=reset, DETACH=detach_reset, LOCAL=local, SG=sg_code,
                                       SKIP=skip is not None, CHUNK=CHUNK, BLOCK=BLOCK, num_warps=NUM_WARPS,
                                       enable_fp_fusion=False)
    grads = (g_y, g_v0, g_beta, g_k)
    return grads if skip is None else (*grads, g_x, g_d)
