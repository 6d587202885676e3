import pytest
import torch

from snn_ssm.blocks import ResidualBlock, S4DLayer, SpikingS4D, TimeTiedDropout


def test_spiking_layer_shapes_spikes_and_gradients():
    layer = SpikingS4D(8, d_state=16)
    seen = []
    layer.soma.register_forward_hook(lambda m, i, o: seen.append(o))
    x = torch.randn(50, 3, 8, requires_grad=True)
    y = layer(x)
    assert y.shape == (50, 3, 8)
    spikes = seen[0]
    assert set(spikes.unique().tolist()) <= {0.0, 1.0} and 0 < spikes.mean() < 1
    y.sum().backward()
    assert x.grad.abs().sum() > 0 and layer.soma.ln_vth.grad.abs().sum() > 0
    assert layer.dendrite.log_dt.grad.abs().sum() > 0


def test_layer_is_stateless_between_calls():
    layer = SpikingS4D(4)
    x = torch.randn(20, 2, 4)
    assert torch.equal(layer(x), layer(x))


def test_s4d_twin_and_bidirectional():
    assert S4DLayer(8)(torch.randn(10, 2, 8)).shape == (10, 2, 8)
    x = torch.randn(12, 1, 4, 1)
    x2 = x.clone()
    x2[-1] += 5.0  # a later input changes earlier dendrite outputs only when non-causal
    two_sided = SpikingS4D(4, bidirectional=True).dendrite
    assert (two_sided(x2)[:5] - two_sided(x)[:5]).abs().max() > 1e-3
    causal = SpikingS4D(4).dendrite
    torch.testing.assert_close(causal(x2)[:5], causal(x)[:5], atol=1e-5, rtol=0)


def test_dropout_is_tied_over_time():
    d = TimeTiedDropout(0.5)
    y = d(torch.ones(30, 4, 16))
    assert torch.equal(y, y[:1].expand_as(y)) and set(y.unique().tolist()) == {0.0, 2.0}
    d.eval()
    assert torch.equal(d(torch.ones(3, 1, 2)), torch.ones(3, 1, 2))


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_postnorm_really_normalises(norm):
    block = ResidualBlock(S4DLayer(16), 16, norm=norm, prenorm=False)
    y = block(torch.randn(40, 6, 16) * 3 + 2)
    if norm == "layer":
        torch.testing.assert_close(y.mean(-1), torch.zeros(40, 6), atol=1e-5, rtol=0)
        torch.testing.assert_close(y.std(-1, unbiased=False), torch.ones(40, 6), atol=1e-3, rtol=0)
    else:
        torch.testing.assert_close(y.mean((0, 1)), torch.zeros(16), atol=1e-5, rtol=0)


def test_bad_layer_input():
    layer = SpikingS4D(4)
    with pytest.raises(ValueError, match=r"\[T, B, H=4\]"):
        layer(torch.randn(5, 2, 3))
    with pytest.raises(ValueError, match="layout"):
        layer(torch.randn(5, 4))
    with pytest.raises(TypeError, match="floating"):
        layer(torch.zeros(5, 2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="dropout"):
        TimeTiedDropout(1.0)
    with pytest.raises(ValueError, match="norm must be"):
        ResidualBlock(S4DLayer(4), 4, norm="group")
