"""The multi-step LIF soma as a fused scan, with the pure-torch reference :func:`lif_scan_ref`.

:func:`lif_scan` has the signature of :func:`snn_ssm.functional.lif_seq` (plus ``backend``) and returns what it
returns: spikes ``[T, B, *]`` and the final membrane ``[B, *]``, with gradients for the input, the initial
membrane, β and v_th. Kernels run named surrogates; numba takes float32/float64, CuPy and Triton also
float16/bfloat16 inputs, whose membrane is kept in float32 (by every backend, the reference included: spikes come
back in the input's dtype, the final membrane in float32). Anything else uses the reference.

Storage for the backward: the membrane at the start of every 16-step chunk (0.25 bytes per neuron-step in fp32,
1.25 with the uint8 spikes the kernel may keep) — the backward recomputes each chunk from its checkpoint with the
same floating-point operations as the forward, so the recomputed membranes and spikes are bit-identical and the
gradients equal those of autograd through the reference loop (up to summation order).
"""
from __future__ import annotations

import torch

from ...functional.lif import check_soma_options, lif_seq
from ...functional.surrogate import DEFAULT_ALPHA, SURROGATES, _Named
from ..dispatch import choose

__all__ = ["lif_scan", "lif_scan_ref"]

_RESET_CODE = {"hard": 0, "soft": 1, "none": 2}
_SURROGATE_CODE = {"triangle": 0, "atan": 1, "sigmoid": 2}
_HALF = (torch.float16, torch.bfloat16)


def _named_surrogate(surrogate, alpha):
    """``(code, alpha)`` for a surrogate the kernels implement, else ``None``."""
    if isinstance(surrogate, str) and surrogate in _SURROGATE_CODE:
        return _SURROGATE_CODE[surrogate], float(DEFAULT_ALPHA[surrogate] if alpha is None else alpha)
    if isinstance(surrogate, _Named):
        name = {cls: n for n, cls in SURROGATES.items()}[surrogate.fn]
        return (_SURROGATE_CODE[name], surrogate.alpha) if name in _SURROGATE_CODE else None
    return None


class _LIFScan(torch.autograd.Function):
    """Autograd glue shared by the kernel backends; ``impl`` is the backend module with two launchers:
    ``launch_forward(y, v0, beta, k, opts, skip) -> (spikes, ckpt)`` and
    ``launch_backward(y, beta, k, ckpt, g_s, g_vT, opts, skip) -> (g_y, g_v0, g_beta, g_k[, g_x, g_d])``,
    where ``skip`` is ``None`` or the fused D-skip ``(x, d)``."""

    @staticmethod
    def forward(ctx, y, v0, beta, k, x, d, impl, opts):
        y, beta, k = y.detach().contiguous(), beta.detach().contiguous(), k.detach().contiguous()
        skip = None if x is None else (x.detach().contiguous(), d.detach().contiguous())
        spikes, ckpt = impl.launch_forward(y, v0.detach().contiguous(), beta, k, opts, skip)
        ctx.save_for_backward(y, beta, k, ckpt, *(skip or ()))
        ctx.impl, ctx.opts = impl, opts
        return spikes, ckpt[-1].clone()

    @staticmethod
    def backward(ctx, g_s, g_vT):
        y, beta, k, ckpt, *skip = ctx.saved_tensors
        g_s = torch.zeros_like(y) if g_s is None else g_s
        g_vT = torch.zeros_like(y[0]) if g_vT is None else g_vT
        grads = ctx.impl.launch_backward(y, beta, k, ckpt, g_s, g_vT, ctx.opts, tuple(skip) or None)
        return (*grads[:4], *(grads[4:] or (None, None)), None, None)


def _impl(name: str):
    if name == "numba":
        from . import numba as impl
    elif name == "cupy":
        from . import cupy as impl
    else:
        from . import triton as impl
    return impl





