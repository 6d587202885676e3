"""SpikeSampler: sampling statistics, the straight-through gradient, seeds, eval modes, norms, adapters."""
import io

import pytest
import torch

from snn_ssm import SpikeSampler


def test_spike_rate_equals_the_probability():
    torch.manual_seed(0)
    sampler = SpikeSampler(5, seed=1)
    with torch.no_grad():
        sampler.a.copy_(torch.tensor([1.0, 0.5, 2.0, -1.0, 1.0]))
        sampler.b.copy_(torch.tensor([0.0, 0.2, -0.5, 1.0, 0.3]))
    x = torch.rand(4000, 50, 5)
    s = sampler(x)
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    p = (sampler.a * x + sampler.b).clamp(0, 1)
    n = x.shape[0] * x.shape[1]
    # per channel, the mean spike count matches the mean probability within 5 binomial standard deviations
    bound = 5 * torch.sqrt((p * (1 - p)).sum((0, 1))) / n
    assert bool(((s.mean((0, 1)) - p.mean((0, 1))).abs() <= bound + 1e-6).all())
    # conditional on p in a narrow bin the rate is p (Bernoulli, not just right on average)
    bin_ = (p[..., 0] > 0.29) & (p[..., 0] < 0.31)
    assert abs(s[..., 0][bin_].mean().item() - 0.3) < 0.02


def test_straight_through_gradient_of_the_clamp():
    sampler = SpikeSampler(3, seed=0)
    x = torch.tensor([[[-0.5, 0.3, 1.7]]], requires_grad=True)  # u below 0, inside (0, 1), above 1
    sampler(x).sum().backward()
    assert torch.equal(x.grad, torch.tensor([[[0.0, 1.0, 0.0]]]))
    assert torch.equal(sampler.a.grad, torch.tensor([0.0, 0.3, 0.0]))
    assert torch.equal(sampler.b.grad, torch.tensor([0.0, 1.0, 0.0]))


def test_seed_makes_runs_reproducible_and_step_equals_sequence():
    x = torch.rand(30, 4, 6)
    a, b = SpikeSampler(6, seed=7), SpikeSampler(6, seed=7)
    assert torch.equal(a(x), b(x)) and not torch.equal(a(x), b.manual_seed(8)(x))
    noise = torch.rand(30, 4, 6)
    seq = a(x, noise=noise)
    assert torch.equal(torch.stack([a.step(x[t], noise=noise[t]) for t in range(30)]), seq)
    torch.manual_seed(3)
    g1 = SpikeSampler(6)(x)
    torch.manual_seed(3)
    assert torch.equal(SpikeSampler(6)(x), g1)  # unseeded samplers follow torch's global generator


def test_eval_modes():
    x = torch.rand(20, 3, 4) * 1.4 - 0.2
    p = x.clamp(0, 1)
    s = SpikeSampler(4, eval_mode="expectation", seed=0).eval()
    assert torch.equal(s(x), p)
    assert torch.equal(SpikeSampler(4, eval_mode="threshold").eval()(x), (p > 0.5).float())
    stochastic = SpikeSampler(4, eval_mode="sample", seed=0).eval()
    assert not torch.equal(stochastic(x), stochastic(x))  # the paper's code samples at test time too
    train = SpikeSampler(4, eval_mode="expectation", seed=0)
    assert set(train(x).unique().tolist()) <= {0.0, 1.0}  # training always samples
    xg = x.clone().requires_grad_()
    s(xg).sum().backward()
    assert torch.equal(xg.grad, ((x > 0) & (x < 1)).float())


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_norms_shapes_and_lazy_channels(norm):
    s = SpikeSampler(norm=norm, seed=0)
    out = s(torch.randn(10, 2, 6, 3))  # [T, B, C, *]
    assert out.shape == (10, 2, 6, 3) and s.channels == 6 and s.norm.norm.weight.shape == (6,)
    first = SpikeSampler(6, norm=norm, norm_first=True)
    assert first(torch.randn(10, 2, 6)).shape == (10, 2, 6)
    assert "norm_first=True" in repr(first)


def test_state_dict_and_torch_save_round_trip():
    s = SpikeSampler(4, norm="batch", seed=3)
    with torch.no_grad():
        s.a.fill_(0.7)
    s(torch.rand(5, 2, 4))
    buf = io.BytesIO()
    torch.save(s, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    lazy = SpikeSampler(norm="batch", seed=3)  # channels come from the state dict
    lazy.load_state_dict(s.state_dict())
    x = torch.rand(5, 2, 4)
    expected = s.manual_seed(3)(x)
    assert torch.equal(loaded.manual_seed(3)(x), expected) and torch.equal(lazy(x), expected)
    assert lazy.a.eq(0.7).all()


def test_bad_input():
    with pytest.raises(ValueError, match="eval_mode must be one of"):
        SpikeSampler(2, eval_mode="mean")
    with pytest.raises(ValueError, match="norm must be"):
        SpikeSampler(2, norm="group")
    with pytest.raises(TypeError, match="seed must be an int"):
        SpikeSampler(2, seed=1.5)
    with pytest.raises(TypeError, match="floating-point"):
        SpikeSampler(2)(torch.ones(3, 1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="built for 2"):
        SpikeSampler(2)(torch.rand(3, 1, 5))
    with pytest.raises(ValueError, match="noise must have"):
        SpikeSampler(2)(torch.rand(3, 1, 2), noise=torch.rand(3, 2))


def test_spikingjelly_step_modes_and_snntorch_stepping():
    sj = pytest.importorskip("snn_ssm.spikingjelly")
    from spikingjelly.activation_based import functional

    x = torch.rand(12, 3, 4)
    m = sj.SpikeSampler(4, step_mode="m", seed=5)
    s_m = m(x)
    functional.set_step_mode(m, "s")
    m.manual_seed(5)
    functional.reset_net(m)
    assert torch.equal(torch.stack([m(x[t]) for t in range(12)]), s_m)
    pytest.importorskip("snntorch")
    from snn_ssm import snntorch as st

    n = st.SpikeSampler(4, seed=5)
    assert torch.equal(torch.stack([n(x[t]) for t in range(12)]), s_m)
    assert torch.equal(st.SpikeSampler(4, seed=5, multi_step=True)(x), s_m)
