"""S4 with a DPLR state matrix (HiPPO-LegS, bilinear, frequency-space kernel) as a module: P-SpikeSSM's SSM."""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import _checks
from ..functional import s4, s4d
from .dendrite import SSM_OPTIM

__all__ = ["S4DPLR"]


class S4DPLR(nn.Module):
    """S4 (NPLR/DPLR, HiPPO-LegS) convolution with a D skip along time, for ``x`` ``[T, B, H, M]``.

    Args:
        channels (int): channels H.
        d_state (int): real state size N (N/2 complex modes). Default: ``64``.
        n_ssm (int, optional): independent (Λ, P, B) copies; channel h uses copy ``h mod n_ssm`` (as the official
            S4 code tiles them). ``1`` shares them across channels (P-SpikeSSM's configs), ``None`` gives every
            channel its own (its Pathfinder config). ``C̃`` and Δ are always per channel. Default: ``1``.
        bidirectional (bool): two-sided, non-causal kernel from a second ``C̃``. Default: ``False``.
        dt_min, dt_max (float): range of the log-uniform step Δ. Default: ``1e-3``, ``1e-1``.
        b_clip (float, optional): clip Im(B) of the HiPPO-LegS init (in the eigenbasis) to ``[-b_clip, b_clip]``, as
            the official S4 init does (``B_clip=2``); ``None`` keeps the exact LegS B. Default: ``2.0``.
        l_max (int, optional): the length the kernel is built at (the dataset's maximum, as the official layer fits
            it once); shorter inputs use its first T taps, so a padded batch length does not change the SSM. Longer
            inputs are an error. ``None`` builds it at each input's length. Default: ``None``.

    Parameters ``log_dt``, ``log_A_real``, ``A_imag``, ``P``, ``B`` carry ``_optim = SSM_OPTIM`` (own learning rate,
    no weight decay). Δ is stored as ``log Δ`` (S4 stores it through a softplus; the reachable values are the same).

    Examples::

        >>> ssm = S4DPLR(8, d_state=16)
        >>> ssm(torch.randn(100, 2, 8, 1)).shape
        torch.Size([100, 2, 8, 1])
    """

    def __init__(self, channels: int, *, d_state: int = 64, n_ssm: int | None = 1, bidirectional: bool = False,
                 dt_min: float = 1e-3, dt_max: float = 1e-1, b_clip: float | None = 2.0, l_max: int | None = None,
                 device=None, dtype=None):
        super().__init__()
        _checks.positive_int(channels, "channels")
        if isinstance(d_state, bool) or not isinstance(d_state, int) or d_state < 2 or d_state % 2:
            raise ValueError(f"d_state must be an even int >= 2 (N/2 complex modes), got {d_state!r}")
        n_ssm = channels if n_ssm is None else n_ssm
        if isinstance(n_ssm, bool) or not isinstance(n_ssm, int) or n_ssm < 1 or channels % n_ssm:
            raise ValueError(f"n_ssm must be None or a positive divisor of channels={channels}, got {n_ssm!r}")
        s4d.check_dt_range(dt_min, dt_max)
        if b_clip is not None:
            _checks.positive_number(b_clip, "b_clip")
        self.l_max = _checks.positive_int(l_max, "l_max", allow_none=True)
        self.b_clip = b_clip
        fk = {"device": device, "dtype": dtype}
        self.channels, self.d_state, self.n_ssm, self.bidirectional = channels, d_state, n_ssm, bidirectional
        self.dt_min, self.dt_max = dt_min, dt_max
        lam, P, B = s4.nplr_legs(d_state)
        if b_clip is not None:
            B = torch.complex(B.real, B.imag.clamp(-b_clip, b_clip))
        modes = d_state // 2

        def rows(t):  # (S N/2) complex -> real view parameter (S N/2 2)
            return nn.Parameter(torch.view_as_real(t.expand(n_ssm, modes).clone()).to(**fk))

        self.log_dt = nn.Parameter(s4d.log_uniform_dt(channels, dt_min, dt_max, **fk))
        self.log_A_real = nn.Parameter(torch.log(-lam.real).expand(n_ssm, modes).clone().to(**fk))
        self.A_imag = nn.Parameter(lam.imag.expand(n_ssm, modes).clone().to(**fk))
        self.P, self.B = rows(P), rows(B)
        k = 2 if bidirectional else 1
        self.C = nn.Parameter(torch.randn(k, channels, modes, 2, **fk) * math.sqrt(0.5))  # C̃ ~ CN(0, 1)
        self.D = nn.Parameter(torch.randn(channels, **fk))
        for p in (self.log_dt, self.log_A_real, self.A_imag, self.P, self.B):
            p._optim = dict(SSM_OPTIM)

    def _rows(self, t: torch.Tensor) -> torch.Tensor:
        """Per-copy ``[S, ...]`` → per-channel ``[H, ...]``: channel h takes copy ``h mod S``."""
        return t.repeat(self.channels // self.n_ssm, *(1,) * (t.ndim - 1)) if self.n_ssm != self.channels else t

    def kernel(self, length: int) -> torch.Tensor:
        """Convolution kernel ``[length, H]`` (``[2·length, H]`` two-sided when bidirectional)."""
        lam = self._rows(torch.complex(-torch.exp(self.log_A_real), self.A_imag))
        P, B = (self._rows(torch.view_as_complex(t)) for t in (self.P, self.B))
        dt = torch.exp(self.log_dt)
        ks = s4.dplr_kernel(lam, P, B, torch.view_as_complex(self.C), dt, length)  # (1 or 2, L, H)
        return s4d.bidirectional_kernel(*ks) if self.bidirectional else ks[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = K * x + D·x`` for ``x`` ``[T, B, H, M]``."""
        x = _checks.check_sequence(x, "x", channels=self.channels, like=self.D, ndim=4, layout="[T, B, H, M]")
        T = x.shape[0]
        if self.l_max is None:
            return s4d.fft_conv(x, self.kernel(T)) + self.D[:, None] * x
        if T > self.l_max:
            raise ValueError(f"x has {T} steps but this S4 was built for at most l_max={self.l_max}")
        K = self.kernel(self.l_max)  # the one SSM of this layer, whatever the batch's padded length
        K = torch.cat([K[:T], K[-T:]]) if self.bidirectional else K[:T]  # two-sided: both sides' first T taps
        return s4d.fft_conv(x, K) + self.D[:, None] * x

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, d_state={self.d_state}, n_ssm={self.n_ssm}, "
                f"bidirectional={self.bidirectional}, dt=[{self.dt_min:g}, {self.dt_max:g}], b_clip={self.b_clip}, "
                f"l_max={self.l_max}")
