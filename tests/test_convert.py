"""swap_neurons keeps swapped networks on the fused kernels, keeps what the host neuron learned, and says when it
does something a user would not expect; to_exact."""
import io
import warnings

import pytest
import torch

import snn_ssm
from snn_ssm.convert import named_surrogate
from snn_ssm.ops import dispatch
from snn_ssm.ops.lif_scan import KernelOptions, _kernel_support

snn = pytest.importorskip("snntorch")
sj = pytest.importorskip("spikingjelly.activation_based")
from snntorch import surrogate as st_surrogate  # noqa: E402
from spikingjelly.activation_based import neuron as sjn, surrogate as sj_surrogate  # noqa: E402


def _backend(neuron) -> str:
    y = torch.zeros(2, 1, 1)
    return dispatch.choose("lif_scan", "cpu", _kernel_support(y, KernelOptions.of(neuron.options)), neuron.backend)


@pytest.mark.parametrize("host, expected", [
    (lambda: snn.Leaky(beta=0.9), ("atan", 2.0)),  # snnTorch's default spike_grad
    (lambda: snn.Leaky(beta=0.9, spike_grad=st_surrogate.atan(alpha=3.0)), ("atan", 3.0)),
    (lambda: snn.Leaky(beta=0.9, spike_grad=st_surrogate.sigmoid(slope=5)), ("sigmoid", 5.0)),
    (lambda: sjn.LIFNode(), ("sigmoid", 4.0)),  # SpikingJelly's default surrogate
    (lambda: sjn.LIFNode(surrogate_function=sj_surrogate.ATan(alpha=1.5)), ("atan", 1.5)),
])
def test_host_surrogates_become_ours_and_run_the_kernels(host, expected):
    new = snn_ssm.swap_neurons(torch.nn.Sequential(host()), to="lif")[0]
    assert named_surrogate(host().spike_grad if hasattr(host(), "spike_grad") else host().surrogate_function) \
        == expected
    assert (new.fire.name, new.fire.alpha) == expected
    if dispatch.available("numba"):
        assert _backend(new) == "numba"


def test_same_gradient_as_the_host_surrogate():
    x = torch.linspace(-1, 1, 41, requires_grad=True)
    for host_fn in (st_surrogate.atan(alpha=3.0), st_surrogate.sigmoid(slope=5), sj_surrogate.ATan(alpha=1.5),
                    sj_surrogate.Sigmoid(alpha=4.0)):
        name, alpha = named_surrogate(host_fn)
        ours = snn_ssm.functional.surrogate.resolve(name, alpha)
        g_host = torch.autograd.grad(host_fn(x).sum(), x)[0]
        g_ours = torch.autograd.grad(ours(x).sum(), x)[0]
        torch.testing.assert_close(g_ours, g_host)


def test_swapped_snntorch_net_pickles_and_custom_surrogates_warn():
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), snn.Leaky(beta=0.5, init_hidden=True))
    snn_ssm.swap_neurons(net, to="lif")
    torch.save(net, io.BytesIO())  # the carried atan closure would not pickle
    custom = torch.nn.Sequential(snn.Leaky(beta=0.5, spike_grad=lambda x: (x > 0).float()))
    with pytest.warns(UserWarning, match="no fused kernel"):
        snn_ssm.swap_neurons(custom, to="lif")
    with pytest.warns(UserWarning, match="fast_sigmoid has no fused kernel"):
        snn_ssm.swap_neurons(torch.nn.Sequential(snn.Leaky(beta=0.5, spike_grad=st_surrogate.fast_sigmoid())),
                             to="lif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the caller's choice of surrogate wins and says nothing
        snn_ssm.swap_neurons(torch.nn.Sequential(snn.Leaky(beta=0.5, spike_grad=lambda x: x)), to="lif",
                             surrogate="triangle")


def test_learned_leak_stays_learnable_and_odd_requests_are_named():
    plif = snn_ssm.swap_neurons(torch.nn.Sequential(sjn.ParametricLIFNode(init_tau=4.0, decay_input=False)),
                                to="lif")[0]
    assert isinstance(plif.beta, torch.nn.Parameter) and plif.beta.item() == pytest.approx(0.75)
    with pytest.warns(UserWarning, match="returned unchanged"):
        snn_ssm.swap_neurons(torch.nn.Sequential(torch.nn.Linear(2, 2), sjn.IzhikevichNode()))
    with pytest.raises(ValueError, match="not a LIF-family neuron"):
        snn_ssm.swap_neurons(torch.nn.Sequential(sjn.LIFNode()), to="spike_sampler")
    with pytest.raises(TypeError, match="model must be"):
        snn_ssm.to_exact("model")


def test_to_host_gives_the_host_neuron_back_with_the_same_spikes():
    from snn_ssm.snntorch import LIF as StLIF
    from snn_ssm.spikingjelly import LIF as SjLIF

    x = torch.randn(300, 4, 8)
    # snnTorch: threshold 1, beta 0.5 compute the same floats in both forms; the spike function is the same object
    ours = StLIF(8, beta=0.5, threshold=1.0, surrogate="atan")
    host = snn_ssm.swap_neurons(ours, to="host")
    assert type(host) is snn.Leaky and not host.reset_delay
    s_ours = torch.stack([ours(x_t)[0] for x_t in x])
    s_host = torch.stack([host(x_t)[0] for x_t in x])
    assert s_ours.sum() > 50 and torch.equal(s_ours, s_host)
    # SpikingJelly: a net with one LIF and one SSM neuron; only the LIF goes back
    net = torch.nn.Sequential(SjLIF(8, beta=0.5, reset="soft", step_mode="m", surrogate="sigmoid"),
                              snn_ssm.spikingjelly.SSMDendriteLIF(8, d_state=4, step_mode="m"))
    ref = net[0](x)
    net[0].reset()
    snn_ssm.swap_neurons(net, to="host")
    assert type(net[0]) is sjn.LIFNode and isinstance(net[0].surrogate_function, sj_surrogate.Sigmoid)
    assert type(net[1]) is snn_ssm.spikingjelly.SSMDendriteLIF
    assert torch.equal(net[0](x), ref)
    with pytest.raises(ValueError, match="per-channel beta"):
        snn_ssm.swap_neurons(StLIF(4, beta=torch.rand(4)), to="host")
    with pytest.raises(ValueError, match="reset"):
        snn_ssm.swap_neurons(SjLIF(4, reset="none"), to="host")
