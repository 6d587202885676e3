"""The multi-step LIF soma as a fused scan, with the pure-torch reference :func:`lif_scan_ref`.

:func:`lif_scan` has the signature of :func:`snn_ssm.functional.lif_seq` (plus ``backend``) and returns what it
returns: spikes ``[T, B, *]`` and the final membrane ``[B, *]``, with gradients for the input, the initial
membrane, β and v_th. Kernels run named surrogates; numba takes float32/float64, CuPy and Triton also
float16/bfloat16 inputs, whose membrane is kept in float32 (by every backend, the reference included: spikes come
back in the input's dtype, the final membrane in float32). Anything else uses the reference.

Two entry points: :func:`lif_scan`, the public op, checks its arguments (types, devices, value ranges, finite
input) and calls :func:`scan`, which takes the options already checked (a :class:`~snn_ssm.functional.lif.SomaOptions`)
and is what the neurons call. The storage for the backward and the kernels' derivation are in this folder's
README.md.
"""
from __future__ import annotations

import functools
import math
from typing import List, Optional, Tuple

import torch

from ...functional.lif import KERNEL_SURROGATES, KernelOptions, SomaOptions, seq
from ..dispatch import choose, custom_op

__all__ = ["lif_scan", "lif_scan_ref", "scan", "KernelOptions", "KERNEL_SURROGATES"]

_HALF = (torch.float16, torch.bfloat16)


def _impl(name: str):
    if name == "numba":
        from . import numba as impl
    elif name == "cupy":
        from . import cupy as impl
    else:
        from . import triton as impl
    return impl


# The kernels as torch.library custom ops: one graph node each under torch.compile, with fake implementations for
# tracing and a registered backward (eager calls run the same functions without the custom op's dispatch:
# dispatch.custom_op). A backend module has two launchers,
# ``launch_forward(y, v0, beta, k, opts, skip) -> (spikes, ckpt)`` and
# ``launch_backward(y, beta, k, ckpt, g_s, g_vT, opts, skip) -> (g_y, g_v0, g_beta, g_k[, g_x, g_d])``, on ``[T, N]``
# inputs and flat per-neuron ``[N]`` parameters, where ``skip`` is ``None`` or the fused D-skip ``(x, d)`` and
# ``ckpt`` holds the membrane at every chunk start, then v_T.
#
# The op takes ``y`` as ``[T, *step]`` and ``v0``, ``beta``, ``k`` and ``d`` in the shapes the caller gave (per
# channel, shared, per neuron: anything that broadcasts to one step). It spreads them to one value per neuron itself
# and sums the kernels' per-neuron gradients back to those shapes in its backward, so a call is one autograd node:
# the spreading and the reductions cost no autograd nodes of their own (host time a short sequence pays per step).

def _state_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in _HALF else dtype


def _flat(p: torch.Tensor, step_shape, n: int, dtype: torch.dtype) -> torch.Tensor:
    """``p`` (broadcastable to one step, or already one value per neuron ``[n]``) as ``[n]`` contiguous in ``dtype``:
    the CUDA kernels index raw pointers, so a shared parameter (0-d, or ``[1]``), whose ``expand``/``reshape`` is a
    stride-0 view, must be copied out."""
    p = p.to(dtype)
    if not (p.dim() == 1 and p.shape[0] == n):  # [n] is per neuron already (also what broadcasting it would give)
        p = p.expand(step_shape).reshape(n)
    return p.contiguous()


def _scan_impl(y: torch.Tensor, v0: Optional[torch.Tensor], beta: torch.Tensor, k: torch.Tensor,
               x: Optional[torch.Tensor], d: Optional[torch.Tensor], backend: str, v_reset: float, reset: int,
               detach_reset: bool, local: bool, surrogate: int, alpha: float) -> Tuple[torch.Tensor, torch.Tensor]:
    T, step = y.shape[0], y.shape[1:]
    n, dtype = step.numel(), _state_dtype(y.dtype)
    opts = KernelOptions(v_reset, reset, detach_reset, local, surrogate, alpha)
    skip = None if x is None else (x.reshape(T, n).contiguous(), _flat(d, step, n, dtype))
    v0_n = _constant(0.0, n, dtype, y.device) if v0 is None else _flat(v0, step, n, dtype)
    s, ckpt = _impl(backend).launch_forward(y.reshape(T, n).contiguous(), v0_n, _flat(beta, step, n, dtype),
                                            _flat(k, step, n, dtype), opts, skip)
    return s.view(y.shape), ckpt


