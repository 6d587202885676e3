"""S4 DPLR (HiPPO-LegS, bilinear, frequency-space kernel) against the recurrence it discretises and against S4D."""
import pytest
import torch

from snn_ssm.functional import s4, s4d
from snn_ssm.layers.s4 import S4DPLR


def test_legs_matrices_and_their_normal_plus_low_rank_form():
    A, B = s4.hippo_legs(4)
    assert torch.equal(A[0], torch.tensor([-1.0, 0, 0, 0], dtype=torch.float64))
    assert A[2, 1] == pytest.approx(-(5 * 3) ** 0.5) and A[1, 1] == -2 and B[3] == pytest.approx(7 ** 0.5)
    lam, P, Bt = s4.nplr_legs(8)
    assert torch.allclose(lam.real, torch.full((4,), -0.5, dtype=torch.float64)) and bool((lam.imag > 0).all())
    # Λ − P P* (both conjugate halves) is A in another basis: same spectrum and the same response to B
    full = torch.cat([lam, lam.conj()])
    Pf, Bf = torch.cat([P, P.conj()]), torch.cat([Bt, Bt.conj()])
    A8, B8 = s4.hippo_legs(8)
    M = torch.diag(full) - Pf[:, None] * Pf.conj()[None]
    for z in (0.3 + 1j, 2.0 - 0.5j):  # ||(zI - A)^-1 B|| does not depend on the (unitary) basis
        eye = torch.eye(8, dtype=torch.complex128)
        r1 = torch.linalg.solve(z * eye - A8.to(torch.complex128), B8.to(torch.complex128))
        r2 = torch.linalg.solve(z * eye - M, Bf)
        assert torch.linalg.norm(r1).item() == pytest.approx(torch.linalg.norm(r2).item(), rel=1e-9)


@pytest.mark.parametrize("N, L", [(8, 1), (16, 37), (32, 64)])
def test_kernel_equals_the_recurrence_it_discretises(N, L):
    g = torch.Generator().manual_seed(N + L)
    lam, P, B = s4.nplr_legs(N)
    C = torch.randn(2, N // 2, dtype=torch.complex128, generator=g)
    dt = torch.tensor([0.02, 0.4], dtype=torch.float64)
    K = s4.dplr_kernel(lam[None], P[None], B[None], C, dt, L)
    assert K.shape == (L, 2)
    for h in range(2):
        dA, dB, C_rec = s4.dplr_dense(lam, P, B, C[h], float(dt[h]), L)
        h_state, ref = dB, []
        for _ in range(L):  # K_l = C dA^l dB by stepping the state
            ref.append(C_rec @ h_state)
            h_state = dA @ h_state
        ref = torch.stack(ref)
        assert ref.imag.abs().max() < 1e-10  # a real system
        torch.testing.assert_close(K[:, h], ref.real, rtol=1e-9, atol=1e-11)


def test_diagonal_special_case_is_bilinear_s4d():
    lam, P, B = s4.nplr_legs(16)
    C = torch.randn(1, 8, dtype=torch.complex128)
    dt, L = torch.tensor([0.1], dtype=torch.float64), 50
    K = s4.dplr_kernel(lam[None], torch.zeros_like(P)[None], B[None], C, dt, L)
    dA, dB, log_dA = s4d.discretize(lam[None], dt, B[None], "bilinear")
    K_s4d = s4d.vandermonde_kernel(log_dA, dB, C / (1 - dA ** L), L)  # C̃ = C (1 - dA^L)
    torch.testing.assert_close(K, K_s4d, rtol=1e-9, atol=1e-11)


def test_module_convolution_equals_the_recurrence_shared_and_per_channel():
    torch.manual_seed(0)
    for n_ssm in (1, None, 2):
        ssm = S4DPLR(4, d_state=8, n_ssm=n_ssm, dtype=torch.float64)
        x = torch.randn(30, 2, 4, 1, dtype=torch.float64)
        y = ssm(x)
        lam = torch.complex(-torch.exp(ssm.log_A_real), ssm.A_imag).detach()
        P, B = (torch.view_as_complex(t).detach() for t in (ssm.P, ssm.B))
        C = torch.view_as_complex(ssm.C)[0].detach()
        for h in range(4):
            r = h % ssm.n_ssm  # the official S4 tiles the copies over the channels
            dA, dB, C_rec = s4.dplr_dense(lam[r], P[r], B[r], C[h], float(ssm.log_dt[h].detach().exp()), 30)
            state = torch.zeros(8, 2, dtype=torch.complex128)
            for t in range(30):
                state = dA @ state + dB[:, None] * x[t, :, h, 0]
                expected = (C_rec @ state).real + ssm.D[h].detach() * x[t, :, h, 0]
                torch.testing.assert_close(y[t, :, h, 0], expected, rtol=1e-8, atol=1e-9)


def test_module_bidirectional_gradients_and_bad_input():
    ssm = S4DPLR(6, d_state=8, bidirectional=True)
    x = torch.randn(20, 3, 6, 1)
    y = ssm(x)
    x2 = x.clone()
    x2[15] += 1
    assert not torch.equal(ssm(x2)[10], y[10])  # non-causal
    y.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in ssm.parameters())
    assert all(getattr(p, "_optim", None) for p in (ssm.P, ssm.B, ssm.log_dt))
    with pytest.raises(ValueError, match="n_ssm"):
        S4DPLR(6, n_ssm=4)
    with pytest.raises(ValueError, match="d_state"):
        S4DPLR(6, d_state=7)
    with pytest.raises(ValueError, match=r"layout \[T, B, H=6, M\]"):
        ssm(torch.randn(20, 3, 5, 1))


def test_several_output_vectors_share_one_kernel_computation():
    """A two-sided layer's two C̃ in one call: each kernel equals its own call's, and the shapes stack in front."""
    g = torch.Generator().manual_seed(3)
    lam, P, B = s4.nplr_legs(16)
    C = torch.randn(2, 3, 8, dtype=torch.complex128, generator=g)
    dt = torch.tensor([0.01, 0.1, 0.5], dtype=torch.float64)
    K = s4.dplr_kernel(lam[None], P[None], B[None], C, dt, 40)
    assert K.shape == (2, 40, 3)
    for i in range(2):
        torch.testing.assert_close(K[i], s4.dplr_kernel(lam[None], P[None], B[None], C[i], dt, 40),
                                   rtol=1e-12, atol=1e-14)


def test_float32_kernel_is_the_float64_kernel_to_float32_accuracy():
    """The psMNIST size (H = 400, N = 64, L = 784): the float32 kernel within 1e-5 of the float64 one (relative,
    in norm); the shared-denominator products must not lose more than the FFT's rounding."""
    torch.manual_seed(0)
    ssm = S4DPLR(400, d_state=64, n_ssm=1, bidirectional=True)
    with torch.no_grad():
        K32 = ssm.kernel(784)
        K64 = ssm.double().kernel(784)
    assert float((K32.double() - K64).norm() / K64.norm()) < 1e-5
