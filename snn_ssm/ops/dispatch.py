"""Choose the backend of an op: ``auto``, ``torch`` (the reference), ``numba`` (CPU), ``cupy`` or ``triton`` (CUDA).

Precedence: an explicit ``backend=`` argument (a neuron's ``backend`` option), then :func:`use_backend`, then the
``SNN_SSM_BACKEND`` environment variable, then ``auto``. ``auto`` picks the fastest backend that is installed and
supports the call (device, dtype, options) and logs its choice once per (op, device, backend); an unsupported
configuration falls back to ``torch``. An explicit request that cannot be honoured raises and says how to fix it.
"""
from __future__ import annotations

import contextlib
import functools
import contextvars
import importlib.util
import logging
import os

import torch

__all__ = ["BACKENDS", "check_backend", "use_backend", "requested_backend", "available", "choose", "custom_op"]

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "numba", "triton", "cupy")
ENV_VAR = "SNN_SSM_BACKEND"
_INSTALL = {"numba": "pip install 'snn_ssm[numba]'  (numba, CPU)",
            "triton": "pip install triton  (ships with CUDA builds of torch)",
            "cupy": "pip install cupy-cuda12x  (or cupy-cuda13x, matching your CUDA)"}
_PREFERENCE = {"cpu": ("numba", "torch"), "cuda": ("cupy", "triton", "torch")}

_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("snn_ssm_backend", default=None)
_logged: set = set()


def check_backend(name: str, what: str = "backend") -> str:
    """``name`` if it is one of :data:`BACKENDS`, else ``ValueError`` naming ``what`` (the one backend check)."""
    if name not in BACKENDS:
        raise ValueError(f"{what} must be one of {BACKENDS}, got {name!r}")
    return name


@contextlib.contextmanager
def use_backend(name: str):
    """Context manager: ops inside use ``name`` unless a call names its own backend.

    Examples::

        >>> neuron, x = snn_ssm.LIF(8), torch.rand(100, 4, 8)
        >>> with snn_ssm.ops.use_backend("torch"):
        ...     spikes = neuron(x)          # the pure-torch reference, whatever is installed
    """
    token = _override.set(check_backend(name, "backend"))
    try:
        yield
    finally:
        _override.reset(token)


def requested_backend(explicit: str | None = None) -> str:
    if explicit is not None and explicit != "auto":
        return check_backend(explicit, "backend")
    scoped = _override.get()
    if scoped is not None:
        return scoped
    env = os.environ.get(ENV_VAR)
    if env:
        return check_backend(env.strip().lower(), f"the environment variable {ENV_VAR}")
    return "auto"


def available(name: str) -> bool:
    """Whether backend ``name`` can be imported here (``torch`` always can); looked up once per process.

    Examples::

        >>> available("torch")
        True
    """
    return name == "torch" or _installed(name)


@functools.lru_cache(maxsize=None)
def _installed(name: str) -> bool:
    # Cached: every multi-step neuron call asks, and a find_spec costs ~35 µs of host time.
    return importlib.util.find_spec(name) is not None


def choose(op: str, device_type: str, supports: dict[str, str | None], explicit: str | None = None) -> str:
    """The backend to run ``op`` with.

    Args:
        supports: for each candidate backend, ``None`` if it supports this call, else the reason it does not.
    """
    name = requested_backend(explicit)
    if name != "auto":
        if name != "torch" and not available(name):
            raise ImportError(f"backend {name!r} was requested for {op} but is not installed: {_INSTALL[name]}")
        reason = supports.get(name, f"{name} has no {op} kernel")
        if name != "torch" and reason is not None:
            raise ValueError(f"backend {name!r} cannot run this {op} call: {reason}")
        return name
    for candidate in _PREFERENCE.get(device_type, ("torch",)):
        if candidate == "torch" or (available(candidate) and supports.get(candidate, "n/a") is None):
            key = (op, device_type, candidate)
            if key not in _logged:
                _logged.add(key)
                why = "" if candidate != "torch" else " (" + "; ".join(
                    f"{b}: {'not installed' if not available(b) else supports.get(b, 'n/a')}"
                    for b in _PREFERENCE.get(device_type, ()) if b != "torch") + ")"
                log.info("snn_ssm: %s on %s uses the %s backend%s", op, device_type, candidate, why)
            return candidate
    return "torch"


class _Op:
    """A kernel as a ``torch.library`` custom op for traced code, and as a plain ``torch.autograd.Function`` with
    the same setup and backward for eager calls (see :func:`custom_op`)."""

    def __init__(self, op, impl, backward_op, backward_impl):
        self.op, self.backward_op, self.backward_impl = op, backward_op, backward_impl
        self._setup = self._backward = None
        outer = self

        class Eager(torch.autograd.Function):
            @staticmethod
            def forward(ctx, *inputs):
                output = impl(*inputs)
                outer._setup(ctx, inputs, output)
                return output

            @staticmethod
            def backward(ctx, *grads):
                return outer._backward(ctx, *grads)

        self._eager = Eager

    def register_autograd(self, backward, setup_context):
        self._setup, self._backward = setup_context, backward
        self.op.register_autograd(backward, setup_context=setup_context)

    def backward(self, *args):
        """The backward kernel: the custom op when traced, its implementation when called eagerly."""
        return (self.backward_impl if _eager(args) else self.backward_op)(*args)

    def __call__(self, *args):
        return (self._eager.apply if _eager(args) else self.op)(*args)


def _eager(args) -> bool:
    """Plain tensors outside ``torch.compile``; traced code (dynamo, or the fake and functional tensors of
    AOTAutograd and ``torch.library.opcheck``) takes the custom op."""
    return not torch.compiler.is_compiling() and all(type(a) is torch.Tensor for a in args
                                                     if isinstance(a, torch.Tensor))


def custom_op(name: str, impl, backward_impl) -> _Op:
    """``impl`` and its ``backward_impl`` (Python functions with type annotations: their schema) as the custom ops
    ``name`` and ``name + "_backward"``: what ``torch.compile`` traces, as one graph node each with the fake
    implementations the caller registers on ``.op`` and ``.backward_op``. Eager calls run the same functions
    through a plain ``torch.autograd.Function`` with the same setup and backward: the custom op's dispatch costs
    several times the host time of the call itself (torch 2.x fills the schema's defaults in Python at every call),
    which a short sequence pays at every step. ``ops/lif_scan`` and ``ops/ssm_lif`` are built with it."""
    return _Op(torch.library.custom_op(name, impl, mutates_args=()), impl,
               torch.library.custom_op(name + "_backward", backward_impl, mutates_args=()), backward_impl)