def _kernel_support(y, surrogate, alpha) -> dict:
    support = {}
    for backend, device, dtypes in (("numba", "cpu", (torch.float32, torch.float64)),
                                    ("cupy", "cuda", (torch.float32, torch.float64, *_HALF)),
                                    ("triton", "cuda", (torch.float32, torch.float64, *_HALF))):
        if y.device.type != device:
            support[backend] = f"device {y.device.type} ({backend} runs on {device})"
        elif y.dtype not in dtypes:
            support[backend] = f"dtype {y.dtype} (it takes {', '.join(str(d) for d in dtypes)})"
        elif _named_surrogate(surrogate, alpha) is None:
            support[backend] = "a custom surrogate callable (kernels implement triangle/atan/sigmoid)"
        else:
            support[backend] = None
    return support


def _per_neuron(p, dtype: torch.dtype, y: torch.Tensor, step_shape) -> torch.Tensor:
    """``p`` (a number, or a tensor broadcastable to one step) as a flat per-neuron tensor.

    Numbers are filled on the device: ``torch.as_tensor(number, device="cuda")`` would copy from pageable host
    memory, which waits for all queued GPU work and so serialises consecutive calls.
    """
    if isinstance(p, torch.Tensor):
        return p.to(dtype).expand(step_shape).reshape(-1)
    return torch.full((step_shape.numel(),), p, dtype=dtype, device=y.device)


def _check_skip(y: torch.Tensor, skip_input, skip_weight) -> None:
    if (skip_input is None) != (skip_weight is None):
        raise ValueError("skip_input and skip_weight go together: give both (the fused D-skip) or neither")
    if skip_input is None:
        return
    if not isinstance(skip_input, torch.Tensor) or skip_input.shape != y.shape or skip_input.dtype != y.dtype \
            or skip_input.device != y.device:
        raise ValueError(f"skip_input must be a tensor like y ({tuple(y.shape)}, {y.dtype}, {y.device}), got "
                         f"{getattr(skip_input, 'dtype', type(skip_input).__name__)} of shape "
                         f"{tuple(getattr(skip_input, 'shape', ()))}")
    if isinstance(skip_weight, torch.Tensor):
        try:
            torch.broadcast_shapes(skip_weight.shape, y.shape[1:])
        except RuntimeError:
            raise ValueError(f"skip_weight of shape {tuple(skip_weight.shape)} does not broadcast to one step "
                             f"{tuple(y.shape[1:])}") from None
    elif isinstance(skip_weight, bool) or not isinstance(skip_weight, (int, float)):
        raise TypeError(f"skip_weight must be a number or a tensor, got {type(skip_weight).__name__}")


def lif_scan_ref(y: torch.Tensor, v0: torch.Tensor | None, beta, v_th=1.0, *, skip_input: torch.Tensor | None = None,
                 skip_weight=None, v_reset: float = 0.0, reset: str = "hard", detach_reset: bool = False,
                 grad_mode: str = "bptt", surrogate="triangle", alpha: float | None = None):
    """The pure-torch reference of :func:`lif_scan`: :func:`~snn_ssm.functional.lif_seq` on
    ``y + skip_weight * skip_input`` (autograd through an exact loop).

    Examples::

        >>> s, v = lif_scan_ref(torch.randn(100, 4, 8), None, beta=0.5)
        >>> s.shape, v.shape
        (torch.Size([100, 4, 8]), torch.Size([4, 8]))
    """
    _check_skip(y, skip_input, skip_weight)
    if skip_input is not None:
        d = skip_weight.to(y.dtype) if isinstance(skip_weight, torch.Tensor) else skip_weight
        y = y + d * skip_input
    return lif_seq(y, v0, beta, v_th, v_reset=v_reset, reset=reset, detach_reset=detach_reset, grad_mode=grad_mode,
                   surrogate=surrogate, alpha=alpha)


