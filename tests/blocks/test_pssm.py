"""P-SpikeSSM: SpikeMixer, ClampFuse, the block as the released code computes it, the backbone and its configs."""
import pytest
import torch

from snn_ssm import ClampFuse, PSpikeSSM, PSpikeSSMBlock, SpikeMixer
from snn_ssm.metrics import SpikeRateMonitor
from snn_ssm.models import PSSM_CONFIGS


def test_mixer_and_clampfuse():
    m = SpikeMixer(6, activation="relu")
    with torch.no_grad():  # W = 2·I − 1 (a spike adds 2 to its own output, subtracts 1 from the others), c = 0.5
        m.linear.weight.copy_(2 * torch.eye(6) - 1)
        m.linear.bias.fill_(0.5)
    s = (torch.rand(5, 2, 6) > 0.5).float()
    assert torch.equal(m(s), torch.relu(2 * s - s.sum(-1, keepdim=True) + 0.5))
    assert SpikeMixer(6, 3).linear.out_features == 3
    f = ClampFuse(4, norm="layer")
    x, y = torch.randn(5, 2, 4), torch.randn(5, 2, 4)
    out = f(x, y)
    z = x + y  # LayerNorm at its initial affine (1, 0), written out
    expected = ((z - z.mean(-1, keepdim=True)) / torch.sqrt(z.var(-1, unbiased=False, keepdim=True) + 1e-5)).clamp(0, 1)
    torch.testing.assert_close(out, expected)
    assert out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="activation"):
        SpikeMixer(3, activation="tanh")


def test_block_computes_what_the_code_computes():
    torch.manual_seed(0)
    block = PSpikeSSMBlock(6, d_state=8, norm="batch", prenorm=True).eval()
    for s in block.samplers():
        s.manual_seed(11)
    x = torch.randn(40, 2, 6)
    out = block(x)
    for s in block.samplers():
        s.manual_seed(11)
    u = block.in_sampler.norm(block.in_sampler.a * x + block.in_sampler.b)
    s1 = (u > block.in_sampler.noise(u)).float()
    z = torch.nn.functional.gelu(block.ssm(s1.unsqueeze(-1)).squeeze(-1))
    v = block.out_sampler.a * z + block.out_sampler.b
    s2 = (v > block.out_sampler.noise(v)).float()
    expected = x + torch.nn.functional.gelu(block.mixer.linear(s2))
    torch.testing.assert_close(out, expected)


def test_block_bidirectional_reuses_the_noise_and_no_residual():
    torch.manual_seed(0)
    block = PSpikeSSMBlock(4, d_state=8, block_bidirectional=True, residual=False, norm=None)
    assert block.mixer.linear.in_features == 8 and len(block.samplers()) == 4
    # make the second path a copy of the first: with one shared draw for the re-sampling, the two halves of the
    # mixer's input are then identical (two independent draws would differ)
    block.ssm_rev.load_state_dict(block.ssm.state_dict())
    block.in_sampler_rev.load_state_dict(block.in_sampler.state_dict())
    block.in_sampler.manual_seed(2), block.in_sampler_rev.manual_seed(2), block.out_sampler.manual_seed(3)
    block.out_sampler_rev.manual_seed(4)
    seen = []
    block.mixer.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    out = block(torch.randn(30, 2, 4))
    s = seen[0]
    assert out.shape == (30, 2, 4) and s.shape == (30, 2, 8) and set(s.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(s[..., :4], s[..., 4:]) and 0 < s.mean() < 1


def test_backbone_seed_predict_and_spike_rates():
    model = PSpikeSSM(1, 5, d_model=8, n_layers=2, d_state=8, seed=0)
    twin = PSpikeSSM(1, 5, d_model=8, n_layers=2, d_state=8, seed=0)
    twin.load_state_dict(model.state_dict())
    x = torch.rand(50, 3, 1)
    assert torch.equal(model(x), twin(x))
    model.eval()
    probs = model.predict(x, n_samples=5)
    assert probs.shape == (3, 5) and torch.allclose(probs.sum(1), torch.ones(3))
    for s in model.samplers():
        s.eval_mode = "expectation"
    torch.testing.assert_close(model.predict(x, n_samples=3), model.predict(x))  # deterministic then
    with SpikeRateMonitor(model) as mon:
        model.train()(x)
    rates = mon.rates()
    assert len(rates) == 4 and all(0 < r < 1 for r in rates.values())  # no sampler silent or saturated
    with pytest.raises(ValueError, match="n_samples"):
        model.predict(x, n_samples=0)


@pytest.mark.parametrize("task", sorted(PSSM_CONFIGS))
def test_named_configs_build_and_run(task):
    cfg = PSSM_CONFIGS[task]["model"]
    tokens = cfg.get("encoder") == "embedding"
    model = PSpikeSSM.from_config(task, 20 if tokens else 1, 10, d_model=8, d_state=4, n_layers=1)
    x = torch.randint(0, 20, (16, 2)) if tokens else torch.rand(16, 2, 1)
    assert model(x).shape == (2, 10)
    assert model.blocks[0].block_bidirectional == cfg["block_bidirectional"]
    assert model.blocks[0].residual == cfg.get("residual", True)
    assert {"lr", "weight_decay", "batch", "epochs"} <= set(PSSM_CONFIGS[task]["train"])
    with pytest.raises(ValueError, match="task must be one of"):
        PSpikeSSM.from_config("cifar", 1, 10)


def test_gradients_reach_every_parameter():
    model = PSpikeSSM(1, 3, d_model=8, n_layers=2, d_state=8, block_bidirectional=True, seed=1)
    model(torch.rand(40, 4, 1)).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing
