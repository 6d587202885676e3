r"""S4 with a diagonal-plus-low-rank (DPLR) state matrix: HiPPO-LegS in its normal-plus-low-rank form, and the
bilinear convolution kernel computed in frequency space (Cauchy sums + Woodbury identity).

This is the SSM P-SpikeSSM's code trains (``mode: nplr``, ``init: legs``, bilinear). In the eigenbasis of its normal
part the LegS matrix is

.. math:: A = \Lambda - P P^*, \qquad \Lambda = \mathrm{diag}(\lambda_n),\ \mathrm{Re}\,\lambda_n = -\tfrac12,

with rank one; N real states are N/2 complex modes whose conjugates are implied (every sum over modes below runs
over both halves). With the bilinear rule, :math:`\bar A = (I - \tfrac{\Delta}{2} A)^{-1}(I + \tfrac{\Delta}{2} A)`,
:math:`\bar B = \Delta (I - \tfrac{\Delta}{2} A)^{-1} B`, the kernel :math:`K_l = C \bar A^l \bar B` (:math:`l < L`)
has the discrete Fourier transform (at :math:`\omega_k = e^{-2\pi i k / L}`)

.. math::

    \hat K(\omega) = \tilde C (I - \bar A \omega)^{-1} \bar B
                   = 2\,\tilde C\,\big[g(\omega) I - h(\omega) A\big]^{-1} B,\quad
    g = \tfrac{2}{\Delta}(1 - \omega),\ h = 1 + \omega,\ \tilde C = C (I - \bar A^L)

(:math:`\omega^L = 1` truncates the geometric series). The bracket is diagonal plus rank one, so Woodbury gives

.. math::

    \hat K = 2\Big[k_{CB} - \frac{h\, k_{CP}\, k_{PB}}{1 + h\, k_{PP}}\Big], \qquad
    k_{UV}(\omega) = \sum_n \frac{U_n V_n}{g(\omega) - h(\omega)\lambda_n}

(left vectors :math:`\tilde C` and :math:`P^*`), four Cauchy sums per frequency; :math:`K` is the inverse real FFT.
Written with :math:`g, h` rather than S4's :math:`z = g/h` the expression stays finite at :math:`\omega = -1`. As
in S4, the learned output vector is :math:`\tilde C` itself.
"""
from __future__ import annotations

import math

import torch

__all__ = ["hippo_legs", "nplr_legs", "dplr_kernel", "dplr_dense"]


def hippo_legs(N: int, dtype=torch.float64):
    """The HiPPO-LegS matrices ``(A [N, N], B [N])``: ``A_nk = −√(2n+1)√(2k+1)`` below the diagonal, ``−(n+1)`` on
    it, 0 above; ``B_n = √(2n+1)``.

    Examples::

        >>> A, B = hippo_legs(3)
        >>> A.diagonal().tolist(), B.pow(2).round().tolist()
        ([-1.0, -2.0, -3.0], [1.0, 3.0, 5.0])
    """
    q = torch.sqrt(2 * torch.arange(N, dtype=dtype) + 1)
    A = -torch.tril(q[:, None] * q[None, :], diagonal=-1) - torch.diag(torch.arange(1, N + 1, dtype=dtype))
    return A, q.clone()


