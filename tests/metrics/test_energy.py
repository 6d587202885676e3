"""Synaptic operations and energy on hand-computed toy networks."""
import pytest
import torch
from torch import nn

from snn_ssm import LIF, SpikingS4D
from snn_ssm.blocks import GatedSpikingUnit
from snn_ssm.layers import S4DDendrite, S4DPLR
from snn_ssm.metrics import EnergyMeter, SpikeRateMonitor, is_spikes


def test_is_spikes():
    assert is_spikes(torch.tensor([0.0, 1.0, 1.0])) and is_spikes(torch.tensor([0.0, -1.0, 1.0]))
    assert is_spikes(torch.tensor([0.0, 1.25, 0.0])) and is_spikes(torch.zeros(3))
    assert not is_spikes(torch.tensor([0.5, 1.0]))


def test_linear_on_spikes_counts_accumulates_and_on_reals_macs():
    net = nn.Sequential(nn.Linear(4, 3), LIF(3), nn.Linear(3, 2))
    x = torch.tensor([[[1.0, 2.0, 0.0, -1.0]]])  # [T=1, B=1, 4]
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [0, 1.0, 0, 0]]))
        net[0].bias.zero_()
    with EnergyMeter(net) as meter, SpikeRateMonitor(net) as rates:
        net(x)  # layer 0: 1 row x 4 x 3 = 12 MACs; LIF spikes [1, 0, 1]; layer 2: 2 events x 2 targets = 4 ACs
    r = meter.report()
    assert r["layers"]["0"] == {"MACs": 12, "ACs": 0} and r["layers"]["2"] == {"MACs": 0, "ACs": 4}
    assert rates.rates() == {"1": pytest.approx(2 / 3)}
    assert r["full"]["energy_uJ"] == pytest.approx((12 * 4.6 + 4 * 0.9) * 1e-6)
    assert r["paper"]["layers"] == ["2"] and r["paper"]["ACs"] == 4 and r["paper"]["ann_MACs"] == 6
    assert r["paper"]["ann_energy_uJ"] == pytest.approx(6 * 4.6e-6)
    custom = EnergyMeter(net, e_mac=1.0, e_ac=0.5)
    with custom:
        net(x)
    assert custom.report()["full"]["energy_uJ"] == pytest.approx((12 + 2) * 1e-6)


def test_ssm_counts_include_the_state_size():
    s4d, dplr = S4DDendrite(2, d_state=8), S4DPLR(2, d_state=8)
    x = torch.randn(5, 3, 2, 1)  # 30 channel-steps
    spikes = (torch.rand(5, 3, 2, 1) > 0.5).float()
    with EnergyMeter(s4d) as m1:
        s4d(x)
    assert m1.report()["full"]["MACs"] == 30 * (4 * 8 + 1)
    with EnergyMeter(s4d) as m2:
        s4d(spikes)
    events = float(spikes.sum())
    assert m2.report()["full"] == pytest.approx({"MACs": 30 * 24, "ACs": events * 9,
                                                 "energy_uJ": (30 * 24 * 4.6 + events * 9 * 0.9) * 1e-6})
    with EnergyMeter(dplr) as m3:
        dplr(x)
    assert m3.report()["full"]["MACs"] == 30 * (64 + 16 + 1)


def test_gsu_and_conv_counts():
    torch.manual_seed(0)
    gsu = GatedSpikingUnit(4, act_threshold=0.5)
    with torch.no_grad():  # per row: Δ = 0.7·0.38 = 0.266, so two weights of four stay non-zero
        gsu.identity_path.weight.copy_(torch.tensor([0.1, -0.9, 0.5, 0.02]).expand(4, 4))
    y = torch.randn(6, 4)
    with EnergyMeter(gsu) as m:
        gsu(y)
    r = m.report()["layers"]
    nnz_w = 8.0
    events = float((y.abs() > 0.5).sum())
    assert r["identity_path"]["ACs"] == 6 * nnz_w and r["gate"]["MACs"] == 24
    assert r["spike_path"] == {"MACs": 0, "ACs": events * 4}
    conv = nn.Conv2d(2, 3, 3, padding=1)
    with EnergyMeter(conv) as mc:
        conv(torch.randn(1, 2, 5, 5))
    assert mc.report()["full"]["MACs"] == 3 * 25 * 2 * 9


def test_spiking_layer_paper_accounting_is_the_glu_projection():
    layer = SpikingS4D(8, d_state=4)
    with EnergyMeter(layer) as m, SpikeRateMonitor(layer) as rates:
        layer(torch.randn(20, 2, 8))
    r = m.report()
    assert r["paper"]["layers"] == ["output_linear"]
    assert r["paper"]["ACs"] == pytest.approx(rates.rates()["soma"] * 20 * 2 * 8 * 16)
    assert r["paper"]["ann_MACs"] == 20 * 2 * 8 * 16


def test_dendrite_neurons_and_fused_layers_count_their_ssm():
    from snn_ssm import SSMDendriteLIF

    n = SSMDendriteLIF(3, d_state=4)
    with EnergyMeter(n) as m:
        n(torch.randn(7, 2, 3))
    assert m.report()["layers"]["SSMDendriteLIF.dendrite"]["MACs"] == 42 * (4 * 4 + 1)
    layer = SpikingS4D(8, d_state=4)
    with EnergyMeter(layer) as m2:
        layer(torch.randn(20, 2, 8))
    assert m2.report()["layers"]["dendrite"]["MACs"] == 20 * 2 * 8 * 17