def _scan_backward_impl(y: torch.Tensor, beta: torch.Tensor, k: torch.Tensor, ckpt: torch.Tensor, g_s: torch.Tensor,
                        g_vT: torch.Tensor, x: Optional[torch.Tensor], d: Optional[torch.Tensor], backend: str,
                        v_reset: float, reset: int, detach_reset: bool, local: bool, surrogate: int,
                        alpha: float) -> List[torch.Tensor]:
    """Gradients for ``y`` (its shape), then per neuron ``[N]`` for v0, β, k (and the skip's x, d)."""
    T, step = y.shape[0], y.shape[1:]
    n, dtype = step.numel(), _state_dtype(y.dtype)
    opts = KernelOptions(v_reset, reset, detach_reset, local, surrogate, alpha)
    skip = None if x is None else (x.reshape(T, n).contiguous(), _flat(d, step, n, dtype))
    grads = _impl(backend).launch_backward(y.reshape(T, n).contiguous(), _flat(beta, step, n, dtype),
                                           _flat(k, step, n, dtype), ckpt.contiguous(),
                                           g_s.reshape(T, n).contiguous(), g_vT.contiguous(), opts, skip)
    if skip is None:
        g_y, g_v0, g_beta, g_k = grads
        g_x, g_d = y.new_empty(0), beta.new_empty(0, dtype=dtype)
    else:
        g_y, g_v0, g_beta, g_k, g_x, g_d = grads
        g_x = g_x.view(y.shape)
    return [g_y.view(y.shape), g_v0, g_beta, g_k, g_x, g_d]


_scan = custom_op("snn_ssm::lif_scan", _scan_impl, _scan_backward_impl)
_scan_op, _scan_backward_op = _scan.op, _scan.backward_op


