r"""The LIF soma of SpikingSSM, as pure functions.

.. math::

    u'_t = \beta\,u_{t-1} + y_t / v_{th}, \qquad s_t = H(u'_t - 1), \qquad
    u_t = \begin{cases} (1 - s_t)\,u'_t + s_t\,v_{reset} & \text{hard reset} \\
                        u'_t - s_t & \text{soft reset (subtract)} \\
                        u'_t & \text{no reset} \end{cases}

The membrane is kept in units of the threshold: dividing the input by a per-channel ``v_th = exp(ln_vth)`` and firing
at 1 is the same neuron as firing at ``v_th`` when ``u_0 = 0`` and ``v_reset = 0`` (SpikingSSM, "Property 2"), and it
lets one frozen firing rule serve a learnable threshold.

Gradient modes:
    ``"bptt"``  gradients flow through the leak β·u_{t-1} across time; ``detach_reset`` cuts them through s_t in the
              reset term (SpikingSSM's iterative neuron detaches it).
    ``"local"`` SLTT-style: u_{t-1} is detached before the leak, so each step only passes gradient to its own input
              (and threshold); memory no longer has to hold the temporal graph.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple, Union

import torch

from .surrogate import NamedSurrogate, Surrogate, SpikeFn, resolve

__all__ = ["RESETS", "GRAD_MODES", "SomaOptions", "lif_step", "lif_seq"]

RESETS = ("hard", "soft", "none")
GRAD_MODES = ("bptt", "local")
Scalar = Union[float, torch.Tensor]


_RESET_CODE = {"hard": 0, "soft": 1, "none": 2}
_SURROGATE_CODE = {"triangle": 0, "atan": 1, "sigmoid": 2}
KERNEL_SURROGATES = tuple(_SURROGATE_CODE)  # the named surrogates every kernel implements


class KernelOptions(NamedTuple):
    """The soma options as the kernels read them (numbers and codes, no Python objects); ``SomaOptions.kernel``."""

    v_reset: float
    reset: int  # 0 hard, 1 soft, 2 none
    detach_reset: bool
    local: bool  # grad_mode == "local"
    surrogate: int  # 0 triangle, 1 atan, 2 sigmoid
    alpha: float

    @staticmethod
    def of(opts: "SomaOptions") -> "KernelOptions | None":
        """The kernel form of ``opts``, or ``None`` when its surrogate has no kernel implementation."""
        fire = opts.fire
        if not isinstance(fire, NamedSurrogate) or fire.name not in _SURROGATE_CODE:
            return None
        return KernelOptions(opts.v_reset, _RESET_CODE[opts.reset], opts.detach_reset, opts.grad_mode == "local",
                             _SURROGATE_CODE[fire.name], fire.alpha)


@dataclass(frozen=True)
class SomaOptions:
    """The options of the soma's dynamics, checked once, when the object is built (the defaults of every neuron).

    Args:
        reset (str): ``"hard"``, ``"soft"`` or ``"none"``. Default: ``"hard"``.
        v_reset (float): hard-reset value in threshold units. Default: ``0.0``.
        detach_reset (bool): detach s_t in the reset term. Default: ``False``.
        grad_mode (str): ``"bptt"`` or ``"local"``. Default: ``"bptt"``.
        surrogate (str or callable): a name in :data:`~snn_ssm.functional.surrogate.SURROGATES` or an
            ``x -> spikes`` callable. Default: ``"triangle"``.
        alpha (float, optional): sharpness of a named surrogate (``None``: its default).

    ``fire`` is the resolved ``x -> spikes`` function; ``kernel`` the :class:`KernelOptions` the kernels read
    (``None`` when the surrogate has no kernel).

    Examples::

        >>> SomaOptions(reset="soft", surrogate="atan").fire
        ATan(alpha=2)
        >>> SomaOptions(grad_mode="fast")
        Traceback (most recent call last):
        ...
        ValueError: grad_mode must be one of ('bptt', 'local'), got 'fast'
    """

    reset: str = "hard"
    v_reset: float = 0.0
    detach_reset: bool = False
    grad_mode: str = "bptt"
    surrogate: Surrogate = "triangle"
    alpha: float | None = None
    fire: SpikeFn = field(init=False, repr=False, compare=False)
    kernel: KernelOptions | None = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {self.reset!r}")
        if self.grad_mode not in GRAD_MODES:
            raise ValueError(f"grad_mode must be one of {GRAD_MODES}, got {self.grad_mode!r}")
        if isinstance(self.v_reset, bool) or not isinstance(self.v_reset, (int, float)) or \
                not math.isfinite(self.v_reset):
            raise ValueError(f"v_reset must be a finite number, got {self.v_reset!r}")
        if not isinstance(self.detach_reset, bool):
            raise TypeError(f"detach_reset must be a bool, got {type(self.detach_reset).__name__}")
        object.__setattr__(self, "v_reset", float(self.v_reset))
        object.__setattr__(self, "fire", resolve(self.surrogate, self.alpha))  # checks surrogate and alpha
        # What the kernels read, made once here: traced code (torch.compile) then reads a constant attribute.
        object.__setattr__(self, "kernel", KernelOptions.of(self))


def _charge_fire_reset(y, v, beta, inv_vth, opts: SomaOptions):
    if opts.grad_mode == "local":
        v = v.detach()
    u = beta * v + y * inv_vth
    s = opts.fire(u - 1.0)
    s_r = s.detach() if opts.detach_reset else s
    if opts.reset == "hard":
        u = u - s_r * (u - opts.v_reset)
    elif opts.reset == "soft":
        u = u - s_r
    return s, u


def step(y: torch.Tensor, v: torch.Tensor, beta: Scalar, v_th: Scalar, opts: SomaOptions):
    """:func:`lif_step` with options already checked (``opts``): the form the neurons call."""
    return _charge_fire_reset(y, v, beta, 1.0 / v_th, opts)


def seq(y: torch.Tensor, v0: torch.Tensor | None, beta: Scalar, v_th: Scalar, opts: SomaOptions):
    """:func:`lif_seq` with options already checked (``opts``): the form the neurons and ops call."""
    inv_vth = 1.0 / v_th
    v = torch.zeros_like(y[0]) if v0 is None else v0
    spikes = []
    # unbind, not y[t]: the backward of T separate index ops would build T full-size [T, ...] gradients.
    for y_t in y.unbind(0):
        s, v = _charge_fire_reset(y_t, v, beta, inv_vth, opts)
        spikes.append(s)
    return torch.stack(spikes), v


def lif_step(y: torch.Tensor, v: torch.Tensor, beta: Scalar, v_th: Scalar = 1.0, *,
             v_reset: float = SomaOptions.v_reset, reset: str = SomaOptions.reset,
             detach_reset: bool = SomaOptions.detach_reset, grad_mode: str = SomaOptions.grad_mode,
             surrogate: Surrogate = SomaOptions.surrogate, alpha: float | None = SomaOptions.alpha):
    """One LIF step.

    Args:
        y (torch.Tensor): input current of shape ``[B, *]``.
        v (torch.Tensor): membrane after the previous step (threshold units), broadcastable to ``y``.
        beta (float or torch.Tensor): leak factor β, broadcastable to ``y``.
        v_th (float or torch.Tensor): threshold, broadcastable to ``y``. Default: ``1.0``.
        v_reset (float): hard-reset value in threshold units. Default: ``0.0``.
        reset (str): ``"hard"``, ``"soft"`` or ``"none"``. Default: ``"hard"``.
        detach_reset (bool): detach s_t in the reset term. Default: ``False``.
        grad_mode (str): ``"bptt"`` or ``"local"``. Default: ``"bptt"``.
        surrogate (str or callable): name (see :mod:`snn_ssm.functional.surrogate`) or ``x -> spikes`` callable.
        alpha (float, optional): surrogate sharpness for a named surrogate.

    Returns:
        ``(s, v_next)``: spikes in {0, 1} and the membrane after reset, both shaped like ``y``.

    Examples::

        >>> s, v = lif_step(torch.tensor([0.6, 1.2]), torch.tensor([0.5, 0.0]), beta=0.5)
        >>> s, v
        (tensor([0., 1.]), tensor([0.8500, 0.0000]))
    """
    return step(y, v, beta, v_th, SomaOptions(reset, v_reset, detach_reset, grad_mode, surrogate, alpha))


def lif_seq(y: torch.Tensor, v0: torch.Tensor | None, beta: Scalar, v_th: Scalar = 1.0, *,
            v_reset: float = SomaOptions.v_reset, reset: str = SomaOptions.reset,
            detach_reset: bool = SomaOptions.detach_reset, grad_mode: str = SomaOptions.grad_mode,
            surrogate: Surrogate = SomaOptions.surrogate, alpha: float | None = SomaOptions.alpha):
    """The LIF over a whole sequence ``y`` ``[T, B, *]`` (the reference every fused kernel must reproduce).

    ``v0`` is the membrane before the first step (``None`` = zeros); other arguments as in :func:`lif_step`, with
    ``beta``/``v_th`` broadcastable to one step ``y[0]``. Returns ``(s [T, B, *], v_T [B, *])``.

    Examples::

        >>> s, v = lif_seq(torch.tensor([[0.6], [0.6], [0.6]]), None, beta=0.5)
        >>> s.flatten().tolist(), v.item()   # u' = 0.6, 0.9, 1.05 -> fires at t=2, hard reset to 0
        ([0.0, 0.0, 1.0], 0.0)
    """
    return seq(y, v0, beta, v_th, SomaOptions(reset, v_reset, detach_reset, grad_mode, surrogate, alpha))
