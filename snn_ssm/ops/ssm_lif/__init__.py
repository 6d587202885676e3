"""The SSM-dendrite LIF neuron as one fused recurrence: the S4D modes and the soma stepped together, forward and
backward, with the references :func:`ssm_lif_ref` (today's path: the FFT convolution, then the LIF scan) and
:func:`ssm_lif_recurrence` (the plain recurrence, step by step), all with one signature.

Per neuron (channel c) and complex mode n::

    h_t = Ā h_{t-1} + B̄ x_t        y_t = 2 Re Σ_n C_n h_{t,n} + D x_t (+ e_t)
    u'_t = β v_{t-1} + y_t / v_th    s_t = [u'_t ≥ 1]    v_t = reset(u'_t, s_t)

where ``e`` (``extra``, optional, the shape of ``x``) is an input added to the soma's: a bidirectional layer passes
its anti-causal side there, so that the soma fires on both sides with the causal one still fused.

:func:`ssm_lif` takes the discretised parameters (``S4DDendrite.discrete``: complex ``dA``, ``dB``, ``C`` ``[C, N/2]``,
``D`` ``[C]``), the soma's β and v_th, optional initial states (``h0`` ``[B, C, M, N/2]`` complex, ``v0`` ``[B, C, *]``)
and the soma options, and returns ``(spikes [T, B, C, *], h_T, v_T)`` with gradients for x, every parameter and the
initial states. Only the spikes and a checkpoint of (h, v) every chunk (128 steps in numba, 32 in CuPy) are
stored; the backward recomputes each chunk from its checkpoint (see this folder's README.md for the adjoint).
Backends: CuPy (CUDA; float32/float64 and half-precision inputs with a float32 state) and numba (CPU,
float32/float64), with the kernels' surrogates; everything else runs the reference.
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch

from ...functional import s4d
from ...functional.lif import SomaOptions, seq
from ..dispatch import available, choose, custom_op, requested_backend
from ..lif_scan import KernelOptions, _reference as _lif_reference

__all__ = ["ssm_lif", "ssm_lif_ref", "ssm_lif_recurrence", "s4d_scan", "s4d_scan_ref", "scan",
           "dendrite_scan", "fused_backend"]


def _impl(name: str):
    if name == "cupy":
        from . import cupy as impl
    else:
        from . import numba as impl
    return impl


_NO_SURROGATE = "its surrogate has no kernel (kernels implement triangle, atan and sigmoid)"
_GPU_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _support(device_type: str, dtype: torch.dtype, kopts: KernelOptions | None) -> dict:
    if device_type != "cpu":
        numba = f"device {device_type} (numba runs on cpu)"
    elif dtype not in (torch.float32, torch.float64):
        numba = f"dtype {dtype} (it takes torch.float32, torch.float64)"
    else:
        numba = None if kopts is not None else _NO_SURROGATE
    if device_type != "cuda":
        cupy = f"device {device_type} (cupy runs on cuda)"
    elif dtype not in _GPU_DTYPES:
        cupy = f"dtype {dtype} (it takes float32, float64, float16, bfloat16)"
    else:
        cupy = None if kopts is not None else _NO_SURROGATE
    return {"numba": numba, "cupy": cupy}


@torch.compiler.assume_constant_result  # numbers, strings and named tuples only (see lif_scan's _plan)
def _plan(device_type: str, dtype: torch.dtype, kopts: KernelOptions | None, backend: str | None) -> str:
    return choose("ssm_lif", device_type, _support(device_type, dtype, kopts), backend)


# CPU cost model of the two paths per channel and step, fitted to bench_block-style measurements on two cores
# (see README.md): FFT + lif_scan ≈ A·(B·M)·log2(2T) + K·(N/2) (the kernel is built once per call), fused ≈
# F·(B·M)·(N/2) (every neuron steps its modes). F halved on 2026-12-07 with the fused backward (its dendrite
# adjoint vectorised: fwd+bwd 0.49-0.51x, bench_ssm_lif side by side): at N = 64 the fused pass now wins at any
# batch; at N = 128 and a large batch the model picks the FFT path, where the two measured within 3 %.
_CPU_FFT_PER_NEURON, _CPU_KERNEL_PER_MODE, _CPU_FUSED_PER_MODE = 7.0e-6, 4.3e-5, 1.5e-6


#: Whether ``auto`` takes the CuPy kernel on CUDA (faster than the FFT path at every shape measured, half its
#: memory). On since its GPU tests against the references passed on its final form (an H200, 2026-12-06).
CUDA_AUTO = True


@torch.compiler.assume_constant_result
def _fused_kernel(device_type: str, dtype: torch.dtype, kopts: KernelOptions | None,
                  backend: str | None) -> str | None:
    """The fused kernel a call may use (requested or ``auto``, installed, supporting it), else ``None``."""
    requested = requested_backend(backend)
    kernel = {"cpu": "numba", "cuda": "cupy"}.get(device_type)
    if kernel is None or requested not in ("auto", kernel) or not available(kernel):
        return None
    if kernel == "cupy" and requested == "auto" and not CUDA_AUTO:
        return None
    return kernel if _support(device_type, dtype, kopts)[kernel] is None else None


@torch.compiler.assume_constant_result
def _requested_explicitly(backend: str | None) -> bool:
    return requested_backend(backend) != "auto"


def fused_backend(device_type: str, dtype: torch.dtype, opts: SomaOptions, backend: str | None, neurons: int,
                  modes: int, steps: int) -> str | None:
    """The backend a neuron or layer runs the fused kernel with, or ``None`` to keep its FFT + ``lif_scan`` path:
    an explicit ``"numba"`` or ``"cupy"`` (or ``use_backend(...)``) when that kernel supports the call; ``"auto"``
    on CUDA when CuPy is installed and :data:`CUDA_AUTO` is on, and on the CPU when numba is installed and the cost
    model says the fused pass is faster (``neurons`` = batch × positions per channel, ``modes`` = N/2,
    ``steps`` = T; a bidirectional layer counts both sides' modes). Never raises: a backend the fused op lacks
    (Triton) keeps the other path, where it runs the soma."""
    kernel = _fused_kernel(device_type, dtype, opts.kernel, backend)
    if kernel is None or _requested_explicitly(backend) or device_type == "cuda":
        return kernel
    fft = _CPU_FFT_PER_NEURON * neurons * math.log2(2 * steps) + _CPU_KERNEL_PER_MODE * modes
    return "numba" if _CPU_FUSED_PER_MODE * neurons * modes < fft else None


# -- the kernel as a custom op ----------------------------------------------------------------------------------

def _op_impl(x: torch.Tensor, dA: torch.Tensor, dB: torch.Tensor, Cc: torch.Tensor, D: torch.Tensor, beta: torch.Tensor,
        k: torch.Tensor, v0: torch.Tensor, h0: torch.Tensor, extra: Optional[torch.Tensor], channels: int, M: int,
        backend: str, v_reset: float, reset: int, detach_reset: bool, local: bool, surrogate: int,
        alpha: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    opts = KernelOptions(v_reset, reset, detach_reset, local, surrogate, alpha)
    return _impl(backend).launch_forward(*(t.contiguous() for t in (x, dA, dB, Cc, D, beta, k, v0, h0)),
                                         None if extra is None else extra.contiguous(), opts, channels, M)


def _backward_impl(x: torch.Tensor, dA: torch.Tensor, dB: torch.Tensor, Cc: torch.Tensor, D: torch.Tensor,
                 beta: torch.Tensor, k: torch.Tensor, extra: Optional[torch.Tensor], ck_v: torch.Tensor,
                 ck_h: torch.Tensor, g_s: torch.Tensor, g_vT: torch.Tensor, g_hT: torch.Tensor, channels: int, M: int,
                 backend: str, v_reset: float, reset: int, detach_reset: bool, local: bool, surrogate: int,
                 alpha: float) -> List[torch.Tensor]:
    """The gradients of x, the parameters and the initial states, then of ``extra`` (empty ``[0]`` without one:
    an op returns tensors only)."""
    opts = KernelOptions(v_reset, reset, detach_reset, local, surrogate, alpha)
    params = (t.contiguous() for t in (x, dA, dB, Cc, D, beta, k))
    grads = (t.contiguous() for t in (ck_v, ck_h, g_s, g_vT, g_hT))
    *out, g_extra = _impl(backend).launch_backward(*params, None if extra is None else extra.contiguous(), *grads,
                                                   opts, channels, M)
    return [*out, x.new_empty(0) if g_extra is None else g_extra]


_fused = custom_op("snn_ssm::ssm_lif", _op_impl, _backward_impl)
_op, _backward_op = _fused.op, _fused.backward_op


@_op.register_fake
def _(x, dA, dB, Cc, D, beta, k, v0, h0, extra, channels, M, backend, *opts):
    rows = (x.shape[0] + _impl(backend).CHUNK - 1) // _impl(backend).CHUNK + 1
    return x.new_empty(x.shape), beta.new_empty((rows, x.shape[1])), dA.new_empty((rows, dA.shape[1], x.shape[1]))


@_backward_op.register_fake
def _(x, dA, dB, Cc, D, beta, k, extra, ck_v, ck_h, g_s, g_vT, g_hT, *rest):
    N, modes = x.shape[1], dA.shape[1]
    per_mode = [dA.new_empty((modes, N)) for _ in range(3)]
    return [x.new_empty(x.shape), *per_mode, *(beta.new_empty(N) for _ in range(4)), dA.new_empty((modes, N)),
            x.new_empty(0 if extra is None else x.shape)]


def _setup(ctx, inputs, output):
    x, dA, dB, Cc, D, beta, k, v0, h0, extra, channels, M, backend, *opts = inputs
    _, ck_v, ck_h = output
    ctx.save_for_backward(x, dA, dB, Cc, D, beta, k, extra, ck_v, ck_h)
    ctx.channels, ctx.M, ctx.backend, ctx.opts = channels, M, backend, opts


def _per_channel(g: torch.Tensor, channels: int, M: int) -> torch.Tensor:
    """Per-neuron gradients ``[N/2, N]`` (neuron n of channel (n // M) % C) summed into ``[C, N/2]``."""
    return g.reshape(g.shape[0], -1, channels, M).sum((1, 3)).t()


def _backward(ctx, g_s, g_ckv, g_ckh):
    x, dA, dB, Cc, D, beta, k, extra, ck_v, ck_h = ctx.saved_tensors
    g_x, g_dA, g_dB, g_C, g_D, g_beta, g_k, g_v0, g_h0, g_extra = _fused.backward(
        x, dA, dB, Cc, D, beta, k, extra, ck_v, ck_h, g_s, g_ckv[-1], g_ckh[-1], ctx.channels, ctx.M, ctx.backend,
        *ctx.opts)
    C, M = ctx.channels, ctx.M
    return (g_x, _per_channel(g_dA, C, M), _per_channel(g_dB, C, M), _per_channel(g_C, C, M), g_D, g_beta, g_k,
            g_v0, g_h0.t(), None if extra is None else g_extra, None, None, None, None, None, None, None, None, None)


_fused.register_autograd(_backward, setup_context=_setup)


# -- the dendrite alone: the same kernels without the soma (a bidirectional layer's anti-causal side) ---------------

def _dendrite_impl(x: torch.Tensor, dA: torch.Tensor, dB: torch.Tensor, Cc: torch.Tensor, D: torch.Tensor,
                   h0: torch.Tensor, channels: int, M: int, backend: str) -> Tuple[torch.Tensor, torch.Tensor]:
    return _impl(backend).launch_dendrite_forward(*(t.contiguous() for t in (x, dA, dB, Cc, D, h0)), channels, M)


def _dendrite_backward_impl(x: torch.Tensor, dA: torch.Tensor, dB: torch.Tensor, Cc: torch.Tensor, D: torch.Tensor,
                            ck_h: torch.Tensor, g_y: torch.Tensor, g_hT: torch.Tensor, channels: int, M: int,
                            backend: str) -> List[torch.Tensor]:
    args = (t.contiguous() for t in (x, dA, dB, Cc, D, ck_h, g_y, g_hT))
    return list(_impl(backend).launch_dendrite_backward(*args, channels, M))


_dendrite = custom_op("snn_ssm::s4d_scan", _dendrite_impl, _dendrite_backward_impl)


@_dendrite.op.register_fake
def _(x, dA, dB, Cc, D, h0, channels, M, backend):
    rows = (x.shape[0] + _impl(backend).CHUNK - 1) // _impl(backend).CHUNK + 1
    return x.new_empty(x.shape), dA.new_empty((rows, dA.shape[1], x.shape[1]))


@_dendrite.backward_op.register_fake
def _(x, dA, dB, Cc, D, ck_h, g_y, g_hT, channels, M, backend):
    N, modes = x.shape[1], dA.shape[1]
    return [x.new_empty(x.shape), *(dA.new_empty((modes, N)) for _ in range(3)), D.new_empty(N),
            dA.new_empty((modes, N))]


def _dendrite_setup(ctx, inputs, output):
    x, dA, dB, Cc, D, h0, channels, M, backend = inputs
    ctx.save_for_backward(x, dA, dB, Cc, D, output[1])
    ctx.channels, ctx.M, ctx.backend = channels, M, backend


def _dendrite_backward(ctx, g_y, g_ckh):
    x, dA, dB, Cc, D, ck_h = ctx.saved_tensors
    C, M = ctx.channels, ctx.M
    g_x, g_dA, g_dB, g_C, g_D, g_h0 = _dendrite.backward(x, dA, dB, Cc, D, ck_h, g_y, g_ckh[-1], C, M, ctx.backend)
    return (g_x, _per_channel(g_dA, C, M), _per_channel(g_dB, C, M), _per_channel(g_C, C, M), g_D, g_h0.t(), None,
            None, None)


_dendrite.register_autograd(_dendrite_backward, setup_context=_dendrite_setup)

#: The options :func:`_plan` checks a kernel against: the dendrite alone has no surrogate to support.
_NO_SOMA = KernelOptions(0.0, 0, False, False, 0, 1.0)


# -- entry points -----------------------------------------------------------------------------------------------

def _per_neuron(p, dtype, like: torch.Tensor, step_shape) -> torch.Tensor:
    if isinstance(p, torch.Tensor):
        return p.to(dtype).expand(step_shape).reshape(-1)
    return torch.full((step_shape.numel(),), p, dtype=dtype, device=like.device)


def _channel_view(p: torch.Tensor, ndim: int) -> torch.Tensor:
    """A per-channel ``[C]`` tensor (or scalar) broadcastable to one step ``[B, C, *]`` of rank ``ndim``."""
    return p if p.ndim == 0 else p.reshape(p.shape + (1,) * (ndim - 2))


def _kernel_dtypes(x: torch.Tensor, dA, h0):
    """The kernels' real and complex dtypes (float32, float64 for float64 input, whatever the input's precision),
    and ``h0`` per neuron ``[B·C·M, N/2]`` (zeros for rest)."""
    T, B, channels = x.shape[:3]
    M = math.prod(x.shape[3:])
    real = torch.float64 if x.dtype == torch.float64 else torch.float32
    complex_dtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
    h0_n = (torch.zeros((B * channels * M, dA.shape[1]), dtype=complex_dtype, device=x.device) if h0 is None
            else h0.to(complex_dtype).reshape(B * channels * M, dA.shape[1]))
    return real, complex_dtype, h0_n


def _launch(x, dA, dB, Cc, D, beta, v_th, h0, v0, extra, name: str, kopts: KernelOptions):
    T, B, channels = x.shape[:3]
    M = math.prod(x.shape[3:])
    step_shape = x.shape[1:]
    modes = dA.shape[1]
    real, complex_dtype, h0_n = _kernel_dtypes(x, dA, h0)
    beta_n = _per_neuron(_channel_view(beta, len(step_shape)) if isinstance(beta, torch.Tensor) else beta, real, x,
                         step_shape)
    inv = 1.0 / v_th.to(real) if isinstance(v_th, torch.Tensor) else 1.0 / v_th
    k_n = _per_neuron(_channel_view(inv, len(step_shape)) if isinstance(inv, torch.Tensor) else inv, real, x,
                      step_shape)
    D_n = _per_neuron(_channel_view(D, len(step_shape)), real, x, step_shape)
    v0_n = (torch.zeros(step_shape, dtype=real, device=x.device) if v0 is None
            else v0.to(real).expand(step_shape)).reshape(-1)
    extra_n = None if extra is None else extra.to(x.dtype).reshape(T, -1)
    s, ck_v, ck_h = _fused(x.reshape(T, -1), dA.to(complex_dtype), dB.to(complex_dtype), Cc.to(complex_dtype), D_n,
                        beta_n, k_n, v0_n, h0_n, extra_n, channels, M, name, *kopts)
    return s.reshape(x.shape), ck_h[-1].t().reshape(B, channels, M, modes), ck_v[-1].reshape(step_shape)


def _launch_dendrite(x, dA, dB, Cc, D, h0, name: str):
    T, B, channels = x.shape[:3]
    M = math.prod(x.shape[3:])
    modes = dA.shape[1]
    real, complex_dtype, h0_n = _kernel_dtypes(x, dA, h0)
    D_n = _per_neuron(_channel_view(D, len(x.shape[1:])), real, x, x.shape[1:])
    y, ck_h = _dendrite(x.reshape(T, -1), dA.to(complex_dtype), dB.to(complex_dtype), Cc.to(complex_dtype), D_n, h0_n,
                        channels, M, name)
    return y.reshape(x.shape), ck_h[-1].t().reshape(B, channels, M, modes)


def _states_of(x, h0, v0):
    T, B, channels = x.shape[:3]
    M = math.prod(x.shape[3:])
    return x.reshape(T, B, channels, M), M


def _fft_path(x, dA, dB, C, D, beta, v_th, h0, v0, opts: SomaOptions, extra=None):
    """Today's path: the S4D as an FFT convolution (plus the free response of ``h0``) with the D-skip fused into
    the LIF scan (the reference of :func:`~snn_ssm.ops.lif_scan.lif_scan`); ``h_T`` from the closed form."""
    y, h = _s4d_fft(x, dA, dB, C, None, h0)  # D·x is fused into the LIF scan
    if extra is not None:
        y = y + extra
    d = _channel_view(D, x.ndim - 1)
    b = _channel_view(beta, x.ndim - 1) if isinstance(beta, torch.Tensor) else beta
    vt = _channel_view(v_th, x.ndim - 1) if isinstance(v_th, torch.Tensor) else v_th
    s, v = _lif_reference(y, v0, b, vt, opts, skip_input=x, skip_weight=d)
    return s, h, v


def _recurrence(x, dA, dB, C, D, beta, v_th, h0, v0, opts: SomaOptions, extra=None):
    """The plain recurrence, one step at a time (run it in float64 for the exact reference)."""
    x4, _ = _states_of(x, h0, v0)
    y, h = s4d.scan(x4, h0, dA, dB, C, D)
    if extra is not None:
        y = y + extra.reshape(y.shape)
    b = _channel_view(beta, x.ndim - 1) if isinstance(beta, torch.Tensor) else beta
    vt = _channel_view(v_th, x.ndim - 1) if isinstance(v_th, torch.Tensor) else v_th
    s, v = seq(y.reshape(x.shape), v0, b, vt, opts)
    return s, h, v


def scan(x, dA, dB, C, D, beta, v_th, h0, v0, opts: SomaOptions, backend: str | None = None, extra=None):
    """:func:`ssm_lif` for a caller that has checked its arguments (the neurons and layers)."""
    kopts = opts.kernel
    name = _plan(x.device.type, x.dtype, kopts, backend)
    if name == "torch":
        return _fft_path(x, dA, dB, C, D, beta, v_th, h0, v0, opts, extra)
    return _launch(x, dA, dB, C, D, beta, v_th, h0, v0, extra, name, kopts)


def dendrite_scan(x, dA, dB, C, D, h0=None, backend: str | None = None):
    """:func:`s4d_scan` for a caller that has checked its arguments (the layers)."""
    name = _plan(x.device.type, x.dtype, _NO_SOMA, backend)
    if name == "torch":
        return _s4d_fft(x, dA, dB, C, D, h0)
    return _launch_dendrite(x, dA, dB, C, D, h0, name)


def _s4d_fft(x, dA, dB, C, D, h0):
    """The S4D by FFT convolution, with ``D·x`` unless ``D`` is None and the free response of ``h0``, and ``h_T``
    in closed form."""
    x4, _ = _states_of(x, h0, None)
    log_dA = torch.log(dA)
    y = s4d.fft_conv(x4, s4d.vandermonde_kernel(log_dA, dB, C, x.shape[0]))
    if D is not None:
        y = y + D[:, None] * x4
    if h0 is not None:
        y = y + s4d.state_response(h0, log_dA, C, x.shape[0])
    return y.reshape(x.shape).to(x.dtype), s4d.final_state(x4, h0, log_dA, dB)


def s4d_scan(x: torch.Tensor, dA: torch.Tensor, dB: torch.Tensor, C: torch.Tensor, D: torch.Tensor, *,
             h0: torch.Tensor | None = None, backend: str | None = None):
    """The S4D dendrite alone as a recurrence, ``y_t = 2 Re Σ C h_t + D x_t``: ``(y [T, B, C, *], h_T)``, with
    gradients for ``x``, the parameters and ``h0``; arguments as :func:`ssm_lif`'s. The fused kernels without their
    soma: a bidirectional layer runs its anti-causal side through it (on the reversed sequence) and hands the
    result to :func:`ssm_lif` as ``extra``. ``backend="torch"`` is :func:`s4d_scan_ref`.

    Examples::

        >>> p = snn_ssm.S4DDendrite(4, d_state=8).discrete(4)
        >>> y, h = s4d_scan(torch.randn(100, 2, 4), p.dA, p.dB, p.C[0], p.D)
        >>> y.shape, h.shape
        (torch.Size([100, 2, 4]), torch.Size([2, 4, 1, 4]))
    """
    _check(x, dA, dB, C, D, h0, None, 0.5, 1.0)
    return dendrite_scan(x, dA, dB, C, D, h0, backend)


def s4d_scan_ref(x: torch.Tensor, dA: torch.Tensor, dB: torch.Tensor, C: torch.Tensor, D: torch.Tensor, *,
                 h0: torch.Tensor | None = None):
    """The reference of :func:`s4d_scan` (same arguments): the FFT convolution with the state's free response, and
    ``h_T`` in closed form (``ssm_lif_ref``'s dendrite).

    Examples::

        >>> p = snn_ssm.S4DDendrite(4, d_state=8, dtype=torch.float64).discrete(4)
        >>> x = torch.randn(50, 2, 4, dtype=torch.float64)
        >>> a, b = s4d_scan_ref(x, p.dA, p.dB, p.C[0], p.D), s4d_scan(x, p.dA, p.dB, p.C[0], p.D, backend="numba")
        >>> all(torch.allclose(u, w, atol=1e-10) for u, w in zip(a, b))
        True
    """
    _check(x, dA, dB, C, D, h0, None, 0.5, 1.0)
    return _s4d_fft(x, dA, dB, C, D, h0)


def ssm_lif(x: torch.Tensor, dA: torch.Tensor, dB: torch.Tensor, C: torch.Tensor, D: torch.Tensor, beta, v_th=1.0, *,
            h0: torch.Tensor | None = None, v0: torch.Tensor | None = None,
            extra: torch.Tensor | None = None, v_reset: float = SomaOptions.v_reset,
            reset: str = SomaOptions.reset, detach_reset: bool = SomaOptions.detach_reset,
            grad_mode: str = SomaOptions.grad_mode, surrogate=SomaOptions.surrogate,
            alpha: float | None = SomaOptions.alpha, backend: str | None = None):
    """The SSM-dendrite LIF over a sequence ``x`` ``[T, B, C, *]``: ``(spikes, h_T, v_T)``.

    Args:
        x: input ``[T, B, C, *]`` (float32/float64 for the kernel).
        dA, dB, C: complex ``[C, N/2]`` (``S4DDendrite.discrete``); D: ``[C]``.
        beta, v_th: the soma's leak and threshold, numbers or per-channel ``[C]`` tensors.
        h0: complex ``[B, C, M, N/2]`` (``M`` = the positions ``*`` flattened); v0: ``[B, C, *]``. Default: rest.
        extra: an input ``[T, B, C, *]`` added to the soma's at each step (``e_t`` above; a bidirectional layer's
            anti-causal side), with its gradient. Default: none.
        v_reset, reset, detach_reset, grad_mode, surrogate, alpha: the soma options
            (:class:`~snn_ssm.functional.lif.SomaOptions`).
        backend: ``"auto"``, ``"torch"`` (the reference), ``"numba"`` or ``"cupy"``; ``None`` follows
            :func:`snn_ssm.ops.use_backend`.

    Examples::

        >>> dend = snn_ssm.S4DDendrite(8, d_state=16)
        >>> p = dend.discrete(8)
        >>> s, h, v = ssm_lif(torch.randn(500, 4, 8), p.dA, p.dB, p.C[0], p.D, beta=0.5)
        >>> s.shape, h.shape, v.shape
        (torch.Size([500, 4, 8]), torch.Size([4, 8, 1, 8]), torch.Size([4, 8]))
    """
    opts = SomaOptions(reset, v_reset, detach_reset, grad_mode, surrogate, alpha)
    _check(x, dA, dB, C, D, h0, v0, beta, v_th, extra)
    return scan(x, dA, dB, C, D, beta, v_th, h0, v0, opts, backend, extra)


def ssm_lif_ref(x: torch.Tensor, dA: torch.Tensor, dB: torch.Tensor, C: torch.Tensor, D: torch.Tensor, beta,
                v_th=1.0, *, h0: torch.Tensor | None = None, v0: torch.Tensor | None = None,
            extra: torch.Tensor | None = None,
                v_reset: float = SomaOptions.v_reset, reset: str = SomaOptions.reset,
                detach_reset: bool = SomaOptions.detach_reset, grad_mode: str = SomaOptions.grad_mode,
                surrogate=SomaOptions.surrogate, alpha: float | None = SomaOptions.alpha):
    """The reference of :func:`ssm_lif` (same arguments): today's path, the S4D as an FFT convolution and the
    soma as the LIF scan's reference, with autograd through both.

    Examples::

        >>> p = snn_ssm.S4DDendrite(4, d_state=8).discrete(4)
        >>> s, h, v = ssm_lif_ref(torch.randn(100, 2, 4), p.dA, p.dB, p.C[0], p.D, beta=0.5)
        >>> s.shape, h.shape
        (torch.Size([100, 2, 4]), torch.Size([2, 4, 1, 4]))
    """
    opts = SomaOptions(reset, v_reset, detach_reset, grad_mode, surrogate, alpha)
    _check(x, dA, dB, C, D, h0, v0, beta, v_th, extra)
    return _fft_path(x, dA, dB, C, D, beta, v_th, h0, v0, opts, extra)


def ssm_lif_recurrence(x: torch.Tensor, dA: torch.Tensor, dB: torch.Tensor, C: torch.Tensor, D: torch.Tensor, beta,
                       v_th=1.0, *, h0: torch.Tensor | None = None, v0: torch.Tensor | None = None,
            extra: torch.Tensor | None = None,
                       v_reset: float = SomaOptions.v_reset, reset: str = SomaOptions.reset,
                       detach_reset: bool = SomaOptions.detach_reset, grad_mode: str = SomaOptions.grad_mode,
                       surrogate=SomaOptions.surrogate, alpha: float | None = SomaOptions.alpha):
    """The step-by-step reference of :func:`ssm_lif` (same arguments): the S4D recurrence and the LIF, one step at
    a time with autograd (in float64, the exact reference the kernels are held to).

    Examples::

        >>> p = snn_ssm.S4DDendrite(4, d_state=8, dtype=torch.float64).discrete(4)
        >>> x = torch.randn(50, 2, 4, dtype=torch.float64)
        >>> a, b = ssm_lif_recurrence(x, p.dA, p.dB, p.C[0], p.D, 0.5), ssm_lif(x, p.dA, p.dB, p.C[0], p.D, 0.5)
        >>> torch.equal(a[0], b[0]) and all(torch.allclose(u, w, atol=1e-12) for u, w in zip(a[1:], b[1:]))
        True
    """
    opts = SomaOptions(reset, v_reset, detach_reset, grad_mode, surrogate, alpha)
    _check(x, dA, dB, C, D, h0, v0, beta, v_th, extra)
    return _recurrence(x, dA, dB, C, D, beta, v_th, h0, v0, opts, extra)


def _check(x, dA, dB, C, D, h0, v0, beta, v_th, extra=None) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 3 or x.shape[0] == 0:
        raise ValueError(f"x must be a floating-point tensor [T, B, C, *] with T >= 1, got "
                         f"{getattr(x, 'dtype', type(x).__name__)} of shape {tuple(getattr(x, 'shape', ()))}")
    channels = x.shape[2]
    for name, p in (("dA", dA), ("dB", dB), ("C", C)):
        if not isinstance(p, torch.Tensor) or not p.is_complex() or p.ndim != 2 or p.shape[0] != channels:
            raise ValueError(f"{name} must be a complex tensor [C={channels}, N/2], got "
                             f"{getattr(p, 'dtype', type(p).__name__)} of shape {tuple(getattr(p, 'shape', ()))}")
    if dB.shape != dA.shape or C.shape != dA.shape:
        raise ValueError(f"dA, dB and C must have one shape [C, N/2], got {tuple(dA.shape)}, {tuple(dB.shape)}, "
                         f"{tuple(C.shape)}")
    if not isinstance(D, torch.Tensor) or D.shape != (channels,):
        raise ValueError(f"D must be a tensor [C={channels}], got shape {tuple(getattr(D, 'shape', ()))}")
    M = math.prod(x.shape[3:])
    if h0 is not None and (not h0.is_complex() or tuple(h0.shape) != (x.shape[1], channels, M, dA.shape[1])):
        raise ValueError(f"h0 must be complex [B, C, M, N/2] = {(x.shape[1], channels, M, dA.shape[1])}, got "
                         f"{h0.dtype} of shape {tuple(h0.shape)}")
    if v0 is not None and v0.shape != x.shape[1:]:
        raise ValueError(f"v0 must have the shape of one step of x, {tuple(x.shape[1:])}, got {tuple(v0.shape)}")
    if extra is not None and (not isinstance(extra, torch.Tensor) or not extra.is_floating_point()
                              or extra.shape != x.shape):
        raise ValueError(f"extra must be a floating-point tensor of x's shape {tuple(x.shape)}, got "
                         f"{getattr(extra, 'dtype', type(extra).__name__)} of shape "
                         f"{tuple(getattr(extra, 'shape', ()))}")
    for name, t in (("dA", dA), ("dB", dB), ("C", C), ("D", D), ("h0", h0), ("v0", v0), ("extra", extra)):
        if t is not None and t.device != x.device:
            raise ValueError(f"{name} is on {t.device} but x is on {x.device}")
    values = []  # (0-d bool tensor that must be True, the error if it is not): read with one synchronisation
    for name, p, ok, must in (("beta", beta, lambda t: (t >= 0) & (t <= 1), "in [0, 1]"),
                              ("v_th", v_th, lambda t: (t > 0) & torch.isfinite(t), "finite and > 0")):
        if isinstance(p, bool) or not isinstance(p, (int, float, torch.Tensor)):
            raise TypeError(f"{name} must be a number or a per-channel tensor [C], got {type(p).__name__}")
        if not isinstance(p, torch.Tensor):
            if not bool(ok(torch.tensor(float(p), dtype=torch.float64))):
                raise ValueError(f"{name} must be {must}, got {p!r}")
            continue
        if p.ndim > 1 or (p.ndim == 1 and p.numel() not in (1, channels)):
            raise ValueError(f"{name} must be a number or a tensor [C={channels}], got shape {tuple(p.shape)}")
        if p.device != x.device:
            raise ValueError(f"{name} is on {p.device} but x is on {x.device}")
        values.append((ok(p.detach()).all(), f"{name} must be {must}"))
    for name, t in (("x", x), ("extra", extra)):
        if t is not None:
            values.append((torch.isfinite(t).all(), f"{name} contains NaN or Inf; spiking neurons reject non-finite "
                                                    f"input"))
    if torch.compiler.is_compiling() or bool(torch.stack([ok for ok, _ in values]).all()):
        return  # a compiled caller trusts its inputs: a check would break the graph and wait for the device
    raise ValueError(next(error for ok, error in values if not bool(ok)))
