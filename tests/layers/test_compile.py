"""``torch.compile`` with ``fullgraph=True`` (zero graph breaks): every neutral neuron and the named models trace
(dynamo + AOT autograd with ``aot_eager``, so the test needs no C++ toolchain, and the kernels' fake
implementations are exercised) and give the outputs and gradients of the eager module."""
import pytest
import torch

import snn_ssm


def _neurons():
    # A seeded sampler draws from its own torch.Generator, which dynamo cannot trace: it compiles with a graph
    # break; an unseeded one draws from the global generator and compiles whole.
    out = [pytest.param(lambda: snn_ssm.SpikeSampler(4), id="SpikeSampler"),
           pytest.param(lambda: snn_ssm.SpikeSampler(4, seed=0), id="SpikeSampler-seeded")]
    for backend in ("torch", "auto"):  # the reference traced into the graph; a kernel as one custom-op node
        out += [pytest.param(lambda b=backend: snn_ssm.LIFSoma(4, backend=b), id=f"LIFSoma-{backend}"),
                pytest.param(lambda b=backend: snn_ssm.LIF(4, backend=b), id=f"LIF-{backend}"),
                pytest.param(lambda b=backend: snn_ssm.LIF(4, backend=b, reset="soft", surrogate="atan"),
                             id=f"LIF-soft-atan-{backend}"),
                pytest.param(lambda b=backend: snn_ssm.SSMDendriteLIF(4, d_state=8, backend=b),
                             id=f"SSMDendriteLIF-{backend}")]
    return out


def _grads(module, x):
    return [x.grad] + [p.grad for p in module.parameters() if p.requires_grad]


@pytest.mark.parametrize("make", _neurons())
def test_compiled_neuron_equals_eager(make):
    torch._dynamo.reset()
    eager, compiled = make(), make()
    x = (torch.rand(12, 2, 4) * 1.5).requires_grad_()
    eager(x.detach()), compiled(x.detach())  # build the lazy parameters, then give both the same
    compiled.load_state_dict(eager.state_dict())
    for m in (eager, compiled):
        snn_ssm.reset_states(m)
    fn = torch.compile(compiled, backend="aot_eager", fullgraph=getattr(compiled, "seed", None) is None)
    x2 = x.detach().clone().requires_grad_()
    torch.manual_seed(0)
    s_e = eager(x)
    torch.manual_seed(0)
    s_c = fn(x2)
    assert torch.equal(s_e, s_c) and s_e.sum() > 0
    (s_e * torch.arange(4.0)).sum().backward()
    (s_c * torch.arange(4.0)).sum().backward()
    for g_e, g_c in zip(_grads(eager, x), _grads(compiled, x2)):
        torch.testing.assert_close(g_e, g_c)


MODELS = {
    "SpikingSSM": lambda: snn_ssm.SpikingSSM(1, 10, d_model=8, n_layers=2, d_state=8),
    "S4D": lambda: snn_ssm.S4D(1, 10, d_model=8, n_layers=2, d_state=8),
    "BinaryS4DNet": lambda: snn_ssm.BinaryS4DNet(1, 10, d_model=8, n_layers=2, d_state=8),
    "BinaryS4DGSUNet": lambda: snn_ssm.BinaryS4DGSUNet(1, 10, d_model=8, n_layers=2, d_state=8),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_compiled_model_equals_eager_forward_and_backward(name):
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = MODELS[name]().eval()  # eval: dropout off, so both runs see the same network
    fn = torch.compile(model, backend="aot_eager", fullgraph=True)
    x = torch.rand(30, 2, 1)
    out_c = fn(x)
    out_c.square().sum().backward()
    grads_c = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    out_e = model(x)
    out_e.square().sum().backward()
    grads_e = [p.grad for p in model.parameters() if p.grad is not None]
    torch.testing.assert_close(out_c, out_e)
    assert len(grads_c) == len(grads_e) > 0
    for g_c, g_e in zip(grads_c, grads_e):
        torch.testing.assert_close(g_c, g_e)


def test_pspikessm_compiles():
    torch._dynamo.reset()
    model = snn_ssm.PSpikeSSM(1, 10, d_model=8, n_layers=1, d_state=8).eval()
    x = torch.rand(30, 2, 1)
    torch.manual_seed(1)
    out_c = torch.compile(model, backend="aot_eager")(x)
    torch.manual_seed(1)
    torch.testing.assert_close(out_c, model(x))


def test_eager_checks_nan_compiled_trusts_its_input():
    """The finite check is a host synchronisation: eager models run it where data enters; a compiled model skips it
    (it would break the graph and wait for the device at every call)."""
    torch._dynamo.reset()
    model = snn_ssm.SpikingSSM(1, 10, d_model=8, n_layers=1, d_state=8)
    bad = torch.full((30, 2, 1), float("nan"))
    with pytest.raises(ValueError, match="NaN or Inf"):
        model(bad)
    fn = torch.compile(model, backend="aot_eager", fullgraph=True)
    assert torch.isnan(fn(bad)).all()


def test_functions_folded_at_compile_time_take_only_plain_constants(monkeypatch):
    """Every ``assume_constant_result`` function in the package (the backend plans) is called with numbers,
    strings, dtypes, ``None`` and named tuples only: torch < 2.13 cannot fold a call that is handed a frozen
    dataclass such as ``SomaOptions`` (seen with torch 2.11 on CUDA: "can't reconstruct arbitrary frozen
    dataclass instances"), so a model that passed one would not compile there."""
    import importlib
    import pkgutil

    seen = []
    plain = (str, int, float, bool, type(None), torch.dtype, tuple)
    for info in pkgutil.walk_packages(snn_ssm.__path__, "snn_ssm."):
        if info.name.split(".")[-1] in ("cupy", "triton"):
            continue  # GPU-only modules: nothing there is folded
        module = importlib.import_module(info.name)
        for name, fn in list(vars(module).items()):
            if callable(fn) and getattr(fn, "_dynamo_marked_constant", False) and fn.__module__ == info.name:
                def spy(*args, _fn=fn, _name=f"{info.name}.{name}", **kwargs):
                    seen.append((_name, [type(a) for a in (*args, *kwargs.values())]))
                    return _fn(*args, **kwargs)
                monkeypatch.setattr(module, name, spy)
    torch.manual_seed(0)
    x = torch.rand(40, 2, 1)
    for backend in ("auto", "numba", "torch"):
        model = snn_ssm.SpikingSSM(1, 10, d_model=8, n_layers=1, d_state=4)
        snn_ssm.set_backend(model, backend)
        model(x)
        snn_ssm.LIF(4, backend=backend)(torch.rand(30, 2, 4))
    names = {n for n, _ in seen}
    assert {"snn_ssm.ops.lif_scan._plan", "snn_ssm.ops.ssm_lif._fused_kernel"} <= names, names
    for name, types in seen:
        assert all(issubclass(t, plain) for t in types), (name, types)
