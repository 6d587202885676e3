import pytest
import torch

import snn_ssm
from snn_ssm import S4D, SpikingSSM


def test_spikingssm_trains_a_step():
    model = SpikingSSM(2, 5, d_model=16, n_layers=2, d_state=8, dropout=0.1, norm="batch", prenorm=True)
    opt = torch.optim.AdamW(snn_ssm.param_groups(model, 1e-2, 1e-2))
    x, y = torch.randn(30, 4, 2), torch.randint(0, 5, (4,))
    before = [p.clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()) if b.grad is not None)


def test_param_groups():
    model = SpikingSSM(1, 3, d_model=8, n_layers=1)
    groups = snn_ssm.param_groups(model, lr=0.01, weight_decay=0.05)
    by_id = {id(p): g for g in groups for p in g["params"]}
    layer = model.blocks[0].layer
    assert by_id[id(layer.dendrite.log_dt)]["lr"] == 1e-3 and by_id[id(layer.dendrite.log_dt)]["weight_decay"] == 0
    assert by_id[id(layer.soma.ln_vth)]["weight_decay"] == 0
    assert by_id[id(layer.output_linear.weight)]["weight_decay"] == 0.05
    assert by_id[id(layer.output_linear.bias)]["weight_decay"] == 0
    assert len(by_id) == len(list(model.parameters()))


def test_lengths_pooling_ignores_padding():
    model = S4D(3, 4, d_model=8, n_layers=1).eval()
    x = torch.randn(10, 2, 3)
    lengths = torch.tensor([6, 10])
    padded = x.clone()
    padded[6:, 0] = 100.0  # padding after the first sequence's end; causal layers cannot see it earlier
    torch.testing.assert_close(model(x, lengths), model(padded, lengths))
    z = model.features(x)
    torch.testing.assert_close(model(x, lengths)[0], model.decoder(z[:6, 0].mean(0)))
    with pytest.raises(ValueError, match="lengths"):
        model(x, torch.tensor([0, 3]))


def test_embedding_encoder():
    model = SpikingSSM(18, 10, d_model=8, n_layers=1, encoder="embedding", bidirectional=True)
    assert model(torch.randint(0, 18, (40, 3))).shape == (3, 10)
    with pytest.raises(TypeError, match="token ids"):
        model(torch.randn(40, 3))


def test_registry_creates_models():
    m = snn_ssm.create("spikingssm", d_input=1, d_output=10, d_model=8, n_layers=1)
    assert isinstance(m, SpikingSSM)
    assert isinstance(snn_ssm.create("s4d", d_input=1, d_output=2, d_model=8, n_layers=1), S4D)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="d_model"):
        SpikingSSM(1, 10, d_model=0)
    with pytest.raises(ValueError, match="encoder"):
        SpikingSSM(1, 10, encoder="conv")
    with pytest.raises(ValueError, match=r"d_input=1"):
        SpikingSSM(1, 10, d_model=8, n_layers=1)(torch.randn(5, 2, 3))
