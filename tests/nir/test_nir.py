"""NIR export and import: our export → our import_ gives the original's spikes step for step (≥ 1,000 steps), as does
snnTorch's own importer for what it reads, and everything NIR cannot express is refused by name.

Where the two sides compute the same float operations (every LIF-family node, and our SSM neuron rebuilt from its
metadata) the spikes are compared exactly. Where they do not (the S4D dendrite run as NIR nodes, a CubaLIF, snnTorch,
which keeps its membranes in float64), a spike can only differ where the original's pre-reset membrane u' comes
within the two sides' rounding difference δ of the threshold; the test measures the smallest |u' - 1| of the
original, checks it exceeds the stated δ, and then requires identical spikes (a flip would change every step after
it, so "no flip" is the only bound worth stating).
"""
import math

import numpy as np
import pytest
import torch

import snn_ssm

nir = pytest.importorskip("nir")
snir = pytest.importorskip("snn_ssm.nir")

T = 1000


def _pre_reset_margin(y: torch.Tensor, soma) -> float:
    """min |u'_t - 1| over a run of ``soma``'s dynamics on its input ``y`` [T, B, C, *] (float64)."""
    y = y.detach().double()
    shape = (1, -1) + (1,) * (y.ndim - 3)
    beta = soma.beta.detach().double()
    beta = beta.reshape(shape) if beta.ndim else beta
    v_th = soma.v_th.detach().double()
    v_th = v_th.reshape(shape) if not soma.shared else v_th.reshape(())
    u, margin = torch.zeros_like(y[0]), math.inf
    for y_t in y:
        up = beta * u + y_t / v_th
        margin = min(margin, float((up - 1).abs().min()))
        s = up >= 1
        u = torch.where(s, torch.full_like(up, soma.v_reset), up) if soma.reset_kind == "hard" else up
    return margin


def _soma_input(net, x, index):
    """What module ``net[index]`` receives when ``net`` runs on ``x``."""
    got = {}
    h = net[index].register_forward_pre_hook(lambda m, args: got.setdefault("y", args[0].detach()))
    snn_ssm.reset_states(net)
    with torch.no_grad():
        net(x)
    h.remove()
    snn_ssm.reset_states(net)
    return got["y"]


def _run_both(net, copy, x):
    snn_ssm.reset_states(net)
    copy.reset()
    with torch.no_grad():
        return net(x), copy(x)


def _mlp(*neurons, d_in=3, seed=0):
    torch.manual_seed(seed)
    layers, width = [], d_in
    for n in neurons:
        layers += [torch.nn.Linear(width, n.channels), n]
        width = n.channels
    return torch.nn.Sequential(*layers)


def _spiking(s):
    rate = float(s.mean())
    assert 0.01 < rate < 0.9, f"a vacuous comparison: spike rate {rate:.3f}"


LIF_CASES = {
    "beta-scalar": lambda: snn_ssm.LIF(8, beta=0.5),
    "beta-per-channel-thresholds": lambda: snn_ssm.LIF(8, beta=torch.linspace(0.05, 0.95, 8), v_th=0.7),
    "v_reset": lambda: snn_ssm.LIF(8, beta=0.8, v_reset=0.25),
    "no-reset": lambda: snn_ssm.LIF(8, beta=0.6, reset="none"),
    "integrate-and-fire": lambda: snn_ssm.LIF(8, beta=1.0, v_th=3.0),
    "integrator-no-reset": lambda: snn_ssm.LIF(8, beta=1.0, reset="none", v_th=50.0),
    "shared": lambda: snn_ssm.LIF(8, beta=0.3, shared=True, v_th=0.9),
}


@pytest.mark.parametrize("case", list(LIF_CASES))
def test_lif_round_trip_is_exact(case):
    torch.manual_seed(1)
    net = _mlp(LIF_CASES[case](), snn_ssm.LIF(4, beta=0.7))
    with torch.no_grad():
        net[3].ln_vth.copy_(torch.randn(4) * 0.3)  # learned-looking thresholds
    graph = snir.export(net, torch.rand(5, 1, 3))
    x = torch.rand(T, 4, 3) * 2
    a, b = _run_both(net, snir.import_(graph), x)
    _spiking(a[:, :, :])
    assert torch.equal(a, b)


