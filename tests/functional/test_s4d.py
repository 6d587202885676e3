import math

import pytest
import torch

from snn_ssm.functional import s4d


def random_ssm(channels=3, modes=4, method="zoh", init="lin", dtype=torch.float64):
    log_re, im = s4d.init_A(channels, modes, init, dtype=dtype)
    A = torch.complex(-torch.exp(log_re + 0.3 * torch.randn_like(log_re)), im + torch.randn_like(im))
    dt = torch.exp(s4d.log_uniform_dt(channels, 1e-2, 0.5, dtype=dtype))
    B = torch.randn(channels, modes, dtype=torch.complex128)
    C = torch.randn(channels, modes, dtype=torch.complex128)
    D = torch.randn(channels, dtype=dtype)
    dA, dB, log_dA = s4d.discretize(A, dt, B, method)
    return dA, dB, log_dA, C, D


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
@pytest.mark.parametrize("init", ["lin", "inv"])
@pytest.mark.parametrize("T", [1, 17, 64])
def test_convolution_equals_recurrence(method, init, T):
    dA, dB, log_dA, C, D = random_ssm(method=method, init=init)
    x = torch.randn(T, 2, 3, 5, dtype=torch.float64)
    K = s4d.vandermonde_kernel(log_dA, dB, C, T)
    y_conv = s4d.fft_conv(x, K) + D[:, None] * x
    y_rec, h_T = s4d.scan(x, None, dA, dB, C, D)
    torch.testing.assert_close(y_conv, y_rec, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(s4d.final_state(x, None, log_dA, dB), h_T, rtol=1e-10, atol=1e-10)


def test_held_state_response_and_final_state():
    dA, dB, log_dA, C, D = random_ssm()
    h0 = torch.randn(2, 3, 5, 4, dtype=torch.complex128)
    x = torch.randn(20, 2, 3, 5, dtype=torch.float64)
    y_rec, h_T = s4d.scan(x, h0, dA, dB, C, D)
    K = s4d.vandermonde_kernel(log_dA, dB, C, 20)
    y = s4d.fft_conv(x, K) + D[:, None] * x + s4d.state_response(h0, log_dA, C, 20)
    torch.testing.assert_close(y, y_rec, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(s4d.final_state(x, h0, log_dA, dB), h_T, rtol=1e-10, atol=1e-10)


def test_bidirectional_kernel_is_two_sided_sum():
    T = 9
    kf, kb = torch.randn(T, 2, dtype=torch.float64), torch.randn(T, 2, dtype=torch.float64)
    x = torch.randn(T, 1, 2, 1, dtype=torch.float64)
    y = s4d.fft_conv(x, s4d.bidirectional_kernel(kf, kb))
    expect = torch.zeros_like(y)
    for t in range(T):
        for s in range(T):
            k = kf[t - s] if s <= t else kb[s - t - 1]
            expect[t] += k[None, :, None] * x[s]
    torch.testing.assert_close(y, expect, rtol=1e-10, atol=1e-10)


def test_kernel_matches_explicit_powers():
    dA, dB, log_dA, C, D = random_ssm()
    K = s4d.vandermonde_kernel(log_dA, dB, C, 6)
    for l in range(6):
        torch.testing.assert_close(K[l], 2 * (C * dB * dA ** l).sum(-1).real, rtol=1e-10, atol=1e-12)


def test_initialisations_and_dt_range():
    log_re, im = s4d.init_A(2, 4, "lin")
    assert torch.allclose(torch.exp(log_re), torch.full((2, 4), 0.5))
    assert torch.allclose(im[0], math.pi * torch.arange(4.0))
    _, im_inv = s4d.init_A(1, 4, "inv")
    # S4D-Inv, N = 8: (N/π)(N/(2n+1) − 1), worked out by hand for n = 0..3
    assert torch.allclose(im_inv[0], torch.tensor([17.825354, 4.244132, 1.527887, 0.363783]))
    dt = torch.exp(s4d.log_uniform_dt(10000, 1e-3, 1e-1))
    assert dt.min() >= 1e-3 and dt.max() <= 1e-1
    # log-uniform: the median sits near the geometric mean 1e-2
    assert 0.8e-2 < dt.median() < 1.25e-2
    with pytest.raises(ValueError, match="dt_min"):
        s4d.log_uniform_dt(3, 0.1, 0.01)
    with pytest.raises(ValueError, match="init"):
        s4d.init_A(2, 2, "legs")
    with pytest.raises(ValueError, match="method"):
        s4d.discretize(torch.ones(1, 1, dtype=torch.complex64), torch.ones(1), torch.ones(1, 1), "euler")


def test_fft_conv_rejects_wrong_kernel_length():
    with pytest.raises(ValueError, match="K must have length"):
        s4d.fft_conv(torch.randn(5, 1, 1, 1), torch.randn(4, 1))
