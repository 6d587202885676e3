"""``torch.compile`` smoke tests: every neutral neuron traces (dynamo + AOT autograd, ``aot_eager`` so the test
needs no C++ toolchain) and gives the spikes and gradients of the eager module."""
import pytest
import torch

import snn_ssm


def _neurons():
    out = [pytest.param(lambda: snn_ssm.SpikeSampler(4, seed=0), id="SpikeSampler")]
    for backend in ("torch", "auto"):  # the reference traced into the graph; a kernel behind a graph break
        out += [pytest.param(lambda b=backend: snn_ssm.LIFSoma(4, backend=b), id=f"LIFSoma-{backend}"),
                pytest.param(lambda b=backend: snn_ssm.LIF(4, backend=b), id=f"LIF-{backend}"),
                pytest.param(lambda b=backend: snn_ssm.SSMDendriteLIF(4, d_state=8, backend=b),
                             id=f"SSMDendriteLIF-{backend}")]
    return out


@pytest.mark.parametrize("make", _neurons())
def test_compiled_neuron_equals_eager(make):
    torch._dynamo.reset()
    eager, compiled = make(), make()
    compiled.load_state_dict(eager.state_dict())
    fn = torch.compile(compiled, backend="aot_eager", fullgraph=False)
    x = (torch.rand(12, 2, 4) * 1.5).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    s_e, s_c = eager(x), fn(x2)
    assert torch.equal(s_e, s_c) and s_e.sum() > 0
    (s_e * torch.arange(4.0)).sum().backward()
    (s_c * torch.arange(4.0)).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)


def test_compiled_model_equals_eager():
    torch._dynamo.reset()
    model = snn_ssm.SpikingSSM(1, 10, d_model=8, n_layers=2, d_state=8)
    fn = torch.compile(model, backend="aot_eager")
    x = torch.rand(30, 2, 1)
    torch.testing.assert_close(fn(x), model(x))


def test_compiled_model_still_rejects_nan():
    torch._dynamo.reset()
    model = snn_ssm.SpikingSSM(1, 10, d_model=8, n_layers=1, d_state=8)
    fn = torch.compile(model, backend="aot_eager")
    fn(torch.rand(30, 2, 1))
    with pytest.raises(ValueError, match="NaN or Inf"):
        fn(torch.full((30, 2, 1), float("nan")))