def test_what_lif_becomes_in_nir():
    net = _mlp(snn_ssm.LIF(8, beta=0.5, v_reset=0.25), snn_ssm.LIF(4, beta=0.5, reset="none"))
    with torch.no_grad():
        net[1].ln_vth.fill_(math.log(2.0))
    g = snir.export(net, torch.rand(5, 1, 3), dt=1e-3)
    assert isinstance(g.nodes["1_threshold"], nir.Scale) and np.all(g.nodes["1_threshold"].scale == 0.5)
    lif = g.nodes["1"]
    assert isinstance(lif, nir.LIF)
    np.testing.assert_allclose(lif.tau, 1e-3 / 0.5)
    np.testing.assert_allclose(lif.r * 1e-3 / lif.tau, 1.0)
    assert np.all(lif.v_reset == 0.25) and np.all(lif.v_leak == 0)
    assert np.all(lif.v_threshold == np.nextafter(np.float32(1), np.float32(0)))  # NIR fires on >, we on >=
    assert isinstance(g.nodes["3"], nir.LI) and isinstance(g.nodes["3_fire"], nir.Threshold)
    assert "3_threshold" not in g.nodes  # every threshold is 1: no Scale
    for key, node in g.nodes.items():  # shape metadata on every node
        assert all(v is not None for v in node.input_type.values()), key
        assert all(v is not None for v in node.output_type.values()), key
    assert g.metadata["dt"] == 1e-3


def test_file_round_trip_and_dt(tmp_path):
    net = _mlp(snn_ssm.LIF(8, beta=0.5), snn_ssm.SSMDendriteLIF(4, d_state=8))
    path = snir.to_file(snir.export(net, torch.rand(5, 1, 3)), tmp_path / "net.nir")
    graph = snir.from_file(path)
    copy = snir.import_(graph)
    assert isinstance(copy.nodes["3"].neuron, snn_ssm.SSMDendriteLIF)  # metadata survived the file
    a, b = _run_both(net, copy, torch.rand(T, 2, 3) * 3)
    _spiking(a)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="differs from the dt"):
        snir.import_(graph, dt=1e-3)
    graph.metadata = {}
    with pytest.raises(ValueError, match="pass dt="):
        snir.import_(graph)


def test_conv_pool_flatten_net_is_exact():
    """A per-step convolutional net (snnTorch style, [B, C, H, W] each step) with our snnTorch-face neurons."""
    pytest.importorskip("snntorch")
    from snn_ssm import snntorch as ours
    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), ours.LIF(4, beta=0.6, init_hidden=True),
                              torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Dropout(0.1),
                              torch.nn.Linear(4 * 4 * 4, 5), ours.LIF(5, beta=torch.rand(5), init_hidden=True))
    net.eval()
    with torch.no_grad():
        net[1].ln_vth.copy_(torch.randn(4) * 0.2)
        net[5].weight.abs_()
    g = snir.export(net, torch.rand(1, 2, 8, 8), leading_dims=1)
    assert isinstance(g.nodes["0"], nir.Conv2d) and isinstance(g.nodes["2"], nir.AvgPool2d)
    assert isinstance(g.nodes["3"], nir.Flatten) and "4" not in g.nodes  # dropout is the identity
    assert g.nodes["1"].v_threshold.shape == (4, 8, 8)
    x = torch.rand(T, 2, 2, 8, 8) * 2
    snn_ssm.reset_states(net)
    with torch.no_grad():
        a = torch.stack([net(x_t) for x_t in x])
        b = snir.import_(g)(x)
    _spiking(a)
    assert torch.equal(a, b)


def test_ssm_neuron_comes_back_whole_and_continues_its_state():
    torch.manual_seed(3)
    net = _mlp(snn_ssm.SSMDendriteLIF(6, d_state=16, learn_beta=True, surrogate="atan"))
    copy = snir.import_(snir.export(net, torch.rand(5, 1, 3)))
    neuron = copy.nodes["1"].neuron
    assert isinstance(neuron, snn_ssm.SSMDendriteLIF) and neuron.surrogate_name == "atan"
    for (name, p), (_, q) in zip(net[1].named_parameters(), neuron.named_parameters()):
        assert torch.equal(p, q) and q.requires_grad, name  # same parameters, still trainable
    x = torch.rand(T, 3, 3) * 4
    snn_ssm.reset_states(net)
    with torch.no_grad():
        a = net(x)
        b = torch.cat([copy(x[:400]), copy(x[400:])])  # the copy keeps its state between calls
    _spiking(a)
    assert torch.equal(a, b)


