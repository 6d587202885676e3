import torch

from snn_ssm.functional import s4d
from snn_ssm.layers import S4DDendrite


def test_module_convolution_equals_recurrence():
    d = S4DDendrite(3, d_state=8, disc="bilinear", trainable_B=True, dtype=torch.float64)
    x = torch.randn(40, 2, 3, 4, dtype=torch.float64)
    p = d.discrete(3)
    y_rec, _ = s4d.scan(x, None, p.dA, p.dB, p.C[0], p.D)
    torch.testing.assert_close(d(x), y_rec, rtol=1e-9, atol=1e-9)


def test_ssm_parameters_are_tagged_for_the_optimizer():
    d = S4DDendrite(3, trainable_B=True)
    tagged = {n for n, p in d.named_parameters() if hasattr(p, "_optim")}
    assert tagged == {"log_dt", "log_A_real", "A_imag", "B"}
    assert "B" in dict(S4DDendrite(3).named_buffers())


def test_bidirectional_kernel_has_two_sides():
    d = S4DDendrite(2, bidirectional=True)
    assert d.kernel(16).shape == (32, 2)
    assert d.C.shape[0] == 2
