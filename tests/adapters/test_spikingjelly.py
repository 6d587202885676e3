"""Conformance with SpikingJelly 2.0.0: memories, step modes, reset/detach, builders, and LIFNode equivalence."""
import pytest
import torch

sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import base, functional, neuron, surrogate  # noqa: E402
from spikingjelly.activation_based.model import ms_resnet, parametric_lif_net  # noqa: E402

import snn_ssm  # noqa: E402
from snn_ssm import layers  # noqa: E402
from snn_ssm.spikingjelly import LIF, SSMDendriteLIF  # noqa: E402


def steps(n, x):
    functional.set_step_mode(n, "s")
    return torch.stack([n(x[t]) for t in range(x.shape[0])])


def test_is_a_memory_module_with_memories():
    n = SSMDendriteLIF(4, step_mode="m")
    assert isinstance(n, base.MemoryModule)
    assert [k for k, _ in n.named_memories()] == ["v", "h"]
    n(torch.randn(10, 2, 4))
    v, h = base.extract_memories(n)
    assert v.shape == (2, 4) and h is not None
    m = SSMDendriteLIF(4, step_mode="m")
    m.load_state_dict(n.state_dict())
    base.load_memories(m, base.extract_memories(n))
    x = torch.randn(5, 2, 4)
    assert torch.equal(m(x), n(x))


@pytest.mark.parametrize("cls, dtype", [(LIF, torch.float32), (SSMDendriteLIF, torch.float64)])
def test_single_step_mode_equals_multi_step(cls, dtype):
    x = torch.randn(200, 3, 5, 2, dtype=dtype)
    n = cls(5, step_mode="m", dtype=dtype)
    s_m = n(x)
    v_m = n.v
    functional.reset_net(n)
    assert torch.equal(steps(n, x), s_m)
    torch.testing.assert_close(n.v, v_m, rtol=1e-9, atol=1e-9)


def test_adapter_equals_core_outputs_gradients_and_state():
    x = torch.randn(40, 2, 3, requires_grad=True)
    core = layers.SSMDendriteLIF(3)
    sjn = SSMDendriteLIF(3, step_mode="m")
    sjn.load_state_dict(core.state_dict())
    w = torch.randn(40, 2, 3)
    ((core(x[:25]) * w[:25]).sum() + (core(x[25:]) * w[25:]).sum()).backward()
    g_core = x.grad.clone(), core.ln_vth.grad.clone(), core.dendrite.C.grad.clone()
    x.grad = None
    ((sjn(x[:25]) * w[:25]).sum() + (sjn(x[25:]) * w[25:]).sum()).backward()
    for a, b in zip(g_core, (x.grad, sjn.ln_vth.grad, sjn.dendrite.C.grad)):
        torch.testing.assert_close(a, b)
    assert torch.equal(core.state.v, sjn.v)
    torch.testing.assert_close(core.state.h, sjn.state.h)


def test_reset_net_touches_only_the_given_network():
    a = torch.nn.Sequential(torch.nn.Linear(3, 3), SSMDendriteLIF(3, step_mode="m"))
    b = torch.nn.Sequential(torch.nn.Linear(3, 3), SSMDendriteLIF(3, step_mode="m"))
    x = torch.randn(6, 2, 3)
    a(x), b(x)
    functional.reset_net(a)
    assert a[1].v is None and a[1].h is None
    assert b[1].v is not None and b[1].h is not None


def test_detach_net_allows_truncated_bptt_and_set_step_mode_reaches_nested():
    net = torch.nn.Sequential(torch.nn.Sequential(SSMDendriteLIF(3)), LIF(3))
    functional.set_step_mode(net, "m")
    assert net[0][0].step_mode == "m" and net[1].step_mode == "m"
    x = torch.randn(20, 2, 3, requires_grad=True)
    net(x[:10]).sum().backward()
    functional.detach_net(net)
    net(x[10:]).sum().backward()


def test_state_follows_to_and_surrogate_function_is_used():
    n = SSMDendriteLIF(3, step_mode="m", surrogate_function=surrogate.ATan(alpha=3.0))
    n(torch.randn(5, 2, 3))
    n.double()
    assert n.v.dtype == torch.float64 and n.h.dtype == torch.complex128
    x = torch.full((1, 1, 3), 0.5, dtype=torch.float64, requires_grad=True)
    m = LIF(3, step_mode="m", surrogate_function=surrogate.ATan(alpha=3.0), dtype=torch.float64)
    m(x).sum().backward()
    # ATan(alpha) gradient at u' - 1 = -0.5: (alpha/2) / (1 + (pi/2 * alpha * -0.5)^2)
    expect = 1.5 / (1 + (torch.pi / 2 * 3.0 * 0.5) ** 2)
    torch.testing.assert_close(x.grad, torch.full_like(x, expect))


LONG = 2000


@pytest.mark.parametrize("tau, v_threshold, v_reset", [(2.0, 1.0, 0.0), (4.0, 0.5, 0.0), (2.0, 1.0, None)])
def test_lif_reproduces_lifnode_spike_for_spike(tau, v_threshold, v_reset):
    """LIFNode(decay_input=False): v <- (1 - 1/tau) v + x, so beta = 1 - 1/tau and v_th = v_threshold. With
    tau and v_threshold powers of two both compute the same rounded numbers: spikes must match exactly."""
    x = torch.randn(LONG, 4, 8)
    ref = neuron.LIFNode(tau=tau, decay_input=False, v_threshold=v_threshold, v_reset=v_reset, step_mode="m")
    ours = LIF(8, beta=1 - 1 / tau, v_th=v_threshold, reset="soft" if v_reset is None else "hard", step_mode="m")
    s_ref, s_ours = ref(x), ours(x)
    assert s_ref.sum() > 100
    assert torch.equal(s_ref, s_ours)
    torch.testing.assert_close(ours.v * v_threshold, ref.v, rtol=0, atol=1e-6)


