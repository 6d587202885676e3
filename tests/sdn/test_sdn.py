"""The SDN: architecture, reduction, the reset scan, the neuron mode, shipped weights, trainer and report."""
import pytest
import torch

from snn_ssm import LIF, SSMDendriteLIF, SpikingS4D, SpikingSSM
from snn_ssm.functional import lif_seq
from snn_ssm import to_exact
from snn_ssm.sdn import SDN, SHIPPED_BETAS, load_sdn, predict, reset_scan, shipped
from snn_ssm.training.sdn_inputs import exact_targets, gaussian
from snn_ssm.training.sdn_train import agreement, recorded_test_set


def test_published_size_and_reduction_preserve_the_function():
    net = SDN().double()
    assert sum(p.numel() for p in net.parameters()) == 193
    for bn in (net.spatial_norm, net.feature_norm):  # non-trivial statistics, so folding them is tested
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    net.eval()
    small = net.reduce()
    assert sum(p.numel() for p in small.parameters()) == 153 and small.reduced
    x = torch.randn(4, 1, 300, dtype=torch.float64)
    torch.testing.assert_close(small(x), net(x), rtol=1e-12, atol=1e-12)
    wide = SDN(dilated_layers=1).double().eval()
    torch.testing.assert_close(wide.reduce()(x), wide(x), rtol=1e-12, atol=1e-12)
    assert (SDN().receptive_field, wide.receptive_field, SDN(dilated_layers=2).receptive_field) == (8, 64, 512)


@pytest.mark.parametrize("dilated", [0, 1])
def test_network_is_causal_and_excludes_the_current_step(dilated):
    net = SDN(dilated_layers=dilated).eval()
    x = torch.randn(1, 1, 200)
    t, rf = 150, net.receptive_field
    base = net(x)[0, 0]
    for moved, changes in ((t, False), (t + 5, False), (t - rf - 1, False), (t - 1, True), (t - rf, True)):
        x2 = x.clone()
        x2[0, 0, moved] += 3.0
        assert (net(x2)[0, 0, t] != base[t]).item() == changes, moved


def test_scan_variant_is_causal():
    net = load_sdn(0.125, "scan")
    x = gaussian(100, 3, torch.Generator().manual_seed(0))
    m = predict(net, x)
    x2 = x.clone()
    x2[60:] += 5.0
    assert torch.equal(predict(net, x2)[:61], m[:61])


def test_reset_scan_equals_the_sequential_recursion():
    g = torch.Generator().manual_seed(1)
    for T in (1, 2, 7, 64, 1000):
        x, p = torch.rand(T, 50, generator=g) * 1.2, torch.rand(T, 50, generator=g) * 0.5
        s_prev, expected = torch.ones(50), []
        for t in range(T):
            s_prev = ((1 - s_prev) * p[t] + x[t] - 1 >= 0).float()
            expected.append(s_prev)
        assert torch.equal(reset_scan(x, p), torch.stack(expected))


def test_targets_are_the_exact_neuron_and_the_scan_is_exact_given_the_true_p():
    x = gaussian(500, 40, torch.Generator().manual_seed(2)) * 1.3 + 0.3
    beta = 0.5
    m, s, p = exact_targets(x, beta)
    s_ref, _ = lif_seq(x, None, beta)
    assert torch.equal(s, s_ref)
    s_prev = torch.cat([torch.ones_like(s[:1]), s[:-1]])
    assert torch.equal(m, (1 - s_prev) * p)
    assert torch.equal(reset_scan(x, p), s)  # the scan formulation loses nothing: its only error is p-hat's


@pytest.mark.parametrize("meta", shipped(), ids=lambda m: f"{m['variant']}-{m['beta']:g}")
def test_shipped_weights_reproduce_their_recorded_agreement(meta):
    net = load_sdn(meta["beta"], meta["variant"])
    got = agreement(net, *recorded_test_set(meta["beta"]))
    assert abs(got["spike_agreement"] - meta["agreement"]["spike_agreement"]) <= 1e-4  # <= 26 of 262k steps
    assert got["membrane_mae"] == pytest.approx(meta["agreement"]["membrane_mae"], rel=1e-3)


def test_every_shipped_beta_has_both_variants():
    have = {(m["beta"], m["variant"]) for m in shipped()}
    assert have == {(b, v) for b in SHIPPED_BETAS for v in ("paper", "scan")}
    assert all(m["agreement"]["spike_agreement"] > 0.999 for m in shipped() if m["beta"] == 0.125)


def test_sdn_mode_is_the_prediction_with_a_local_surrogate_gradient():
    lif = LIF(3, reset_mode="sdn", learn_threshold=True)
    x = (torch.randn(80, 2, 3) + 0.3).requires_grad_()
    s = lif(x)
    m_hat = predict(lif.sdn, x.detach())
    assert torch.equal(s, (m_hat + x.detach() - 1 >= 0).float())
    t0 = 40
    (g,) = torch.autograd.grad(s[t0].sum(), x)
    assert torch.count_nonzero(g[:t0]) == 0 and torch.count_nonzero(g[t0 + 1:]) == 0  # no temporal path
    expected = torch.clamp(1 - (m_hat[t0] + x[t0].detach() - 1).abs(), min=0)  # triangle, alpha 1, v_th 1
    torch.testing.assert_close(g[t0], expected)
    lif.reset()
    lif(x).sum().backward()
    assert lif.ln_vth.grad is not None and torch.count_nonzero(lif.ln_vth.grad) > 0  # threshold learns


def test_threshold_works_by_input_scaling():
    x = torch.randn(100, 2, 4)
    a, b = LIF(4, reset_mode="sdn", v_th=1.0), LIF(4, reset_mode="sdn", v_th=2.0)
    assert torch.equal(a(x), b(2 * x))  # s(αy; αv_th) = s(y; v_th), exact for α = 2