def test_ssm_dendrite_as_nir_nodes_matches_within_rounding():
    """No metadata: the dendrite runs as Linear(B̄) → I ⟲ Linear(Ā - 1) → Linear(2 Re C) (+ Scale(D)). In float64
    the node form and our FFT convolution differ by rounding of order T·N·ε·|y| ≈ 1000·32·1e-16·10 ≈ 3e-11; δ = 1e-8."""
    torch.manual_seed(4)
    net = _mlp(snn_ssm.SSMDendriteLIF(5, d_state=32, dtype=torch.float64)).double()
    with torch.no_grad():
        net[1].ln_vth.copy_(torch.randn(5, dtype=torch.float64) * 0.3)
    g = snir.export(net, torch.rand(5, 1, 3, dtype=torch.float64))
    sub = g.nodes["1"]
    assert isinstance(sub, nir.NIRGraph) and isinstance(sub.nodes["state"], nir.I)
    assert ("A", "state") in sub.edges and ("state", "A") in sub.edges  # the recurrent loop
    sub.metadata = {}
    copy = snir.import_(g, dtype=torch.float64)
    assert not any(type(m).__name__ == "_Neuron" for m in copy.modules())
    x = torch.rand(T, 2, 3, dtype=torch.float64) * 4
    y = net[1].dendrite(_soma_input(net, x, 1).unsqueeze(-1)).squeeze(-1)
    assert _pre_reset_margin(y, net[1]) > 1e-8
    a, b = _run_both(net, copy, x)
    _spiking(a)
    assert torch.equal(a, b)


def _real_mode_net(seed=5):
    torch.manual_seed(seed)
    net = _mlp(snn_ssm.SSMDendriteLIF(4, d_state=2, beta=0.5))
    with torch.no_grad():
        net[1].dendrite.D.zero_()
        net[1].dendrite.C.copy_(torch.tensor([[[[2.0, 0.0]]] * 4]).reshape(1, 4, 1, 2))
        net[1].dendrite.log_dt.fill_(math.log(0.2))
        net[1].ln_vth.fill_(math.log(0.5))
    return net


def test_one_real_mode_is_a_cuba_lif():
    """CubaLIF's two leaky stages round differently from the complex recurrence; in float32 over T steps with
    filter memory 1/(1-a) ≈ 10 the difference stays below 1e-5 of the membrane (δ)."""
    net = _real_mode_net()
    g = snir.export(net, torch.rand(5, 1, 3))
    assert isinstance(g.nodes["1"], nir.CubaLIF) and isinstance(g.nodes["1_gain"], nir.Scale)
    x = torch.rand(T, 2, 3) * 2
    y = net[1].dendrite(_soma_input(net, x, 1).unsqueeze(-1)).squeeze(-1)
    assert _pre_reset_margin(y, net[1]) > 1e-5
    a, b = _run_both(net, snir.import_(g), x)
    _spiking(a)
    assert torch.equal(a, b)


def _run_snntorch(module, x):
    state, outs = None, []
    with torch.no_grad():
        for x_t in x:
            out, state = module(x_t) if state is None else module(x_t, state)
            outs.append(out)
    return torch.stack(outs)