def test_lif_reproduces_decay_input_lifnode_up_to_rounding_flips():
    """decay_input=True scales the input by 1/tau: v_th = tau * v_threshold. The two formulas round differently,
    so a membrane within float rounding of the threshold may flip: bound 1 in 10^4 neuron-steps."""
    x = torch.randn(LONG, 4, 8) * 2
    ref = neuron.LIFNode(tau=3.0, decay_input=True, v_threshold=0.7, step_mode="m")
    ours = LIF(8, beta=1 - 1 / 3.0, v_th=3.0 * 0.7, step_mode="m")
    s_ref, s_ours = ref(x), ours(x)
    assert s_ref.sum() > 100
    assert int((s_ref != s_ours).sum()) <= x.numel() // 10_000


def test_input_gradient_matches_lifnode_with_the_same_surrogate():
    x = torch.randn(300, 2, 4, requires_grad=True)
    ref = neuron.LIFNode(tau=2.0, decay_input=False, detach_reset=True, step_mode="m",
                         surrogate_function=surrogate.ATan())
    ours = LIF(4, beta=0.5, detach_reset=True, step_mode="m", surrogate_function=surrogate.ATan())
    w = torch.randn(300, 2, 4)
    (ref(x) * w).sum().backward()
    g = x.grad.clone()
    x.grad = None
    (ours(x) * w).sum().backward()
    torch.testing.assert_close(x.grad, g, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", [LIF, SSMDendriteLIF])
def test_model_zoo_builders(cls):
    net = parametric_lif_net.MNISTNet(channels=8, spiking_neuron=cls, step_mode="m", d_state=4) \
        if cls is SSMDendriteLIF else parametric_lif_net.MNISTNet(channels=8, spiking_neuron=cls, step_mode="m")
    functional.set_step_mode(net, "m")
    out = net(torch.rand(3, 2, 1, 28, 28))
    assert out.shape == (3, 2, 10)
    out.sum().backward()
    ours = [m for m in net.modules() if isinstance(m, cls)]
    assert len(ours) == 4 and all(m.v is not None for m in ours)
    functional.reset_net(net)
    assert all(m.v is None for m in ours)
    res = ms_resnet.ms_resnet18(T=2, num_classes=10, spiking_neuron=cls)
    res(torch.rand(2, 3, 32, 32)).sum().backward()
    assert sum(isinstance(m, cls) for m in res.modules()) == 17


def test_swap_neurons_in_a_model_zoo_net():
    net = parametric_lif_net.MNISTNet(channels=8, spiking_neuron=neuron.LIFNode, tau=4.0, decay_input=False,
                                      v_threshold=0.5, detach_reset=True)
    functional.set_step_mode(net, "m")
    functional.reset_net(net)  # fills SpikingJelly's reset cache with the old neurons
    snn_ssm.swap_neurons(net, d_state=4)
    ours = [m for m in net.modules() if isinstance(m, SSMDendriteLIF)]
    assert len(ours) == 4 and not any(isinstance(m, neuron.LIFNode) for m in net.modules())
    assert ours[0].beta.item() == 0.75 and ours[0].v_th_init == 0.5 and ours[0].detach_reset
    assert ours[0].step_mode == "m" and ours[0].dendrite.d_state == 4
    net(torch.rand(2, 2, 1, 28, 28))
    functional.reset_net(net)
    assert all(m.v is None for m in ours)


def test_swap_maps_decay_input_ifnode_plif_and_soft_reset():
    lif = snn_ssm.swap_neurons(neuron.LIFNode(tau=2.0, v_threshold=1.5, v_reset=None), to="lif")
    assert isinstance(lif, LIF) and lif.v_th_init == 3.0 and lif.reset_kind == "soft" and lif.beta.item() == 0.5
    if_ = snn_ssm.swap_neurons(torch.nn.Sequential(neuron.IFNode()), to="lif")[0]
    assert if_.beta.item() == 1.0
    plif = snn_ssm.swap_neurons(neuron.ParametricLIFNode(init_tau=4.0, decay_input=False), to="lif")
    assert plif.beta.item() == pytest.approx(0.75)


def test_backend_option_and_set_backend():
    net = torch.nn.Sequential(SSMDendriteLIF(3, step_mode="m", backend="torch"), LIF(3, step_mode="m"))
    assert net[0].backend == "torch" and net[1].backend == "auto"
    assert "cupy" in net[0].supported_backends
    assert snn_ssm.set_backend(net, "torch") == 2 and net[1].backend == "torch"
    x = torch.randn(6, 2, 3)
    with pytest.raises(ValueError, match="backend must be"):
        snn_ssm.set_backend(net, "cuda")
    out = net(x)
    functional.reset_net(net)
    snn_ssm.set_backend(net, "auto")
    assert torch.equal(net(x), out)  # every backend returns the reference's spikes


def test_swap_keeps_a_neuron_whose_parameter_is_zero():
    plif = neuron.ParametricLIFNode(init_tau=2.0)  # w = 0 exactly: a falsy one-element tensor
    assert float(plif.w.detach()) == 0.0
    swapped = snn_ssm.swap_neurons(torch.nn.Sequential(plif), to="lif")[0]
    assert isinstance(swapped, LIF) and swapped.beta.item() == pytest.approx(0.5)
