"""Spike functions: Heaviside forward, surrogate gradient backward.

Each surrogate is a module-level ``torch.autograd.Function`` (picklable, traceable by ``torch.compile``) with a
sharpness ``alpha``, and a matching ``primitive`` whose derivative is the surrogate gradient. The forward pass fires on
``x >= 0`` (SpikingSSM's and SpikingJelly's convention; snnTorch fires on ``x > 0``, which differs only at equality).

============  ==============================================  ===========================  =========
name          surrogate gradient g(x)                         primitive                    default α
============  ==============================================  ===========================  =========
triangle      max(0, α − α²·abs(x))                           piecewise quadratic, 0 → 1   1.0
atan          (α/2) / (1 + (πα x / 2)²)                       arctan(πα x / 2)/π + 1/2     2.0
sigmoid       α σ(αx)(1 − σ(αx))                              σ(αx)                        4.0
fast_sigmoid  1 / (1 + α·abs(x))²                             x / (1 + α·abs(x))           25.0
============  ==============================================  ===========================  =========

``fast_sigmoid`` is snnTorch's default surrogate (slope α = 25, peak 1). The fused LIF kernels implement triangle,
atan and sigmoid; a neuron with ``fast_sigmoid`` runs through the torch reference.

``triangle`` with α = 1 is SpikingSSM's default (support abs(x) < 1, peak 1, in units of the normalised threshold).
"""
from __future__ import annotations

import math
from typing import Callable, Union

import torch

__all__ = ["Triangle", "ATan", "Sigmoid", "FastSigmoid", "SURROGATES", "DEFAULT_ALPHA", "NamedSurrogate", "spike",
           "primitive", "resolve"]


def _heaviside(x: torch.Tensor) -> torch.Tensor:
    return (x >= 0).to(x.dtype)


