"""Conformance with snnTorch 1.0.0: Leaky conventions, reset/detach, losses, pickling, and Leaky equivalence."""
import io

import pytest
import torch

snn = pytest.importorskip("snntorch")
import snntorch.functional as SF  # noqa: E402
from snntorch import surrogate, utils  # noqa: E402

import snn_ssm  # noqa: E402
from snn_ssm import layers  # noqa: E402
from snn_ssm.snntorch import LIF, SSMDendriteLIF  # noqa: E402


def explicit_loop(n, x):
    mem = n.init_leaky()
    spikes = []
    for t in range(x.shape[0]):
        spk, mem = n(x[t], mem)
        spikes.append(spk)
    return torch.stack(spikes), mem


def test_explicit_state_loop_equals_multi_step_and_core():
    x = torch.randn(60, 3, 4, dtype=torch.float64)
    step = SSMDendriteLIF(4, dtype=torch.float64)
    seq = SSMDendriteLIF(4, multi_step=True, dtype=torch.float64)
    core = layers.SSMDendriteLIF(4, dtype=torch.float64)
    seq.load_state_dict(step.state_dict())
    core.load_state_dict(step.state_dict())
    s_loop, mem = explicit_loop(step, x)
    s_seq, mem_seq = seq(x)
    assert torch.equal(s_loop, s_seq) and torch.equal(s_seq, core(x))
    torch.testing.assert_close(mem, mem_seq)
    torch.testing.assert_close(mem_seq, core.state.v)


def test_gradients_equal_core():
    x = torch.randn(30, 2, 3, requires_grad=True)
    ours = SSMDendriteLIF(3, multi_step=True)
    core = layers.SSMDendriteLIF(3)
    core.load_state_dict(ours.state_dict())
    w = torch.randn(30, 2, 3)
    (ours(x)[0] * w).sum().backward()
    g = x.grad.clone(), ours.dendrite.log_dt.grad.clone()
    x.grad = None
    (core(x) * w).sum().backward()
    torch.testing.assert_close(g[0], x.grad)
    torch.testing.assert_close(g[1], core.dendrite.log_dt.grad)


def test_init_hidden_and_output_conventions():
    n = LIF(4, init_hidden=True)
    out = n(torch.rand(2, 4))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 4)
    with pytest.raises(TypeError, match="init_hidden"):
        n(torch.rand(2, 4), torch.zeros(2, 4))
    spk, mem = LIF(4, init_hidden=True, output=True)(torch.rand(2, 4))
    assert mem.shape == (2, 4)
    spk, mem = LIF(4)(torch.rand(2, 4))
    assert spk.shape == mem.shape == (2, 4)


def test_utils_reset_and_reset_mem_clear_membrane_and_dendrite():
    n = SSMDendriteLIF(3, init_hidden=True)
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), n)
    for _ in range(5):
        net(torch.randn(2, 3))
    assert n.mem.shape == (2, 3) and n._state.h is not None
    utils.reset(net)
    assert not n.mem.any() and n._state.h is None
    net(torch.randn(4, 3))  # a new batch size after a reset is fine
    n.reset_mem()
    assert n.mem.numel() == 0 and n._state == (None, None)


def test_detach_hidden_truncates_bptt_through_the_dendrite_too():
    n = SSMDendriteLIF(3, init_hidden=True)
    x = torch.randn(20, 2, 3, requires_grad=True)
    torch.stack([n(x[t]) for t in range(10)]).sum().backward()
    snn.Leaky.detach_hidden()
    torch.stack([n(x[t]) for t in range(10, 20)]).sum().backward()  # no "backward twice" error


def test_passing_back_a_detached_mem_continues_the_dendrite():
    x = torch.randn(10, 2, 3, dtype=torch.float64)
    a = SSMDendriteLIF(3, dtype=torch.float64)
    b = SSMDendriteLIF(3, dtype=torch.float64)
    b.load_state_dict(a.state_dict())
    s_a, _ = explicit_loop(a, x)
    mem, out = b.init_leaky(), []
    for t in range(10):
        spk, mem = b(x[t], mem.detach())
        out.append(spk)
    assert torch.equal(torch.stack(out), s_a)


LONG = 2000


