r"""S4D: a diagonal state-space model as a convolution kernel, an FFT convolution and a recurrence.

Per channel c and mode n (N/2 complex modes stand for a real state of size N; their conjugates are implied, hence
the factor 2·Re):

.. math::

    h_t = \bar A\, h_{t-1} + \bar B\, x_t, \qquad y_t = 2\,\mathrm{Re}\Big(\sum_n C_n h_{t,n}\Big) + D\,x_t

    \text{ZOH:}\; \bar A = e^{\Delta A},\ \bar B = (e^{\Delta A} - 1) A^{-1} B \qquad
    \text{bilinear:}\; \bar A = \frac{1 + \Delta A/2}{1 - \Delta A/2},\ \bar B = \frac{\Delta B}{1 - \Delta A/2}

    K_l = 2\,\mathrm{Re}\Big(\sum_n C_n \bar B_n \bar A_n^{\,l}\Big) \quad\Rightarrow\quad
    y_t = \sum_{s \le t} K_{t-s} x_s + D x_t \ \ (h_{-1} = 0)

Initialisation (Gu et al., "On the Parameterization and Initialization of Diagonal State Space Models", 2022):
S4D-Lin A_n = −1/2 + iπn, S4D-Inv A_n = −1/2 + i(N/π)(N/(2n+1) − 1); Δ log-uniform in [dt_min, dt_max].

Layout: sequences are time-first and flattened to ``[T, B, C, M]`` (C channels that own parameters, M positions
sharing them); states are complex ``[B, C, M, N/2]``; per-channel parameters are ``[C, N/2]`` (C may be 1 = shared).
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "check_dt_range",
    "init_A",
    "log_uniform_dt",
    "discretize",
    "vandermonde_kernel",
    "bidirectional_kernel",
    "fft_conv",
    "step",
    "scan",
    "state_response",
    "final_state",
]


def init_A(channels: int, modes: int, init: str = "lin", *, dtype=torch.float32, device=None):
    """S4D initialisation of the diagonal A as ``(log_A_real, A_imag)``, each ``[channels, modes]``.

    Args:
        channels (int): rows (one per channel; 1 when shared).
        modes (int): complex modes N/2.
        init (str): ``"lin"`` (S4D-Lin, the SpikingSSM choice) or ``"inv"`` (S4D-Inv). Default: ``"lin"``.

    Examples::

        >>> log_re, im = init_A(2, 4, "lin")
        >>> (-torch.exp(log_re[0])).tolist(), (im[0] / math.pi).tolist()
        ([-0.5, -0.5, -0.5, -0.5], [0.0, 1.0, 2.0, 3.0])
    """
    n = torch.arange(modes, dtype=dtype, device=device)
    if init == "lin":
        imag = math.pi * n
    elif init == "inv":
        N = 2 * modes
        imag = N / math.pi * (N / (2 * n + 1) - 1)
    else:
        raise ValueError(f"init must be 'lin' or 'inv', got {init!r}")
    log_real = torch.full((channels, modes), math.log(0.5), dtype=dtype, device=device)
    return log_real, imag.expand(channels, modes).clone()


def check_dt_range(dt_min: float, dt_max: float) -> None:
    """``ValueError`` unless ``0 < dt_min <= dt_max < inf`` (the range of the log-uniform step Δ).

    Examples::

        >>> check_dt_range(1e-3, 1e-1)
        >>> check_dt_range(0.1, 0.01)
        Traceback (most recent call last):
        ...
        ValueError: need 0 < dt_min <= dt_max < inf, got dt_min=0.1, dt_max=0.01
    """
    for name, v in (("dt_min", dt_min), ("dt_max", dt_max)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{name} must be a number, got {v!r}")
    if not 0 < dt_min <= dt_max < math.inf:
        raise ValueError(f"need 0 < dt_min <= dt_max < inf, got dt_min={dt_min}, dt_max={dt_max}")


def log_uniform_dt(channels: int, dt_min: float = 1e-3, dt_max: float = 1e-1, *, generator=None, dtype=torch.float32,
                   device=None) -> torch.Tensor:
    """``log Δ`` drawn uniformly in ``[log dt_min, log dt_max]``, one per channel: ``[channels]``.

    Examples::

        >>> dt = torch.exp(log_uniform_dt(1000, 1e-3, 1e-1))
        >>> bool((dt >= 1e-3).all() and (dt <= 1e-1).all())
        True
    """
    check_dt_range(dt_min, dt_max)
    u = torch.rand(channels, generator=generator, dtype=dtype, device=device)
    return u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)


def discretize(A: torch.Tensor, dt: torch.Tensor, B: torch.Tensor, method: str = "zoh"):
    """Discrete ``(dA, dB)`` from continuous complex ``A, B`` ``[C, N/2]`` and step ``dt`` ``[C]``.

    Also returns ``log dA`` (exact for ZOH, the principal log for bilinear), used for Vandermonde powers.

    Examples::

        >>> A = torch.complex(torch.full((1, 2), -0.5), torch.tensor([[0.0, 3.14]]))
        >>> dA, dB, log_dA = discretize(A, torch.tensor([0.1]), torch.ones(1, 2, dtype=torch.cfloat), "zoh")
        >>> dA.shape, bool((dA.abs() < 1).all())
        (torch.Size([1, 2]), True)
    """
    dtA = dt[:, None] * A  # (C N/2)
    if method == "zoh":
        dA = torch.exp(dtA)
        return dA, (dA - 1) / A * B, dtA
    if method == "bilinear":
        half = 1 - dtA / 2
        dA = (1 + dtA / 2) / half
        return dA, dt[:, None] * B / half, torch.log(dA)
    raise ValueError(f"method must be 'zoh' or 'bilinear', got {method!r}")


def vandermonde_kernel(log_dA: torch.Tensor, dB: torch.Tensor, C: torch.Tensor, length: int) -> torch.Tensor:
    """Convolution kernel ``K[l, c] = 2 Re Σ_n C[c,n] dB[c,n] dA[c,n]^l`` for ``l < length``: ``[length, C]``.

    Examples::

        >>> log_dA = torch.log(torch.tensor([[0.5 + 0j]]))
        >>> one = torch.ones(1, 1, dtype=torch.cfloat)
        >>> vandermonde_kernel(log_dA, one, one, 4)[:, 0]
        tensor([2.0000, 1.0000, 0.5000, 0.2500])
    """
    l = torch.arange(length, device=log_dA.device, dtype=log_dA.real.dtype)
    powers = torch.exp(log_dA[..., None] * l)  # (C N/2 L)
    return 2 * torch.einsum("cn,cnl->lc", C * dB, powers).real


def bidirectional_kernel(k_fwd: torch.Tensor, k_bwd: torch.Tensor) -> torch.Tensor:
    """Two-sided kernel of length ``2L`` from a causal ``k_fwd`` and an anti-causal ``k_bwd`` (each ``[L, C]``).

    Used with :func:`fft_conv`: output t sees ``k_fwd[t-s]·x_s`` for ``s <= t`` and ``k_bwd[s-t-1]·x_s`` for
    ``s > t`` (SpikingSSM's and S4's construction: ``k_fwd`` right-padded plus ``k_bwd`` flipped and left-padded).

    Examples::

        >>> bidirectional_kernel(torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [4.0]]))[:, 0]
        tensor([1., 2., 4., 3.])
    """
    zeros = torch.zeros_like(k_fwd)
    return torch.cat([k_fwd, zeros]) + torch.cat([zeros, k_bwd.flip(0)])


def fft_conv(x: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Convolve ``x`` ``[T, B, C, M]`` along time with ``K`` ``[L, C]`` (``L = T`` causal, ``L = 2T`` two-sided).

    Zero-padded to 2T, so the causal result equals the linear convolution ``Σ_{s<=t} K[t-s] x_s`` exactly
    (up to FFT rounding).

    Examples::

        >>> x = torch.zeros(5, 1, 1, 1); x[0] = 1                   # an impulse
        >>> y = fft_conv(x, torch.tensor([[1.0], [0.5], [0.25], [0.0], [0.0]])).flatten()
        >>> torch.allclose(y, torch.tensor([1.0, 0.5, 0.25, 0.0, 0.0]), atol=1e-6)    # up to FFT rounding
        True
    """
    T = x.shape[0]
    if K.shape[0] not in (T, 2 * T):
        raise ValueError(f"K must have length T={T} (causal) or 2T (two-sided), got {K.shape[0]}")
    n = 2 * T
    if x.numel() == 0:  # an empty batch: FFT libraries reject zero-size transforms
        return x.new_zeros(x.shape)
    # Half inputs (autocast, .half()) are transformed in float32: cuFFT has no bfloat16 and takes float16 only at
    # power-of-two lengths, and the long sums of the convolution need the mantissa. The result keeps x's dtype.
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    with torch.autocast(x.device.type, enabled=False):
        Xf = torch.fft.rfft(x.to(work), n=n, dim=0)  # (n/2+1 B C M)
        Kf = torch.fft.rfft(K.to(work), n=n, dim=0)[:, None, :, None]  # (n/2+1 1 C 1)
        return torch.fft.irfft(Xf * Kf, n=n, dim=0)[:T].to(x.dtype)