class _Spike(torch.autograd.Function):
    """Heaviside forward; subclasses give the surrogate gradient in ``backward``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return _heaviside(x)


class Triangle(_Spike):
    """Triangle surrogate ``max(0, α − α²·abs(x))``: ``Triangle.apply(x, alpha)``.

    Examples::

        >>> x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
        >>> Triangle.apply(x, 1.0).sum().backward(); x.grad
        tensor([0.5000, 1.0000, 0.5000])
    """

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,), a = ctx.saved_tensors, ctx.alpha
        return grad_out * (a - a * a * x.abs()).clamp_min(0), None


class ATan(_Spike):
    """Arctan surrogate ``(α/2) / (1 + (πα x / 2)²)``: ``ATan.apply(x, alpha)``.

    Examples::

        >>> x = torch.tensor([0.0], requires_grad=True)
        >>> ATan.apply(x, 2.0).sum().backward(); x.grad      # peak alpha / 2
        tensor([1.])
    """

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,), a = ctx.saved_tensors, ctx.alpha
        return grad_out * (a / 2) / (1 + (math.pi / 2 * a * x) ** 2), None


class Sigmoid(_Spike):
    """Sigmoid surrogate ``α σ(αx)(1 − σ(αx))``: ``Sigmoid.apply(x, alpha)``.

    Examples::

        >>> x = torch.tensor([0.0], requires_grad=True)
        >>> Sigmoid.apply(x, 4.0).sum().backward(); x.grad   # peak alpha / 4
        tensor([1.])
    """

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,), a = ctx.saved_tensors, ctx.alpha
        sg = torch.sigmoid(a * x)
        return grad_out * a * sg * (1 - sg), None


class FastSigmoid(_Spike):
    """snnTorch's fast-sigmoid surrogate ``1 / (1 + α·abs(x))²``: ``FastSigmoid.apply(x, alpha)``.

    Examples::

        >>> x = torch.tensor([0.0, 0.04], requires_grad=True)
        >>> FastSigmoid.apply(x, 25.0).sum().backward(); x.grad
        tensor([1.0000, 0.2500])
    """

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,), a = ctx.saved_tensors, ctx.alpha
        return grad_out / (1 + a * x.abs()) ** 2, None


SURROGATES = {"triangle": Triangle, "atan": ATan, "sigmoid": Sigmoid, "fast_sigmoid": FastSigmoid}
_NAMES = {cls: name for name, cls in SURROGATES.items()}
DEFAULT_ALPHA = {"triangle": 1.0, "atan": 2.0, "sigmoid": 4.0, "fast_sigmoid": 25.0}

SpikeFn = Callable[[torch.Tensor], torch.Tensor]
Surrogate = Union[str, SpikeFn]


def primitive(x: torch.Tensor, name: str, alpha: float | None = None) -> torch.Tensor:
    """The smooth function whose derivative is the surrogate gradient of ``name`` (for tests and plots).

    Examples::

        >>> primitive(torch.tensor([-2.0, 0.0, 2.0]), "triangle")
        tensor([0.0000, 0.5000, 1.0000])
    """
    a = DEFAULT_ALPHA[name] if alpha is None else alpha
    if name == "triangle":
        # Integral of max(0, a - a^2 |x|): 0 below -1/a, 1 above 1/a, quadratic pieces between.
        z = (a * x).clamp(-1, 1)
        return torch.where(z < 0, 0.5 * (1 + z) ** 2, 1 - 0.5 * (1 - z) ** 2)
    if name == "atan":
        return torch.atan(math.pi / 2 * a * x) / math.pi + 0.5
    if name == "sigmoid":
        return torch.sigmoid(a * x)
    if name == "fast_sigmoid":
        return x / (1 + a * x.abs())
    raise ValueError(f"surrogate must be one of {sorted(SURROGATES)}, got {name!r}")


def spike(x: torch.Tensor, surrogate: str = "triangle", alpha: float | None = None) -> torch.Tensor:
    """Heaviside spike ``x >= 0`` with the named surrogate gradient.

    Args:
        x (torch.Tensor): membrane minus threshold, any shape.
        surrogate (str): ``"triangle"``, ``"atan"``, ``"sigmoid"`` or ``"fast_sigmoid"``. Default: ``"triangle"``.
        alpha (float, optional): sharpness; ``None`` takes the surrogate's default (table above).

    Examples::

        >>> x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
        >>> spike(x).sum().backward(); x.grad
        tensor([0.5000, 1.0000, 0.5000])
    """
    return resolve(surrogate, alpha)(x)


class NamedSurrogate:
    """A picklable ``x -> spikes`` callable for one of the built-in surrogates (what :func:`resolve` returns for a
    name); ``name`` and ``alpha`` tell a kernel which surrogate to run.

    Examples::

        >>> fire = resolve("sigmoid", alpha=2.0)
        >>> fire.name, fire.alpha, fire(torch.tensor([-1.0, 1.0]))
        ('sigmoid', 2.0, tensor([0., 1.]))
    """

    __slots__ = ("fn", "alpha")

    def __init__(self, fn, alpha: float):
        self.fn, self.alpha = fn, alpha

    @property
    def name(self) -> str:
        return _NAMES[self.fn]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not (torch.is_grad_enabled() and x.requires_grad):  # no gradient to shape: the Heaviside alone
            return _heaviside(x)
        return self.fn.apply(x, self.alpha)

    def __repr__(self) -> str:
        return f"{self.fn.__name__}(alpha={self.alpha:g})"

    def __getstate__(self):
        return (self.fn, self.alpha)

    def __setstate__(self, state):
        self.fn, self.alpha = state


def resolve(surrogate: Surrogate, alpha: float | None = None) -> SpikeFn:
    """Turn a surrogate name (plus ``alpha``) or a user callable into an ``x -> spikes`` function.

    A callable is used as given (for example a SpikingJelly ``surrogate.ATan()`` module or an snnTorch
    ``surrogate.fast_sigmoid()`` closure); ``alpha`` must then be ``None``.

    Examples::

        >>> fire = resolve("atan", alpha=3.0)
        >>> fire, fire(torch.tensor([-0.1, 0.1]))
        (ATan(alpha=3), tensor([0., 1.]))
    """
    if isinstance(surrogate, str):
        if surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {sorted(SURROGATES)} or a callable, got {surrogate!r}")
        a = DEFAULT_ALPHA[surrogate] if alpha is None else float(alpha)
        if not 0 < a < math.inf:
            raise ValueError(f"alpha must be a finite positive number, got {alpha!r}")
        return NamedSurrogate(SURROGATES[surrogate], a)
    if callable(surrogate):
        if alpha is not None:
            raise ValueError("alpha applies to named surrogates only; configure a callable surrogate yourself")
        return surrogate
    raise TypeError(f"surrogate must be a name in {sorted(SURROGATES)} or a callable, got {type(surrogate).__name__}")


_Named = NamedSurrogate  # the name of this class in 0.1.0: models pickled whole by that version still load