def nplr_legs(N: int):
    """LegS as ``A = V (Λ − P P^*) V^*`` with half of the conjugate modes: ``(Λ, P, B)``, each complex ``[N/2]``
    (float64 precision), ``B`` and ``P`` expressed in the eigenbasis.

    ``A + P Pᵀ`` with ``P_n = √(n + 1/2)`` is −1/2 times the identity plus a skew-symmetric matrix, so it is
    normal and diagonalised by a unitary ``V``; the modes with positive imaginary part are kept.

    Examples::

        >>> lam, P, B = nplr_legs(8)
        >>> lam.shape, lam.real.tolist()
        (torch.Size([4]), [-0.5, -0.5, -0.5, -0.5])
    """
    if not isinstance(N, int) or N < 2 or N % 2:
        raise ValueError(f"N must be an even int >= 2, got {N!r}")
    A, B = hippo_legs(N)
    P = torch.sqrt(torch.arange(N, dtype=torch.float64) + 0.5)
    S = A + P[:, None] * P[None, :]
    skew = (S - S.T) / 2  # S = -1/2 I + skew
    w, V = torch.linalg.eigh(skew * -1j)  # skew = i * (Hermitian (-i skew)): eigenvalues i w
    keep = torch.argsort(w, descending=True)[: N // 2]  # positive imaginary parts (one of each conjugate pair)
    lam = torch.complex(torch.full((N // 2,), -0.5, dtype=torch.float64), w[keep])
    V = V[:, keep]
    Vh = V.conj().T
    return lam, Vh @ P.to(torch.complex128), Vh @ B.to(torch.complex128)


def dplr_kernel(lam: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C: torch.Tensor, dt: torch.Tensor,
                length: int) -> torch.Tensor:
    """Bilinear S4 (DPLR) convolution kernel ``[length, H]`` computed in frequency space (see the module docstring).

    Args:
        lam, P, B: ``[H, N/2]`` complex (rows may be shared: broadcastable to ``C``'s last two dimensions).
        C: ``C̃`` ``[H, N/2]`` complex (the learned output vector), or several ``[..., H, N/2]`` (a two-sided
            layer's two): their kernels share the Cauchy denominators, computed once.
        dt: step sizes ``[H]`` (real, positive).
        length: kernel length L.

    Returns:
        ``[length, H]``, or ``[..., length, H]`` for several output vectors.

    The four Cauchy sums per frequency share their denominators ``g − hλ_n``: the reciprocals are formed once,
    ``R [H, F, N]`` (both halves of the conjugate pairs), and every sum is a column of one batched product
    ``R @ W`` with the numerators ``u_n v_n`` as the columns of ``W [H, N, m]``. That is one pass over ``R``
    forward and one in the backward, where a sum at a time would build and differentiate ``[H, F, N]``
    intermediates for each of the ``2 + 2·len(C)`` sums.

    Examples::

        >>> lam, P, B = nplr_legs(16)
        >>> C = torch.randn(2, 8, dtype=torch.cdouble)
        >>> dplr_kernel(lam[None], P[None], B[None], C, torch.tensor([0.01, 0.1], dtype=torch.double), 100).shape
        torch.Size([100, 2])
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    H = dt.shape[0]
    k = torch.arange(length // 2 + 1, device=C.device, dtype=dt.dtype)
    omega = torch.exp(torch.complex(torch.zeros_like(k), -2 * math.pi * k / length))  # (F)
    h = 1 + omega
    g = (2 / dt)[:, None] * (1 - omega)  # (H F)
    lam = lam.expand(H, -1)
    R = torch.reciprocal(g[..., None] - h[:, None] * torch.cat([lam, lam.conj()], -1)[:, None, :])  # (H F N)
    Cs = C.reshape(-1, *C.shape[-2:])  # (n H N/2)
    Pc = P.conj()
    # numerators, one column per sum: C̃B for each C̃, C̃P for each C̃, P*B, P*P; the conjugate modes take the
    # conjugate vectors
    sums = [c * B for c in Cs] + [c * P for c in Cs] + [Pc * B, Pc * P]
    W = torch.stack([torch.cat([uv, uv.conj()], -1).expand(H, -1) for uv in sums], -1)  # (H N m)
    S = torch.bmm(R, W)  # (H F m)
    n = Cs.shape[0]
    k_cb, k_cp, k_pb, k_pp = S[..., :n], S[..., n:2 * n], S[..., 2 * n:2 * n + 1], S[..., 2 * n + 1:]
    hf = h[:, None]
    K_f = 2 * (k_cb - hf * k_cp * k_pb / (1 + hf * k_pp))  # (H F n)
    K = torch.fft.irfft(K_f, n=length, dim=1).permute(2, 1, 0).contiguous()  # (n L H)
    return K.reshape(*C.shape[:-2], length, H)


def dplr_dense(lam: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C: torch.Tensor, dt: float, length: int):
    """The recurrent form the kernel discretises, for one channel and all N states (for tests; float64):
    ``(dA [N, N], dB [N], C_rec [N])`` with ``K_l = C_rec dA^l dB`` and ``C_rec = C̃ (I − dA^L)^{-1}``.

    Examples::

        >>> lam, P, B = nplr_legs(4)
        >>> dA, dB, C = dplr_dense(lam, P, B, torch.ones(2, dtype=torch.cdouble), 0.1, 10)
        >>> dA.shape, dB.shape, C.shape
        (torch.Size([4, 4]), torch.Size([4]), torch.Size([4]))
    """
    lam_f = torch.cat([lam, lam.conj()])
    P_f, B_f, C_f = torch.cat([P, P.conj()]), torch.cat([B, B.conj()]), torch.cat([C, C.conj()])
    A = torch.diag(lam_f) - P_f[:, None] * P_f.conj()[None, :]
    eye = torch.eye(A.shape[0], dtype=A.dtype)
    left = torch.linalg.inv(eye - dt / 2 * A)
    dA = left @ (eye + dt / 2 * A)
    dB = dt * left @ B_f
    C_rec = torch.linalg.solve((eye - torch.linalg.matrix_power(dA, length)).T, C_f)
    return dA, dB, C_rec
