"""The NaN-poisoning fixture is live, and the hand-written LIF backward passes a float64 ``gradcheck``.

Plan: (1) a buffer from ``torch.empty`` inside an op test is NaN, so the kernel tests in this folder catch unwritten
elements; (2) ``gradcheck`` of ``v_T`` through each CPU backend with ``reset="none"``: the membrane is then a linear
function of the input, initial membrane, β and v_th, so finite differences are exact up to rounding (spikes are
left out: their surrogate gradient is, by design, not the derivative of the Heaviside).
"""
import pytest
import torch

from snn_ssm.ops import dispatch, lif_scan


def test_empty_buffers_are_poisoned():
    assert torch.isnan(torch.empty(3)).all() and torch.isnan(torch.empty_like(torch.zeros(2))).all()


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_lif_scan_membrane_gradcheck_float64(backend):
    if not dispatch.available(backend):
        pytest.skip(f"{backend} is not installed")
    T, B, C = 9, 2, 3
    y = torch.randn(T, B, C, dtype=torch.float64, requires_grad=True)
    v0 = torch.randn(B, C, dtype=torch.float64, requires_grad=True)
    beta = torch.rand(C, dtype=torch.float64).mul(0.8).add(0.1).requires_grad_()
    v_th = torch.rand(C, dtype=torch.float64).add(0.5).requires_grad_()

    def v_T(y, v0, beta, v_th):
        return lif_scan(y, v0, beta, v_th, reset="none", backend=backend)[1]

    assert torch.autograd.gradcheck(v_T, (y, v0, beta, v_th))


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_lif_scan_fused_skip_gradcheck_float64(backend):
    if not dispatch.available(backend):
        pytest.skip(f"{backend} is not installed")
    T, B, C = 7, 2, 3
    y, x = (torch.randn(T, B, C, dtype=torch.float64, requires_grad=True) for _ in range(2))
    d = torch.randn(C, dtype=torch.float64, requires_grad=True)

    def v_T(y, x, d):
        return lif_scan(y, None, 0.7, 1.3, skip_input=x, skip_weight=d, reset="none", backend=backend)[1]

    assert torch.autograd.gradcheck(v_T, (y, x, d))