def step(x: torch.Tensor, h: torch.Tensor, dA: torch.Tensor, dB: torch.Tensor, C: torch.Tensor, D: torch.Tensor):
    """One recurrent step: ``x`` ``[B, C, M]``, ``h`` ``[B, C, M, N/2]`` → ``(y [B, C, M], h_next)``.

    Examples::

        >>> dA, dB = torch.full((1, 2), 0.5 + 0j), torch.ones(1, 2, dtype=torch.cfloat)
        >>> y, h = step(torch.ones(3, 1, 1), torch.zeros(3, 1, 1, 2, dtype=torch.cfloat), dA, dB,
        ...             torch.ones(1, 2, dtype=torch.cfloat), torch.zeros(1))
        >>> y.flatten().tolist(), h.shape
        ([4.0, 4.0, 4.0], torch.Size([3, 1, 1, 2]))
    """
    h = dA[:, None] * h + dB[:, None] * x[..., None]  # (B C M N/2)
    y = 2 * (C[:, None] * h).sum(-1).real + D[:, None] * x  # a product and a sum: fewer ops than an einsum
    return y.to(x.dtype), h


def scan(x: torch.Tensor, h0: torch.Tensor | None, dA, dB, C, D):
    """The recurrence over a whole sequence (reference for the convolution): ``x`` ``[T, B, C, M]``.

    Returns ``(y [T, B, C, M], h_T)``; ``h0 = None`` starts from zeros.

    Examples::

        >>> dA, dB = torch.full((1, 1), 0.5 + 0j), torch.ones(1, 1, dtype=torch.cfloat)
        >>> y, h = scan(torch.ones(3, 1, 1, 1), None, dA, dB, torch.ones(1, 1, dtype=torch.cfloat), torch.zeros(1))
        >>> y.flatten().tolist()
        [2.0, 3.0, 3.5]
    """
    _, Bsz, Ch, M = x.shape
    h = h0 if h0 is not None else x.new_zeros((Bsz, Ch, M, dA.shape[-1]), dtype=dA.dtype)
    ys = []
    for x_t in x.unbind(0):  # unbind, not x[t]: see snn_ssm.functional.lif.lif_seq
        y, h = step(x_t, h, dA, dB, C, D)
        ys.append(y)
    return torch.stack(ys), h


