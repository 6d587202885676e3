"""snn_ssm's SpikingJelly neurons under the legacy SpikingJelly 0.0.0.0.14 (run by `make test-legacy`)."""
from importlib import metadata

import np_int_shim  # noqa: F401  (restores np.int for 0.0.0.0.14's CuPy kernels)
import pytest
import torch

# This suite only means something under the legacy release; run elsewhere it must say so, not pass vacuously.
_installed = metadata.version("spikingjelly")
if _installed != "0.0.0.0.14":
    raise RuntimeError(f"this suite tests SpikingJelly 0.0.0.0.14 but {_installed} is installed; "
                       "run it with `make test-legacy`, which builds its own venv")

from spikingjelly.activation_based import functional, neuron  # noqa: E402
from spikingjelly.activation_based.model import parametric_lif_net  # noqa: E402

import snn_ssm  # noqa: E402
from snn_ssm.spikingjelly import LIF, SSMDendriteLIF  # noqa: E402


@pytest.mark.parametrize("cls", [LIF, SSMDendriteLIF])
def test_step_modes_reset_and_detach(cls):
    x = torch.randn(100, 3, 4, dtype=torch.float64, requires_grad=True)
    n = cls(4, step_mode="m", dtype=torch.float64)
    s_m = n(x)
    functional.reset_net(n)
    functional.set_step_mode(n, "s")
    s_s = torch.stack([n(x[t]) for t in range(100)])
    assert torch.equal(s_m, s_s)
    s_s.sum().backward()
    functional.detach_net(n)
    n(x[0]).sum().backward()  # the detached state carries no old graph


def test_legacy_set_backend_switches_our_neurons():
    net = torch.nn.Sequential(SSMDendriteLIF(4, step_mode="m"), LIF(4, step_mode="m"))
    functional.set_backend(net, "cupy")
    assert net[0].backend == "cupy" and net[1].backend == "cupy"
    if not torch.cuda.is_available():
        with pytest.raises((ValueError, ImportError), match="device cpu|not installed"):
            net(torch.randn(5, 2, 4))
    else:
        net = net.cuda()
        x = torch.randn(50, 2, 4, device="cuda")
        s_cupy = net(x)
        functional.reset_net(net)
        functional.set_backend(net, "torch")
        assert torch.equal(net(x), s_cupy)
    functional.set_backend(net, "torch")
    assert net[0].backend == "torch"


def test_equals_legacy_lifnode_spike_for_spike():
    x = torch.randn(2000, 4, 8)
    ref = neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=0.0, step_mode="m")
    ours = LIF(8, beta=0.5, step_mode="m")
    s_ref = ref(x)
    assert s_ref.sum() > 100 and torch.equal(s_ref, ours(x))


def test_legacy_model_zoo_and_swap():
    net = parametric_lif_net.MNISTNet(channels=8, spiking_neuron=SSMDendriteLIF, step_mode="m", backend="torch",
                                      d_state=4)
    functional.set_step_mode(net, "m")
    out = net(torch.rand(2, 2, 1, 28, 28))
    out.sum().backward()
    functional.reset_net(net)
    old = parametric_lif_net.MNISTNet(channels=8, spiking_neuron=neuron.LIFNode, tau=2.0, detach_reset=True)
    functional.set_step_mode(old, "m")
    snn_ssm.swap_neurons(old, to="lif")
    assert sum(isinstance(m, LIF) for m in old.modules()) == 4
    assert old(torch.rand(2, 2, 1, 28, 28)).shape == (2, 2, 10)