def test_snntorch_reads_our_lif_net():
    """snnTorch's importer (dt = 1e-4 fixed, resets to zero, no Scale node) reads LIF/Affine graphs; folding the
    threshold scales into the Affine weights is exact for power-of-two thresholds. snnTorch holds β as float64, so
    its membranes differ from our float32 ones by ~1e-7 relative: δ = 1e-5."""
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir
    torch.manual_seed(6)
    net = _mlp(snn_ssm.LIF(8, beta=0.5), snn_ssm.LIF(4, beta=torch.tensor([0.25, 0.5, 0.75, 0.875])))
    with torch.no_grad():
        net[3].ln_vth.copy_(torch.log(torch.tensor([0.5, 1.0, 2.0, 4.0])))
    g = snir.export(net, torch.rand(5, 1, 3), fold_scales=True)
    assert not any(isinstance(n, nir.Scale) for n in g.nodes.values())
    x = torch.rand(T, 4, 3) * 2
    for index in (1, 3):
        assert _pre_reset_margin(_soma_input(net, x, index), net[index]) > 1e-5
    theirs = _run_snntorch(import_from_nir(g), x)
    snn_ssm.reset_states(net)
    with torch.no_grad():
        ours = net(x)
    _spiking(ours)
    assert torch.equal(ours, theirs)


def test_snntorch_reads_a_real_mode_ssm_neuron_as_synaptic():
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir
    net = _real_mode_net(seed=7)
    g = snir.export(net, torch.rand(5, 1, 3), fold_scales=True)
    assert set(g.nodes) == {"input", "0", "1", "output"} and isinstance(g.nodes["1"], nir.CubaLIF)
    x = torch.rand(T, 2, 3) * 2
    y = net[1].dendrite(_soma_input(net, x, 1).unsqueeze(-1)).squeeze(-1)
    assert _pre_reset_margin(y, net[1]) > 1e-5
    theirs = _run_snntorch(import_from_nir(g), x)
    snn_ssm.reset_states(net)
    with torch.no_grad():
        ours = net(x)
    _spiking(ours)
    assert torch.equal(ours, theirs)


def test_swapped_legacy_snntorch_net_exports():
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(8)
    legacy = torch.nn.Sequential(torch.nn.Linear(3, 16), snn.Leaky(beta=0.8, init_hidden=True, reset_mechanism="zero"),
                                 torch.nn.Linear(16, 4), snn.Leaky(beta=0.8, init_hidden=True, reset_mechanism="zero"))
    with pytest.raises(ValueError, match="swap_neurons"):
        snir.export(legacy, torch.rand(1, 3), leading_dims=1)
    net = snn_ssm.swap_neurons(legacy, to="lif")
    g = snir.export(net, torch.rand(1, 3), leading_dims=1)  # snnTorch steps [B, ...]
    copy = snir.import_(g)
    x = torch.rand(T, 3, 3) * 2
    snn_ssm.reset_states(net)
    with torch.no_grad():
        ours = torch.stack([net(x_t) for x_t in x])
        back = copy(x)
    _spiking(ours)
    assert torch.equal(ours, back)


def test_swapped_spikingjelly_net_exports():
    sj = pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import layer, neuron
    torch.manual_seed(9)
    legacy = torch.nn.Sequential(layer.Flatten(step_mode="m"), layer.Linear(12, 10, step_mode="m"),
                                 neuron.LIFNode(tau=2.0, step_mode="m"), layer.Linear(10, 4, step_mode="m"),
                                 neuron.LIFNode(tau=4.0, step_mode="m"))
    net = snn_ssm.swap_neurons(legacy, to="ssm_dendrite_lif", d_state=8)
    x = torch.rand(T, 2, 3, 4) * 3
    with torch.no_grad():
        net(x[:5])  # builds the lazy neurons
        net[4].ln_vth.fill_(math.log(0.05))
    g = snir.export(net, x[:5])
    copy = snir.import_(g)
    sj.functional.reset_net(net)
    with torch.no_grad():
        ours = net(x)
    _spiking(ours)
    assert torch.equal(ours, copy(x))