def test_sdn_mode_everywhere_and_to_exact_round_trip():
    torch.manual_seed(0)
    model = SpikingSSM(1, 10, d_model=8, n_layers=2, d_state=8, reset_mode="sdn", sdn_variant="scan")
    exact = SpikingSSM(1, 10, d_model=8, n_layers=2, d_state=8)
    assert model.state_dict().keys() == exact.state_dict().keys()  # the frozen SDN is not a parameter
    exact.load_state_dict(model.state_dict())
    x = torch.randn(60, 3, 1)
    out_sdn = model(x)
    assert to_exact(model) is model
    assert torch.equal(model(x), exact(x))
    for soma in (m for m in model.modules() if hasattr(m, "reset_mode")):
        soma.reset_mode = "sdn"
    assert torch.equal(model(x), out_sdn)
    assert "reset_mode='sdn'" in repr(model)


def test_fused_skip_and_dendrite_neuron_in_sdn_mode():
    torch.manual_seed(1)
    layer = SpikingS4D(6, d_state=8, reset_mode="sdn")
    x = torch.randn(50, 2, 6)
    p = layer.dendrite.discrete(6)
    y = layer.dendrite.convolve(x.unsqueeze(-1), None, p).squeeze(-1)  # K*x + D*x by torch
    assert torch.equal(layer.soma(y), layer.activation(x))
    n = SSMDendriteLIF(6, reset_mode="sdn")
    assert n(torch.randn(30, 2, 6)).shape == (30, 2, 6)


def test_bad_options_and_missing_weights():
    with pytest.raises(FileNotFoundError, match=r"sdn-train --beta 0.3 --variant paper"):
        LIF(2, beta=0.3, reset_mode="sdn")
    with pytest.raises(ValueError, match="reset='hard' and v_reset=0"):
        LIF(2, reset="soft", reset_mode="sdn")
    with pytest.raises(ValueError, match="reset='hard' and v_reset=0"):
        LIF(2, v_reset=0.2, reset_mode="sdn")
    with pytest.raises(ValueError, match="fixed beta"):
        LIF(2, learn_beta=True, reset_mode="sdn")
    with pytest.raises(ValueError, match="one β for all neurons"):
        LIF(2, beta=torch.tensor([0.125, 0.5]), reset_mode="sdn")
    with pytest.raises(ValueError, match="reset_mode must be"):
        LIF(2, reset_mode="parallel")
    with pytest.raises(ValueError, match="variant must be one of"):
        LIF(2, reset_mode="sdn", sdn_variant="phase")
    lif = LIF(2, reset_mode="sdn")
    lif(torch.ones(5, 1, 2) * 0.7)
    with pytest.raises(ValueError, match="from rest"):
        lif(torch.ones(5, 1, 2))
    lif.reset()
    lif(torch.ones(5, 1, 2))
    assert LIF(2, beta=torch.tensor([0.125, 0.125]), reset_mode="sdn").reset_mode == "sdn"


def test_trainer_command_and_loading_user_weights(tmp_path, monkeypatch, capsys):
    from snn_ssm.__main__ import main

    assert main(["sdn-train", "--beta", "0.3", "--steps", "20", "--sequences", "40", "--length", "64",
                 "--device", "cpu", "--quiet", "--out", str(tmp_path)]) == 0
    assert "spike agreement" in capsys.readouterr().out
    path = tmp_path / "sdn_paper_beta0.3.pt"
    meta = torch.load(path, weights_only=True)["meta"]
    assert meta["beta"] == 0.3 and meta["receptive_field"] == 8 and meta["trained"]["seed"] == 0
    assert LIF(2, beta=0.3, reset_mode="sdn", sdn_path=path).reset_mode == "sdn"
    monkeypatch.setenv("SNN_SSM_SDN_DIR", str(tmp_path))
    assert load_sdn(0.3).meta == meta
    with pytest.raises(ValueError, match="holds an SDN for beta=0.3"):
        load_sdn(0.5, path=path)
    with pytest.raises(SystemExit):
        main(["sdn-train", "--beta", "1.5", "--steps", "1", "--out", str(tmp_path)])


def test_report_command(tmp_path, capsys):
    from snn_ssm.__main__ import main

    assert main(["sdn-report", "--ssm-steps", "0", "--beta", "0.125", "--out", str(tmp_path)]) == 0
    table = (tmp_path / "sdn_report.md").read_text()
    assert "constant in [1/(1+β), 1)" in table and "| scan |" in table and "| paper |" in table


def test_framework_adapters_take_reset_mode():
    x = torch.randn(40, 2, 3)
    core = LIF(3, reset_mode="sdn")(x)
    sj = pytest.importorskip("snn_ssm.spikingjelly")
    n = sj.LIF(3, step_mode="m", reset_mode="sdn")
    assert torch.equal(n(x), core)
    pytest.importorskip("snntorch")
    from snn_ssm import snntorch as st

    m = st.LIF(3, multi_step=True, reset_mode="sdn", init_hidden=True)
    assert torch.equal(m(x), core)


def test_report_captures_the_first_soma_input_of_a_trained_spikingssm():
    """sdn-report's last input family: (S4D(x) + D·x) / v_th of a SpikingSSM's first layer, through the soma's
    pre-hook whichever path the layer runs (fused recurrence or FFT convolution)."""
    from snn_ssm.training.sdn_report import ssm_inputs
    y = ssm_inputs(steps=1)
    assert y.shape == (196, 64 * 32) and torch.isfinite(y).all() and float(y.std()) > 0
