"""Binary S4D and the Gated Spiking Unit: spike functions, ternary quantisers (values and gradients), layers,
backbones and their named sizes."""
import io
import math

import pytest
import torch

import snn_ssm
from snn_ssm import BinaryS4D, BinaryS4DGSUNet, BinaryS4DNet, GatedSpikingUnit, S4DGSU
from snn_ssm.functional.quant import ternary_weight
from snn_ssm.layers import HeavisideSpike, TernarySpike
from snn_ssm.metrics import SpikeRateMonitor
from snn_ssm.models import BINARY_CONFIGS


def test_heaviside_spike_with_atan_and_fast_sigmoid():
    y = torch.tensor([[-0.5, 0.0, 0.25]], requires_grad=True)
    s = HeavisideSpike(3, threshold=0.1)(y)
    assert torch.equal(s, torch.tensor([[0.0, 0.0, 1.0]]))
    s.sum().backward()
    x = y.detach() - 0.1
    torch.testing.assert_close(y.grad, 1.0 / (1 + (math.pi / 2 * 2 * x) ** 2))  # atan, alpha 2
    y.grad = None
    HeavisideSpike(3, surrogate="fast_sigmoid")(y).sum().backward()
    torch.testing.assert_close(y.grad, 1 / (1 + 25 * y.detach().abs()) ** 2)
    learn = HeavisideSpike(3, learn_threshold=True)
    learn(torch.randn(4, 3)).sum().backward()
    assert learn.threshold.grad is not None


def test_ternary_weight_values_and_straight_through_gradient():
    w = torch.tensor([[0.1, -0.9, 0.5, 0.02], [2.0, -2.0, 0.0, 1.0]], requires_grad=True)
    q = ternary_weight(w)
    # row 0: delta = 0.7 * mean|w| = 0.7 * 0.38 = 0.266 -> keep -0.9, 0.5 (alpha = 0.7)
    torch.testing.assert_close(q[0], torch.tensor([0.0, -0.7, 0.7, 0.0]))
    # row 1: delta = 0.7 * 1.25 = 0.875 -> keep 2, -2, 1 (alpha = 5/3)
    torch.testing.assert_close(q[1], torch.tensor([5 / 3, -5 / 3, 0.0, 5 / 3]))
    assert (q / q.abs().amax(1, keepdim=True)).nan_to_num().unique().tolist() == [-1.0, 0.0, 1.0]
    (q * torch.arange(8.0).reshape(2, 4)).sum().backward()
    assert torch.equal(w.grad, torch.arange(8.0).reshape(2, 4))


def test_ternary_spike_values_and_clipped_gradient():
    y = torch.tensor([-1.5, -0.6, -0.2, 0.0, 0.4, 0.7, 3.0], requires_grad=True)
    s = TernarySpike(0.5)(y)
    assert torch.equal(s, torch.tensor([-1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 1.0]))
    s.sum().backward()
    assert torch.equal(y.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="threshold"):
        TernarySpike(-1.0)


@pytest.mark.parametrize("gelu", ["output", "gate", "none"])
def test_gsu_is_the_dual_path_product(gelu):
    torch.manual_seed(0)
    gsu = GatedSpikingUnit(6, gelu=gelu, act_threshold=0.3)
    with torch.no_grad():  # every row: mean|w| = 0.4033, Δ = 0.7·mean = 0.2823, kept |w| mean α = 0.575
        gsu.identity_path.weight.copy_(torch.tensor([0.1, -0.9, 0.5, 0.02, 0.6, -0.3]).expand(6, 6))
    tern = torch.tensor([0.0, -0.575, 0.575, 0.0, 0.575, -0.575]).expand(6, 6)
    y = torch.randn(5, 2, 6)
    n = torch.nn.functional.linear(y, tern, gsu.identity_path.bias)
    m = gsu.spike_path(torch.sign(y) * (y.abs() > 0.3))
    expected = {"output": torch.nn.functional.gelu(n * m), "gate": n * torch.nn.functional.gelu(m),
                "none": n * m}[gelu]
    torch.testing.assert_close(gsu(y), expected)
    with pytest.raises(ValueError, match="gelu must be"):
        GatedSpikingUnit(6, gelu="input")


def test_binary_s4d_layer_emits_binary_spikes_into_the_glu():
    torch.manual_seed(1)
    layer = BinaryS4D(8, d_state=16)
    x = torch.randn(60, 2, 8)
    seen = []
    layer.output_linear.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    out = layer(x)
    assert out.shape == (60, 2, 8) and set(seen[0].unique().tolist()) <= {0.0, 1.0}
    y = layer.dendrite(x.unsqueeze(-1)).squeeze(-1)
    assert torch.equal(seen[0], (y >= 0).float())
    out.sum().backward()
    assert layer.dendrite.log_dt.grad is not None and torch.isfinite(layer.dendrite.C.grad).all()


def test_backbones_registry_configs_and_spike_rates():
    for cls, name in ((BinaryS4DNet, "binary_s4d"), (BinaryS4DGSUNet, "binary_s4d_gsu")):
        model = snn_ssm.create(name, d_input=1, d_output=4, d_model=8, n_layers=2, d_state=8)
        assert isinstance(model, cls)
        x = torch.rand(30, 3, 1)
        with SpikeRateMonitor(model) as mon:
            out = model(x)
        assert out.shape == (3, 4) and len(mon.rates()) == 2 and 0 < mon.mean_rate() < 1
        out.sum().backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
        buf = io.BytesIO()
        torch.save(model, buf)
        buf.seek(0)
        assert torch.equal(torch.load(buf, weights_only=False)(x), model(x))
    for task, cfg in BINARY_CONFIGS.items():
        tokens = cfg.get("encoder") == "embedding"
        m = BinaryS4DGSUNet.from_config(task, 20 if tokens else 1, 10, d_model=8, n_layers=1, d_state=4)
        assert m(torch.randint(0, 20, (12, 2)) if tokens else torch.rand(12, 2, 1)).shape == (2, 10)
    with pytest.raises(ValueError, match="task must be one of"):
        BinaryS4DNet.from_config("imagenet", 1, 10)


def test_gsu_layer_bad_input():
    layer = S4DGSU(4, d_state=8)
    with pytest.raises(ValueError, match=r"\[T, B, H=4\]"):
        layer(torch.randn(10, 2, 5))
    with pytest.raises(ValueError, match="non-finite|NaN"):
        layer(torch.full((10, 2, 4), float("nan")))