def state_response(h0: torch.Tensor, log_dA: torch.Tensor, C: torch.Tensor, length: int) -> torch.Tensor:
    """Output of the free recurrence from state ``h0`` ``[B, C, M, N/2]``: ``2 Re Σ_n C dA^(t+1) h0``
    ``[T, B, C, M]``.

    Examples::

        >>> h0 = torch.ones(1, 1, 1, 1, dtype=torch.cfloat)
        >>> state_response(h0, torch.log(torch.tensor([[0.5 + 0j]])), torch.ones(1, 1, dtype=torch.cfloat), 3).flatten()
        tensor([1.0000, 0.5000, 0.2500])
    """
    t = torch.arange(1, length + 1, device=log_dA.device, dtype=log_dA.real.dtype)
    powers = torch.exp(log_dA[..., None] * t)  # (C N/2 T)
    return 2 * torch.einsum("cn,cnt,bcmn->tbcm", C, powers, h0).real


def final_state(x: torch.Tensor, h0: torch.Tensor | None, log_dA: torch.Tensor, dB: torch.Tensor) -> torch.Tensor:
    """State after the last step, ``dA^T h0 + Σ_s dA^(T-1-s) dB x_s``, computed without the loop: ``[B, C, M, N/2]``.

    Examples::

        >>> log_dA = torch.log(torch.tensor([[0.5 + 0j]]))
        >>> h = final_state(torch.ones(3, 1, 1, 1), None, log_dA, torch.ones(1, 1, dtype=torch.cfloat))
        >>> h.flatten().real.tolist()
        [1.75]
    """
    T = x.shape[0]
    lag = torch.arange(T - 1, -1, -1, device=log_dA.device, dtype=log_dA.real.dtype)
    powers = torch.exp(log_dA[..., None] * lag)  # (C N/2 T)
    h = torch.einsum("cnt,tbcm->bcmn", powers * dB[..., None], x.to(powers.dtype))
    if h0 is not None:
        h = h + torch.exp(log_dA * T)[:, None] * h0
    return h
