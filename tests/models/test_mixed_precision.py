"""Every model trains under CPU autocast(bfloat16): forward and backward run, every gradient is finite, and the
logits stay within bfloat16 rounding of the float32 ones (the FFT convolution runs in float32 inside)."""
import pytest
import torch

import snn_ssm
from snn_ssm.functional import s4d

MODELS = {"SpikingSSM": snn_ssm.SpikingSSM, "S4D": snn_ssm.S4D, "BinaryS4DNet": snn_ssm.BinaryS4DNet,
          "BinaryS4DGSUNet": snn_ssm.BinaryS4DGSUNet, "PSpikeSSM": snn_ssm.PSpikeSSM}


@pytest.mark.parametrize("name", list(MODELS))
def test_autocast_bfloat16_trains(name):
    torch.manual_seed(0)
    kw = dict(seed=0) if name == "PSpikeSSM" else {}
    model = MODELS[name](1, 10, d_model=16, n_layers=2, d_state=8, **kw)
    x, y = torch.rand(40, 4, 1), torch.randint(0, 10, (4,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if name != "PSpikeSSM":  # its samplers draw new noise each call
        torch.testing.assert_close(logits.float(), model(x), rtol=0.05, atol=0.05)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_fft_conv_of_half_input_is_the_float32_result_rounded(dtype):
    x = torch.randn(784, 2, 3, 1)  # 784: not a power of two, which cuFFT's half transforms reject
    K = torch.randn(784, 3) * 0.1
    out = s4d.fft_conv(x.to(dtype), K)
    assert out.dtype == dtype
    torch.testing.assert_close(out, s4d.fft_conv(x.to(dtype).float(), K).to(dtype))
