"""S4D as a module: the "dendrite" of SpikingSSM (parameters, kernel, convolution and recurrent step)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .. import _checks
from ..functional import s4d
from ._channels import ChannelModule

__all__ = ["S4DDendrite", "S4DOptions", "SSM_OPTIM"]

# Optimizer treatment of the SSM parameters (A, dt, B), as the S4 family trains them: their own small learning
# rate and no weight decay. Read by :func:`snn_ssm.param_groups`.
SSM_OPTIM = {"lr": 1e-3, "weight_decay": 0.0}


@dataclass(frozen=True)
class S4DOptions:
    """The options of an S4D dendrite, checked once, when the object is built; their defaults are the defaults of
    every neuron, layer and model with an S4D inside.

    Args:
        d_state (int): real state size N (N/2 complex modes). Default: ``64``.
        init (str): ``"lin"`` (S4D-Lin) or ``"inv"`` (S4D-Inv). Default: ``"lin"``.
        disc (str): ``"zoh"`` or ``"bilinear"``. Default: ``"zoh"``.
        dt_min, dt_max (float): range of the log-uniform step Δ. Default: ``1e-3``, ``1e-1``.
        trainable_B (bool): learn B (else fixed to 1, S4D's default). Default: ``False``.
        bidirectional (bool): two-sided kernel with a second C (non-causal; no recurrent step). Default: ``False``.

    Examples::

        >>> S4DOptions(d_state=16).d_state
        16
        >>> opts, rest = S4DOptions.split({"d_state": 16, "beta": 0.5})   # the S4D keys, and the others
        >>> opts.d_state, rest
        (16, {'beta': 0.5})
    """

    d_state: int = 64
    init: str = "lin"
    disc: str = "zoh"
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    trainable_B: bool = False
    bidirectional: bool = False

    def __post_init__(self):
        if isinstance(self.d_state, bool) or not isinstance(self.d_state, int) or self.d_state < 2 or self.d_state % 2:
            raise ValueError(f"d_state must be an even int >= 2 (N/2 complex modes), got {self.d_state!r}")
        _checks.one_of(self.init, "init", ("lin", "inv"))
        _checks.one_of(self.disc, "disc", ("zoh", "bilinear"))
        s4d.check_dt_range(self.dt_min, self.dt_max)

    @classmethod
    def split(cls, kwargs: dict) -> "tuple[S4DOptions, dict]":
        """``(S4DOptions built from the S4D keys of kwargs, the other keys)``: how a layer that takes both S4D and
        soma keywords hands each group to its owner."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in kwargs.items() if k in names}), \
            {k: v for k, v in kwargs.items() if k not in names}


class Discrete(NamedTuple):
    dA: torch.Tensor  # (C N/2) complex
    dB: torch.Tensor  # (C N/2) complex
    log_dA: torch.Tensor  # (C N/2) complex
    C: torch.Tensor  # (K C N/2) complex, K = 2 when bidirectional
    D: torch.Tensor  # (C)


class S4DDendrite(ChannelModule):
    """Diagonal SSM per channel with a D skip, applied along time.

    Args:
        channels (int, optional): channel count H; ``None`` infers it from the first input. Default: ``None``.
        shared (bool): one set of parameters for all channels. Default: ``False``.
        options (S4DOptions, optional): the S4D options as one object, or
        **kwargs: as keywords: ``d_state``, ``init``, ``disc``, ``dt_min``, ``dt_max``, ``trainable_B``,
            ``bidirectional`` (see :class:`S4DOptions` for meanings and defaults).

    Parameters ``log_dt``, ``log_A_real``, ``A_imag`` (and ``B`` when trainable) carry ``_optim = SSM_OPTIM``.

    Examples::

        >>> ssm = S4DDendrite(8, d_state=16)
        >>> ssm(torch.randn(100, 2, 8, 1)).shape      # [T, B, C, M]
        torch.Size([100, 2, 8, 1])
    """

    _channel_key = "log_dt"

    def __init__(self, channels: int | None = None, *, shared: bool = False, options: S4DOptions | None = None,
                 device=None, dtype=None, **kwargs):
        super().__init__(channels, shared, device, dtype)
        if options is not None and kwargs:
            raise TypeError(f"give the S4D options either as options= or as keywords, not both: {sorted(kwargs)}")
        self.options = options if options is not None else S4DOptions(**kwargs)
        self._maybe_build()

    # The options as attributes (read-only views of ``options``).
    d_state = property(lambda self: self.options.d_state)
    init = property(lambda self: self.options.init)
    disc = property(lambda self: self.options.disc)
    dt_min = property(lambda self: self.options.dt_min)
    dt_max = property(lambda self: self.options.dt_max)
    trainable_B = property(lambda self: self.options.trainable_B)
    bidirectional = property(lambda self: self.options.bidirectional)

    def _build(self, rows: int) -> None:
        fk = self.factory
        modes = self.d_state // 2
        log_A_real, A_imag = s4d.init_A(rows, modes, self.init, **fk)
        self.log_dt = nn.Parameter(s4d.log_uniform_dt(rows, self.dt_min, self.dt_max, **fk))
        self.log_A_real = nn.Parameter(log_A_real)
        self.A_imag = nn.Parameter(A_imag)
        B = torch.view_as_real(torch.ones(rows, modes, dtype=torch.complex128)).to(**fk)
        if self.trainable_B:
            self.B = nn.Parameter(B)
        else:
            self.register_buffer("B", B)
        k = 2 if self.bidirectional else 1
        # Complex C ~ CN(0, 1) as S4D draws it; stored as a real view so .to(dtype) keeps both parts.
        self.C = nn.Parameter(torch.randn(k, rows, modes, 2, **fk) * math.sqrt(0.5))
        self.D = nn.Parameter(torch.randn(rows, **fk))
        ssm = [self.log_dt, self.log_A_real, self.A_imag] + ([self.B] if self.trainable_B else [])
        for p in ssm:
            p._optim = dict(SSM_OPTIM)

    def discrete(self, channels: int) -> Discrete:
        """Discretised parameters, expanded to ``channels`` rows when shared.

        Without autograd (evaluation, generation) the result is kept until a parameter changes (an optimizer step
        or ``load_state_dict`` bumps its version; ``.to()`` gives new storage), so a step-by-step loop discretises
        once instead of at every step."""
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            return self._discrete(channels)
        key = (channels,) + tuple((t.data_ptr(), t._version, t.dtype) for t in
                                  (self.log_dt, self.log_A_real, self.A_imag, self.B, self.C, self.D))
        cached = self.__dict__.get("_discrete_cache")
        if cached is None or cached[0] != key:
            cached = self.__dict__["_discrete_cache"] = (key, self._discrete(channels))
        return cached[1]

    def _discrete(self, channels: int) -> Discrete:
        A = torch.complex(-torch.exp(self.log_A_real), self.A_imag)
        dA, dB, log_dA = s4d.discretize(A, torch.exp(self.log_dt), torch.view_as_complex(self.B), self.disc)
        C = torch.view_as_complex(self.C)
        D = self.D
        if self.shared and channels != 1:
            dA, dB, log_dA = (t.expand(channels, -1) for t in (dA, dB, log_dA))
            C, D = C.expand(-1, channels, -1), D.expand(channels)
        return Discrete(dA, dB, log_dA, C, D)

    def kernel(self, length: int, channels: int | None = None) -> torch.Tensor:
        """Convolution kernel ``[length, C]`` (``[2·length, C]`` two-sided when bidirectional)."""
        return self._kernel(self.discrete(channels or self.rows), length)

    def _kernel(self, p: Discrete, length: int) -> torch.Tensor:
        ks = [s4d.vandermonde_kernel(p.log_dA, p.dB, c, length) for c in p.C]
        return s4d.bidirectional_kernel(*ks) if self.bidirectional else ks[0]

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None, *, skip: bool = True) -> torch.Tensor:
        """``y = K * x + D·x`` (+ the free response of state ``h0``) for ``x`` ``[T, B, C, M]``; ``skip=False``
        leaves out ``D·x``."""
        _checks.check_tensor(x, "x", min_ndim=4, layout="[T, B, C, M]", device_of=self._anchor)
        if x.ndim != 4:
            raise ValueError(f"x must have layout [T, B, C, M], got shape {tuple(x.shape)}")
        self.ensure_channels(x.shape[2])
        return self.convolve(x.to(self._anchor.dtype), h0, self.discrete(x.shape[2]), skip)

    def convolve(self, x: torch.Tensor, h0: torch.Tensor | None, p: Discrete, skip: bool = True) -> torch.Tensor:
        """:meth:`forward` with discretised parameters ``p`` computed once by the caller; ``skip=False`` leaves out
        ``D·x`` (for a caller that fuses it into the next op, as the soma kernels do)."""
        T = x.shape[0]
        y = s4d.fft_conv(x, self._kernel(p, T))  # (T B C M)
        if skip:
            y = y + p.D[:, None] * x
        if h0 is not None:
            y = y + s4d.state_response(h0, p.log_dA, p.C[0], T)
        return y

    def final_state(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """The state after the last step of ``x`` ``[T, B, C, M]`` from ``h0``: ``[B, C, M, N/2]`` complex."""
        p = self.discrete(x.shape[2])
        return s4d.final_state(x, h0, p.log_dA, p.dB)

    def step(self, x: torch.Tensor, h: torch.Tensor | None):
        """One recurrent step for ``x`` ``[B, C, M]``; ``h`` ``[B, C, M, N/2]`` complex or ``None``."""
        if self.bidirectional:
            raise ValueError("a bidirectional S4D is non-causal and has no step-by-step form")
        p = self.discrete(x.shape[1])
        if h is None:
            h = x.new_zeros((*x.shape, self.d_state // 2), dtype=p.dA.dtype)
        return s4d.step(x, h, p.dA, p.dB, p.C[0], p.D)

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, d_state={self.d_state}, init={self.init!r}, disc={self.disc!r}, "
                f"dt=[{self.dt_min:g}, {self.dt_max:g}], trainable_B={self.trainable_B}, "
                f"bidirectional={self.bidirectional}, shared={self.shared}")