@pytest.mark.parametrize("mechanism, delay", [("zero", True), ("zero", False), ("subtract", False)])
def test_lif_reproduces_leaky_spike_for_spike(mechanism, delay):
    """Leaky: mem = beta*mem + x with the reset of the previous (reset_delay=True) or same step; at threshold 1
    and beta = 0.5 both compute identical floats, and Leaky's strict '>' differs from our '>=' only at equality.
    For 'subtract', Leaky tests its spike after subtracting again whenever the previous post-reset membrane is still
    above threshold (membrane >= 2 thresholds); inputs in [-0.5, 0.9] keep the membrane below that."""
    x = torch.randn(LONG, 4, 8) if mechanism == "zero" else torch.rand(LONG, 4, 8) * 1.4 - 0.5
    ref = snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism=mechanism, reset_delay=delay)
    ours = LIF(8, beta=0.5, threshold=1.0, reset_mechanism=mechanism)
    s_ref, m_ref = explicit_loop(ref, x)
    s_ours, m_ours = explicit_loop(ours, x)
    assert s_ref.sum() > 100
    assert torch.equal(s_ref, s_ours)
    if not delay:
        torch.testing.assert_close(m_ours, m_ref, rtol=0, atol=1e-6)


def test_works_with_snntorch_losses_and_surrogates():
    net = torch.nn.Sequential(torch.nn.Linear(20, 16), SSMDendriteLIF(16, init_hidden=True, multi_step=True),
                              torch.nn.Linear(16, 10),
                              LIF(10, init_hidden=True, multi_step=True, spike_grad=surrogate.fast_sigmoid()))
    spk = net(torch.rand(25, 8, 20) * 3)
    loss = SF.ce_rate_loss()(spk, torch.randint(0, 10, (8,)))
    loss.backward()
    assert net[0].weight.grad.abs().sum() > 0
    targets = torch.randint(0, 10, (8,))  # snnTorch's accuracy reads our spikes as its own: the most active output
    assert SF.accuracy_rate(spk, targets) == pytest.approx(float((spk.sum(0).argmax(1) == targets).float().mean()))


def test_save_and_state_dict_round_trip():
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), SSMDendriteLIF(4, init_hidden=True))
    x = torch.randn(4)[None]
    net(x)
    buf = io.BytesIO()
    torch.save(net, buf)
    buf.seek(0)
    again = torch.load(buf, weights_only=False)
    fresh = torch.nn.Sequential(torch.nn.Linear(4, 4), SSMDendriteLIF(4, init_hidden=True))
    fresh.load_state_dict(net.state_dict())
    utils.reset(net)
    for m in (again, fresh):
        m[1].reset_mem()
    assert torch.equal(again(x), net(x)) and torch.equal(fresh(x), again(x))


def test_threshold_and_beta_are_the_neurons_parameters():
    n = LIF(3, beta=0.3, threshold=2.0, learn_threshold=True)
    assert torch.allclose(n.threshold, torch.full((3,), 2.0)) and n.beta.item() == pytest.approx(0.3)
    assert "threshold" not in dict(n.named_buffers()) and "ln_vth" in dict(n.named_parameters())
    with pytest.raises(ValueError, match="reset_mechanism"):
        LIF(3, reset_mechanism="hard")


def test_swap_leaky():
    net = torch.nn.Sequential(torch.nn.Linear(10, 5),
                              snn.Leaky(beta=0.9, threshold=0.8, init_hidden=True, reset_mechanism="zero"))
    snn_ssm.swap_neurons(net, d_state=4)
    n = net[1]
    assert isinstance(n, SSMDendriteLIF) and n.init_hidden and n.reset_kind == "hard"
    assert n.beta.item() == pytest.approx(0.9) and n.v_th_init == pytest.approx(0.8)
    assert net(torch.rand(2, 10)).shape == (2, 5)
    with pytest.raises(ValueError, match="graded"):
        snn_ssm.swap_neurons(snn.Leaky(beta=0.5, graded_spikes_factor=2.0))


def test_set_backend_reaches_the_neuron_inside_an_adapter():
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), SSMDendriteLIF(3, init_hidden=True, multi_step=True))
    assert snn_ssm.set_backend(net, "torch") == 1 and net[1].backend == "torch"


def test_spike_rate_monitor_counts_snntorch_adapters():
    from snn_ssm.metrics import SpikeRateMonitor

    net = torch.nn.Sequential(torch.nn.Linear(5, 6), SSMDendriteLIF(6, init_hidden=True, multi_step=True))
    x = torch.rand(20, 3, 5) * 3
    with SpikeRateMonitor(net) as mon:
        s = net(x)
    assert mon.rates() == {"1": pytest.approx(float(s.mean()))} and float(s.mean()) > 0
