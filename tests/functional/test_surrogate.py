import pickle

import pytest
import torch

from snn_ssm.functional import surrogate as sg

NAMES = sorted(sg.SURROGATES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("alpha", [None, 0.5, 3.0])
def test_gradient_is_derivative_of_primitive(name, alpha):
    x = torch.linspace(-3, 3, 601, dtype=torch.float64).requires_grad_()
    sg.spike(x, name, alpha).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    sg.primitive(x, name, alpha).sum().backward()
    torch.testing.assert_close(ours, x.grad, rtol=1e-12, atol=1e-12)
    # and the primitive's derivative is what finite differences of the primitive give
    eps = 1e-6
    with torch.no_grad():
        fd = (sg.primitive(x + eps, name, alpha) - sg.primitive(x - eps, name, alpha)) / (2 * eps)
    a = sg.DEFAULT_ALPHA[name] if alpha is None else alpha
    # central differences are exact up to O(eps²) where the primitive is smooth, O(alpha·eps) at a cusp of g
    torch.testing.assert_close(ours, fd, rtol=1e-5, atol=max(1e-6, 2 * a * eps))


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_heaviside_inclusive_and_primitive_spans_0_to_1(name):
    x = torch.tensor([-1e-7, 0.0, 1e-7, -10.0, 10.0])
    assert sg.spike(x, name).tolist() == [0.0, 1.0, 1.0, 0.0, 1.0]
    # the primitive rises from 0 to 1, except snnTorch's fast sigmoid (peak gradient 1, total 2/alpha)
    rise = 2 / sg.DEFAULT_ALPHA[name] if name == "fast_sigmoid" else 1.0
    low, high = (sg.primitive(torch.tensor(v), name).item() for v in (-1e4, 1e4))
    assert high - low == pytest.approx(rise, rel=1e-2)


def test_triangle_default_is_spikingssm_max_0_1_minus_abs():
    x = torch.tensor([-1.5, -0.5, 0.0, 0.25, 1.0], requires_grad=True)
    sg.spike(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.5, 1.0, 0.75, 0.0]


@pytest.mark.parametrize("name", NAMES)
def test_picklable_and_compiles_without_graph_breaks(name):
    fn = pickle.loads(pickle.dumps(sg.resolve(name, 2.0)))
    x = torch.randn(64, requires_grad=True)
    compiled = torch.compile(lambda t: fn(t * 2).sum(), fullgraph=True, backend="aot_eager")
    compiled(x).backward()
    g = x.grad.clone()
    x.grad = None
    fn(x * 2).sum().backward()
    torch.testing.assert_close(g, x.grad)


def test_bad_surrogate_arguments():
    with pytest.raises(ValueError, match="surrogate must be one of"):
        sg.resolve("relu")
    with pytest.raises(ValueError, match="alpha"):
        sg.resolve("atan", -1.0)
    with pytest.raises(ValueError, match="alpha applies"):
        sg.resolve(lambda x: x, 2.0)
    with pytest.raises(TypeError, match="surrogate must be"):
        sg.resolve(3)