# The kernels return contiguous tensors whatever their inputs' strides, and so must the fakes: Inductor asserts the
# strides a fake gives (a transposed activation once failed there).
@_scan_op.register_fake
def _(y, v0, beta, k, x, d, backend, *opts):
    chunk = _impl(backend).CHUNK
    n = y.shape[1:].numel()
    return y.new_empty(y.shape), y.new_empty(((y.shape[0] + chunk - 1) // chunk + 1, n),
                                             dtype=_state_dtype(y.dtype))


@_scan_backward_op.register_fake
def _(y, beta, k, ckpt, g_s, g_vT, x, d, *rest):
    n, dtype = y.shape[1:].numel(), _state_dtype(y.dtype)
    per_neuron = [y.new_empty(n, dtype=dtype) for _ in range(3)]
    skip = [x.new_empty(x.shape), y.new_empty(n, dtype=dtype)] if x is not None else [y.new_empty(0),
                                                                                      beta.new_empty(0, dtype=dtype)]
    return [y.new_empty(y.shape), *per_neuron, *skip]


def _scan_setup(ctx, inputs, output):
    y, v0, beta, k, x, d, backend, *opts = inputs
    ctx.save_for_backward(y, beta, k, output[1], x, d)
    ctx.backend, ctx.opts = backend, opts
    ctx.v0 = None if v0 is None else (v0.shape, v0.dtype)
    ctx.set_materialize_grads(False)  # an unused v_T (or spike train) costs no tensor of zeros the size of the output


def _to_shape(g: Optional[torch.Tensor], step_shape, p_shape, p_dtype, needed: bool) -> Optional[torch.Tensor]:
    """A per-neuron gradient ``[N]`` summed back to the parameter's shape (what autograd's expand would have done)."""
    if not needed:
        return None
    return g.view(step_shape).sum_to_size(p_shape).to(p_dtype)


def _scan_backward(ctx, g_s, g_ckpt):
    y, beta, k, ckpt, x, d = ctx.saved_tensors
    step = y.shape[1:]
    n = step.numel()
    if g_s is None:
        g_s = torch.zeros_like(y)
    g_vT = _constant(0.0, n, ckpt.dtype, y.device) if g_ckpt is None else g_ckpt[-1]
    g_y, g_v0, g_beta, g_k, g_x, g_d = _scan.backward(y, beta, k, ckpt, g_s, g_vT, x, d, ctx.backend, *ctx.opts)
    need = ctx.needs_input_grad
    g_v0 = None if ctx.v0 is None else _to_shape(g_v0, step, *ctx.v0, need[1])
    skip = ((g_x if need[4] else None), _to_shape(g_d, step, d.shape, d.dtype, need[5])) if x is not None \
        else (None, None)
    return (g_y if need[0] else None, g_v0, _to_shape(g_beta, step, beta.shape, beta.dtype, need[2]),
            _to_shape(g_k, step, k.shape, k.dtype, need[3]), *skip, None, None, None, None, None, None, None)


_scan.register_autograd(_scan_backward, setup_context=_scan_setup)


def _constant(value: float, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``[n]`` filled with ``value``, made once per (value, size, dtype, device) and shared by later calls: a
    parameter given as a number, a zero initial membrane. Nothing writes to it (the kernels only read their
    parameters). Filled on the device: ``torch.as_tensor(number, device="cuda")`` would copy from pageable host
    memory, which waits for all queued GPU work. Traced code makes its own (a graph owns its constants)."""
    if torch.compiler.is_compiling():
        return torch.full((n,), value, dtype=dtype, device=device)
    return _cached_constant(value, n, dtype, device)


@functools.lru_cache(maxsize=64)
def _cached_constant(value: float, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.full((n,), value, dtype=dtype, device=device)


def _kernel_support(y, kopts: KernelOptions | None) -> dict:
    return _support(y.device.type, y.dtype, kopts)


def _support(device_type: str, dtype: torch.dtype, kopts: KernelOptions | None) -> dict:
    support = {}
    for backend, device, dtypes in (("numba", "cpu", (torch.float32, torch.float64)),
                                    ("cupy", "cuda", (torch.float32, torch.float64, *_HALF)),
                                    ("triton", "cuda", (torch.float32, torch.float64, *_HALF))):
        if device_type != device:
            support[backend] = f"device {device_type} ({backend} runs on {device})"
        elif dtype not in dtypes:
            support[backend] = f"dtype {dtype} (it takes {', '.join(str(d) for d in dtypes)})"
        elif kopts is None:
            support[backend] = ("its surrogate has no kernel (kernels implement triangle, atan and sigmoid; "
                                "fast_sigmoid and custom surrogate callables run the reference)")
        else:
            support[backend] = None
    return support


def _check_args(y, v0, beta, v_th, skip_input, skip_weight) -> None:
    """Types, shapes and devices of :func:`lif_scan`'s arguments, then their values (finite input and state, β in
    [0, 1], v_th > 0) with one host synchronisation for all tensors."""
    if not isinstance(y, torch.Tensor) or not y.is_floating_point() or y.ndim < 1:
        raise TypeError(f"y must be a floating-point tensor [T, B, *], got "
                        f"{getattr(y, 'dtype', type(y).__name__)} of shape {tuple(getattr(y, 'shape', ()))}")
    if y.shape[0] == 0:
        raise ValueError("y has zero time steps (layout [T, B, *]); need at least one step")
    if y.device.type == "meta":
        raise ValueError("y is on the meta device, which holds no values: give y on cpu or cuda")
    step_shape = y.shape[1:]
    if (skip_input is None) != (skip_weight is None):
        raise ValueError("skip_input and skip_weight go together: give both (the fused D-skip) or neither")
    if skip_input is not None and (not isinstance(skip_input, torch.Tensor) or skip_input.shape != y.shape
                                   or skip_input.dtype != y.dtype):
        raise ValueError(f"skip_input must be a tensor like y ({tuple(y.shape)}, {y.dtype}), got "
                         f"{getattr(skip_input, 'dtype', type(skip_input).__name__)} of shape "
                         f"{tuple(getattr(skip_input, 'shape', ()))}")
    values = []  # (name, 0-d bool tensor that must be True, what it must be)
    for name, p, must in (("v0", v0, "finite"), ("beta", beta, "in [0, 1]"), ("v_th", v_th, "finite and > 0"),
                          ("skip_input", skip_input, "finite"), ("skip_weight", skip_weight, "finite")):
        if p is None:
            continue
        if isinstance(p, torch.Tensor):
            if p.device != y.device:
                raise ValueError(f"{name} is on {p.device} but y is on {y.device}: give every tensor argument of "
                                 f"lif_scan on y's device (move it with .to(y.device))")
            if not p.is_floating_point():
                raise TypeError(f"{name} must be a floating-point tensor, got {p.dtype}")
            if name != "skip_input":
                try:
                    ok = torch.broadcast_shapes(p.shape, step_shape) == step_shape
                except RuntimeError:
                    ok = False
                if not ok:
                    raise ValueError(f"{name} of shape {tuple(p.shape)} does not broadcast to one step "
                                     f"{tuple(step_shape)} of y")
            if name == "beta":
                values.append((name, ((p >= 0) & (p <= 1)).all(), must))
            elif name == "v_th":
                values.append((name, ((p > 0) & torch.isfinite(p)).all(), must))
            else:
                values.append((name, torch.isfinite(p).all(), must))
        elif name in ("v0", "skip_input") or isinstance(p, bool) or not isinstance(p, (int, float)):
            raise TypeError(f"{name} must be a {'tensor' if name in ('v0', 'skip_input') else 'number or a tensor'}"
                            f", got {type(p).__name__}")
        elif not {"beta": 0 <= p <= 1, "v_th": 0 < p < math.inf}.get(name, math.isfinite(p)):
            raise ValueError(f"{name} must be {must}, got {p!r}")
    values.append(("y", torch.isfinite(y).all(), "finite"))
    _check_values(values)


def _check_values(values) -> None:
    """One synchronisation for every value check; none under torch.compile (a compiled caller trusts its inputs:
    a check would break the graph and wait for the GPU at every call)."""
    if torch.compiler.is_compiling():
        return
    if bool(torch.stack([ok for _, ok, _ in values]).all()):
        return
    name, _, must = next(v for v in values if not bool(v[1]))
    raise ValueError(f"{name} must be {must}, but it holds values that are not (NaN, Inf or out of range)")


def _reference(y, v0, beta, v_th, opts: SomaOptions, skip_input=None, skip_weight=None):
    if y.dtype in _HALF:  # the state is kept in float32 (as the kernels keep it); spikes in the input's dtype
        up = (lambda p: p.float() if isinstance(p, torch.Tensor) else p)
        s, v_T = _reference(y.float(), up(v0), up(beta), up(v_th), opts, up(skip_input), up(skip_weight))
        return s.to(y.dtype), v_T
    if skip_input is not None:
        d = skip_weight.to(y.dtype) if isinstance(skip_weight, torch.Tensor) else skip_weight
        y = y + d * skip_input
    return seq(y, v0, beta, v_th, opts)


def lif_scan_ref(y: torch.Tensor, v0: torch.Tensor | None, beta, v_th=1.0, *, skip_input: torch.Tensor | None = None,
                 skip_weight=None, v_reset: float = SomaOptions.v_reset, reset: str = SomaOptions.reset,
                 detach_reset: bool = SomaOptions.detach_reset, grad_mode: str = SomaOptions.grad_mode,
                 surrogate=SomaOptions.surrogate, alpha: float | None = SomaOptions.alpha):
    """The pure-torch reference of :func:`lif_scan`: :func:`~snn_ssm.functional.lif_seq` on
    ``y + skip_weight * skip_input`` (autograd through an exact loop; a float16/bfloat16 ``y`` runs with a float32
    membrane, as the kernels run it).

    Examples::

        >>> s, v = lif_scan_ref(torch.randn(100, 4, 8), None, beta=0.5)
        >>> s.shape, v.shape
        (torch.Size([100, 4, 8]), torch.Size([4, 8]))
    """
    opts = SomaOptions(reset, v_reset, detach_reset, grad_mode, surrogate, alpha)
    _check_args(y, v0, beta, v_th, skip_input, skip_weight)
    return _reference(y, v0, beta, v_th, opts, skip_input, skip_weight)


def lif_scan(y: torch.Tensor, v0: torch.Tensor | None, beta, v_th=1.0, *, skip_input: torch.Tensor | None = None,
             skip_weight=None, v_reset: float = SomaOptions.v_reset, reset: str = SomaOptions.reset,
             detach_reset: bool = SomaOptions.detach_reset, grad_mode: str = SomaOptions.grad_mode,
             surrogate=SomaOptions.surrogate, alpha: float | None = SomaOptions.alpha, backend: str | None = None):
    """:func:`snn_ssm.functional.lif_seq` computed by the fastest available backend.

    Args:
        y, v0, beta, v_th, v_reset, reset, detach_reset, grad_mode, surrogate, alpha: as in
            :func:`~snn_ssm.functional.lif_seq` (``y`` ``[T, B, *]``; ``beta``/``v_th`` broadcastable to ``y[0]``;
            every tensor on ``y``'s device).
        skip_input, skip_weight: the fused D-skip: the soma then runs on ``y + skip_weight * skip_input``, computed
            inside the kernel (SpikingSSM's ``K * x + D·x``: the layer reads the convolution output once and never
            writes the sum). ``skip_input`` has ``y``'s shape, ``skip_weight`` broadcasts to ``y[0]``; both get
            gradients. Default: no skip.
        backend (str, optional): ``"auto"``, ``"torch"``, ``"numba"``, ``"cupy"`` or ``"triton"``; ``None`` follows
            :func:`snn_ssm.ops.use_backend` / ``SNN_SSM_BACKEND`` / ``auto``.

    Returns:
        ``(spikes [T, B, *], v_T [B, *])``.

    Raises:
        TypeError, ValueError: naming the argument: a wrong type, shape or device, an unknown option, β outside
            [0, 1], v_th <= 0, or NaN/Inf in ``y``, ``v0`` or the skip.

    Examples::

        >>> s, v = lif_scan(torch.randn(1000, 64, 256), None, beta=0.5, backend="numba")
    """
    opts = SomaOptions(reset, v_reset, detach_reset, grad_mode, surrogate, alpha)
    _check_args(y, v0, beta, v_th, skip_input, skip_weight)
    return scan(y, v0, beta, v_th, opts, skip_input=skip_input, skip_weight=skip_weight, backend=backend)


def scan(y: torch.Tensor, v0: torch.Tensor | None, beta, v_th, opts: SomaOptions, *,
         skip_input: torch.Tensor | None = None, skip_weight=None, backend: str | None = None):
    """:func:`lif_scan` for a caller that has checked its arguments and built ``opts`` (the neurons): no value
    checks and no host synchronisation here, only the device check that keeps host pointers out of the kernels."""
    kopts = opts.kernel
    name = _plan(y.device.type, y.dtype, kopts, backend)
    if name == "torch":
        return _reference(y, v0, beta, v_th, opts, skip_input, skip_weight)
    for arg, p in (("v0", v0), ("beta", beta), ("v_th", v_th), ("skip_input", skip_input),
                   ("skip_weight", skip_weight)):
        if isinstance(p, torch.Tensor) and p.device != y.device:
            raise ValueError(f"{arg} is on {p.device} but y is on {y.device}; the {name} kernel needs both on one "
                             f"device")
    return _launch(y, v0, beta, v_th, skip_input, skip_weight, name, kopts)


@torch.compiler.assume_constant_result  # under torch.compile: decided once, when compiling
def _plan(device_type: str, dtype: torch.dtype, kopts: KernelOptions | None, backend: str | None) -> str:
    """The backend name for a call; plain Python (the environment, what is installed). Its arguments are numbers,
    strings and named tuples only: torch < 2.13 cannot hand a frozen dataclass (SomaOptions) to such a function
    under torch.compile."""
    return choose("lif_scan", device_type, _support(device_type, dtype, kopts), backend)


def _launch(y, v0, beta, v_th, skip_input, skip_weight, name: str, kopts: KernelOptions):
    # k = 1/v_th rounded as the reference rounds it: a number in double precision, then once to the state's dtype;
    # a tensor in the state's dtype (a differentiable op, so v_th gets its gradient through k).
    n, dtype = y.shape[1:].numel(), _state_dtype(y.dtype)
    as_tensor = (lambda p: p if isinstance(p, torch.Tensor) else _constant(float(p), n, dtype, y.device))
    k = 1.0 / v_th.to(dtype) if isinstance(v_th, torch.Tensor) else _constant(1.0 / v_th, n, dtype, y.device)
    d = None if skip_input is None else as_tensor(skip_weight)
    s, ckpt = _scan(y, v0, as_tensor(beta), k, skip_input, d, name, *kopts)
    return s, ckpt[-1].view(y.shape[1:])