def _refused():
    from snn_ssm import blocks, layers
    snn = pytest.importorskip("snntorch")

    class Doubled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 4)
            self.lif = snn_ssm.LIF(4)

        def forward(self, x):
            return self.lif(self.fc(x) * 2)

    sdn = snn_ssm.LIF(4)
    sdn.reset_mode = "sdn"
    return {
        "soft reset": (snn_ssm.LIF(4, reset="soft"), "soft"),
        "SDN mode": (sdn, "SDN"),
        "bidirectional kernel": (layers.S4DDendrite(4, bidirectional=True), "bidirectional"),
        "SpikeSampler": (layers.SpikeSampler(4), "stochastic"),
        "GLU mixer": (blocks.SpikingS4D(4), "GLU"),
        "GSU": (blocks.GatedSpikingUnit(4), "gating"),
        "P-SpikeSSM block": (blocks.PSpikeSSMBlock(4), "P-SpikeSSM"),
        "BatchNorm": (torch.nn.BatchNorm1d(4), "normalisation"),
        "ChannelNorm": (layers.ChannelNorm(4, "layer"), "normalisation"),
        "S4 DPLR": (layers.S4DPLR(4), "DPLR"),
        "max pooling": (torch.nn.MaxPool2d(2), "max pooling"),
        "GELU": (torch.nn.GELU(), "activation"),
        "host neuron": (snn.Leaky(beta=0.5), "swap_neurons"),
        "an op between modules": (Doubled(), "mul"),
    }


def test_everything_nir_cannot_express_is_refused_by_name():
    cases = _refused()
    assert len(cases) == 14
    for what, (module, why) in cases.items():
        model = module if what == "an op between modules" else torch.nn.Sequential(torch.nn.Identity(), module)
        with pytest.raises(ValueError, match=why):
            snir.export(model, torch.rand(3, 1, 3 if what == "an op between modules" else 4))
    model = snn_ssm.SpikingSSM(d_input=1, d_output=3, d_model=8, n_layers=2)
    with pytest.raises(ValueError) as err:  # every refused module is named, in one message
        snir.export(model, torch.rand(5, 1, 1))
    assert "blocks.0" in str(err.value) and "blocks.1" in str(err.value)


def test_bad_arguments():
    net = _mlp(snn_ssm.LIF(4))
    with pytest.raises(TypeError, match="model"):
        snir.export("net", torch.rand(2, 1, 3))
    with pytest.raises(TypeError, match="sample_input"):
        snir.export(net, [1.0, 2.0])
    with pytest.raises(ValueError, match="dt"):
        snir.export(net, torch.rand(2, 1, 3), dt=-1.0)
    with pytest.raises(ValueError, match="leading_dims"):
        snir.export(net, torch.rand(2, 1, 3), leading_dims=3)
    with pytest.raises(ValueError, match="sample_input does not run"):
        snir.export(net, torch.rand(2, 1, 7))
    with pytest.raises(ValueError, match="vectors"):
        snir.export(torch.nn.Sequential(torch.nn.Linear(3, 6), snn_ssm.SSMDendriteLIF(4)), torch.rand(2, 1, 4, 3))
    with pytest.raises(TypeError, match="graph"):
        snir.import_("graph.nir")
    with pytest.raises(FileNotFoundError, match="not a file"):
        snir.from_file("/nonexistent/graph.nir")
    delay = nir.NIRGraph.from_list(nir.Delay(np.ones(3)))
    with pytest.raises(ValueError, match="Delay is not supported"):
        snir.import_(delay, dt=1e-4)


def test_edited_subgraph_runs_its_nodes_with_a_warning():
    net = _mlp(snn_ssm.SSMDendriteLIF(4, d_state=4))
    g = snir.export(net, torch.rand(5, 1, 3))
    g.nodes["1"].nodes["D"].scale = g.nodes["1"].nodes["D"].scale * 0  # no longer what the metadata says
    with pytest.warns(UserWarning, match="differ from its metadata"):
        copy = snir.import_(g)
    assert not any(isinstance(m, snn_ssm.SSMDendriteLIF) for m in copy.modules())


@pytest.mark.parametrize("what", ["Scale", "LI", "I", "IF"])
def test_what_snntorch_refuses(what):
    """The README's list: snnTorch 1.0's importer has no Scale, LI, I or Threshold node, and asserts r = 1 for IF."""
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir
    neuron = {"Scale": snn_ssm.LIF(4, beta=0.5, v_th=2.0), "LI": snn_ssm.LIF(4, beta=0.5, reset="none"),
              "I": snn_ssm.LIF(4, beta=1.0, reset="none"), "IF": snn_ssm.LIF(4, beta=1.0)}[what]
    g = snir.export(_mlp(neuron), torch.rand(5, 1, 3))
    assert any(type(n).__name__ == what for n in g.nodes.values())
    with pytest.raises((ValueError, AssertionError)):
        import_from_nir(g)