def lif_scan(y: torch.Tensor, v0: torch.Tensor | None, beta, v_th=1.0, *, skip_input: torch.Tensor | None = None,
             skip_weight=None, v_reset: float = 0.0, reset: str = "hard", detach_reset: bool = False,
             grad_mode: str = "bptt", surrogate="triangle", alpha: float | None = None, backend: str | None = None):
    """:func:`snn_ssm.functional.lif_seq` computed by the fastest available backend.

    Args:
        y, v0, beta, v_th, v_reset, reset, detach_reset, grad_mode, surrogate, alpha: as in
            :func:`~snn_ssm.functional.lif_seq` (``y`` ``[T, B, *]``; ``beta``/``v_th`` broadcastable to ``y[0]``).
        skip_input, skip_weight: the fused D-skip: the soma then runs on ``y + skip_weight * skip_input``, computed
            inside the kernel (SpikingSSM's ``K * x + D·x``: the layer reads the convolution output once and never
            writes the sum). ``skip_input`` has ``y``'s shape, ``skip_weight`` broadcasts to ``y[0]``; both get
            gradients. Default: no skip.
        backend (str, optional): ``"auto"``, ``"torch"``, ``"numba"``, ``"cupy"`` or ``"triton"``; ``None`` follows
            :func:`snn_ssm.ops.use_backend` / ``SNN_SSM_BACKEND`` / ``auto``.

    Returns:
        ``(spikes [T, B, *], v_T [B, *])``.

    Examples::

        >>> s, v = lif_scan(torch.randn(1000, 64, 256), None, beta=0.5, backend="numba")
    """
    if not isinstance(y, torch.Tensor) or not y.is_floating_point() or y.ndim < 1:
        raise TypeError(f"y must be a floating-point tensor [T, B, *], got "
                        f"{getattr(y, 'dtype', type(y).__name__)} of shape {tuple(getattr(y, 'shape', ()))}")
    check_soma_options(reset, grad_mode)
    _check_skip(y, skip_input, skip_weight)
    options = dict(v_reset=v_reset, reset=reset, detach_reset=detach_reset, grad_mode=grad_mode, surrogate=surrogate,
                   alpha=alpha)
    name = choose("lif_scan", y.device.type, _kernel_support(y, surrogate, alpha), backend)
    if name == "torch":
        if y.dtype in _HALF:  # the state is kept in float32 (as the kernels keep it); spikes in the input's dtype
            up = (lambda p: p.float() if isinstance(p, torch.Tensor) else p)
            s, v_T = lif_scan_ref(y.float(), up(v0), up(beta), up(v_th), skip_input=up(skip_input),
                                  skip_weight=up(skip_weight), **options)
            return s.to(y.dtype), v_T
        return lif_scan_ref(y, v0, beta, v_th, skip_input=skip_input, skip_weight=skip_weight, **options)
    T = y.shape[0]
    step_shape = y.shape[1:]
    sg_code, a = _named_surrogate(surrogate, alpha)
    # Per-neuron parameters built with differentiable torch ops, so autograd sums their gradients back to the
    # shapes the caller gave (per channel, shared, ...); k = 1/v_th is rounded exactly as the reference rounds it.
    state_dtype = torch.float32 if y.dtype in _HALF else y.dtype
    beta_n = _per_neuron(beta, state_dtype, y, step_shape)
    k_n = _per_neuron(1.0 / v_th if not isinstance(v_th, torch.Tensor) else 1.0 / v_th.to(state_dtype), state_dtype,
                      y, step_shape)
    v0_n = (torch.zeros(step_shape, dtype=state_dtype, device=y.device) if v0 is None
            else v0.to(state_dtype).expand(step_shape)).reshape(-1)  # a broadcastable v0 must not be read short
    x_n = None if skip_input is None else skip_input.reshape(T, -1)
    d_n = None if skip_input is None else _per_neuron(skip_weight, state_dtype, y, step_shape)
    opts = (float(v_reset), _RESET_CODE[reset], bool(detach_reset), grad_mode == "local", sg_code, a)
    s, v_T = _LIFScan.apply(y.reshape(T, -1), v0_n, beta_n, k_n, x_n, d_n, _impl(name), opts)
    return s.reshape(y.shape), v_T.reshape(step_shape)
