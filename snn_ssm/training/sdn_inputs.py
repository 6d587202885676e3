"""Inputs and exact targets for training and checking an SDN: soma inputs ``x`` ``[T, N]`` and the exact neuron's
carried membrane ``m_t = β·v_{t−1}``, its spikes, and ``p_t = β·u_{t−1}`` (the membrane carried had it not fired),
from rest, threshold 1, hard reset to 0."""
from __future__ import annotations

import torch

__all__ = ["exact_targets", "gaussian", "smooth", "near_threshold", "constant", "sdn_spikes"]


def exact_targets(x: torch.Tensor, beta: float):
    """``(m, s, p)`` ``[T, N]`` of the exact LIF on ``x``: ``u_t = m_t + x_t``, ``s_t = 1[u_t ≥ 1]``,
    ``v_t = u_t − s_t u_t``, ``m_t = β v_{t−1}``, ``p_t = β u_{t−1}`` (``p_1 = 0``) — the same rounded operations as
    :func:`snn_ssm.functional.lif_step` with v_th = 1, so ``m_t = (1 − s_{t−1})·p_t`` holds bit for bit."""
    m, s, p = torch.empty_like(x), torch.empty_like(x), torch.empty_like(x)
    v = torch.zeros_like(x[0])
    u = torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        m[t] = beta * v
        p[t] = beta * u
        u = m[t] + x[t]
        s[t] = (u - 1 >= 0).to(x.dtype)
        v = u - s[t] * u
    return m, s, p


def sdn_spikes(m_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The SDN neuron's spikes ``H(m̂ + x − 1)`` (forward only)."""
    return (m_hat + x - 1 >= 0).to(x.dtype)


def gaussian(T: int, N: int, generator: torch.Generator, std: float = 1.0, mean: float = 0.0) -> torch.Tensor:
    """i.i.d. ``N(mean, std²)`` inputs (the published SDN's training data at std 1)."""
    return torch.randn(T, N, generator=generator) * std + mean


def smooth(T: int, N: int, generator: torch.Generator, rho: float = 0.99, std: float = 1.0) -> torch.Tensor:
    """Stationary AR(1) inputs ``x_t = ρ x_{t−1} + √(1−ρ²)·std·ε_t`` (slowly varying, like SSM outputs)."""
    eps = torch.randn(T, N, generator=generator)
    x = torch.empty(T, N)
    x[0] = eps[0] * std
    c = (1 - rho ** 2) ** 0.5 * std
    for t in range(1, T):
        x[t] = rho * x[t - 1] + c * eps[t]
    return x


def constant(T: int, levels: torch.Tensor) -> torch.Tensor:
    """Constant inputs, one level per column: ``[T, len(levels)]``."""
    return levels.float().expand(T, -1).clone()


def near_threshold(T: int, N: int, generator: torch.Generator, beta: float, noise: float = 0.02) -> torch.Tensor:
    """Piecewise-constant inputs in and around the band ``[1 − β, 1.05)`` where a constant input fires periodically
    (period 2 or more), segments of 32–512 steps, plus small Gaussian noise."""
    x = torch.empty(T, N)
    for n in range(N):
        t = 0
        while t < T:
            length = int(torch.randint(32, 513, (1,), generator=generator))
            level = float(torch.empty(1).uniform_(1 - beta - 0.05, 1.05, generator=generator))
            x[t:t + length, n] = level
            t += length
    return x + noise * torch.randn(T, N, generator=generator)
