"""float64 ``gradcheck`` of the smooth S4D and S4 (DPLR) functions: their autograd gradients equal finite
differences (complex inputs are passed as real views, so the check covers both parts)."""
import torch

from snn_ssm.functional import s4, s4d


def _modes(C=2, M=3):
    A = torch.complex(-torch.rand(C, M, dtype=torch.float64) - 0.1, torch.randn(C, M, dtype=torch.float64))
    dt = torch.rand(C, dtype=torch.float64) * 0.1 + 0.01
    return s4d.discretize(A, dt, torch.ones(C, M, dtype=torch.complex128), "zoh")


def test_vandermonde_kernel_and_fft_conv():
    _, dB, log_dA = _modes()
    C = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    x = torch.randn(11, 2, 2, 1, dtype=torch.float64, requires_grad=True)

    def kernel(c):
        return s4d.vandermonde_kernel(log_dA, dB, torch.view_as_complex(c), 11)

    def conv(x, c):
        return s4d.fft_conv(x, kernel(c))

    assert torch.autograd.gradcheck(kernel, (C,))
    assert torch.autograd.gradcheck(conv, (x, C))


def test_state_response_and_final_state():
    _, dB, log_dA = _modes()
    h0 = torch.randn(2, 2, 1, 3, 2, dtype=torch.float64, requires_grad=True)
    C = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    x = torch.randn(6, 2, 2, 1, dtype=torch.float64, requires_grad=True)

    def response(h0, c):
        return s4d.state_response(torch.view_as_complex(h0), log_dA, torch.view_as_complex(c), 6)

    def final(x, h0):
        return torch.view_as_real(s4d.final_state(x, torch.view_as_complex(h0), log_dA, dB))

    assert torch.autograd.gradcheck(response, (h0, C))
    assert torch.autograd.gradcheck(final, (x, h0))


def test_dplr_kernel():
    lam, P, B = s4.nplr_legs(8)
    C = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True)
    dt = torch.tensor([0.05, 0.1, 0.02], dtype=torch.float64, requires_grad=True)

    def kernel(c, dt):
        return s4.dplr_kernel(lam.to(torch.complex128).expand(3, 4), P.to(torch.complex128).expand(3, 4),
                              B.to(torch.complex128).expand(3, 4), torch.view_as_complex(c), dt, 16)

    assert torch.autograd.gradcheck(kernel, (C, dt))
