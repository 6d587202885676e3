"""The fused SSM-dendrite LIF (ops/ssm_lif): the numba kernel against the step-by-step recurrence (bit for bit:
it performs the recurrence's roundings in the recurrence's order) and against today's FFT path (equal spikes on
every neuron whose membrane never comes near its threshold), every gradient against autograd through the
recurrence, odd sizes, stateful continuation, NaN-poisoned outputs (tests/ops/conftest.py), the custom op's
registration, and the neuron and layer that use it."""
import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

import snn_ssm
import snn_ssm.metrics
from snn_ssm.ops.lif_scan import KernelOptions
from snn_ssm.ops.ssm_lif import fused_backend, ssm_lif, ssm_lif_recurrence, ssm_lif_ref

numba = pytest.importorskip("numba")

SOMA = [dict(), dict(reset="soft"), dict(reset="none"), dict(v_reset=0.3), dict(detach_reset=True),
        dict(grad_mode="local"), dict(surrogate="atan", alpha=3.0), dict(surrogate="sigmoid")]


def _params(C, N, dtype=torch.float64, trainable_B=True, seed=0):
    torch.manual_seed(seed)
    dend = snn_ssm.S4DDendrite(C, d_state=N, trainable_B=trainable_B, dtype=dtype)
    with torch.no_grad():
        dend.B.add_(torch.randn_like(dend.B) * 0.3)
    p = dend.discrete(C)
    beta = torch.rand(C, dtype=dtype) * 0.9
    v_th = torch.rand(C, dtype=dtype) * 0.5 + 0.3
    return [t.detach() for t in (p.dA, p.dB, p.C[0], p.D)] + [beta, v_th]


def _inputs(T, B, C, extra=(), dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, B, C, *extra, generator=g, dtype=dtype) * 1.5


def _loss(s, h, v):
    w = torch.linspace(-1, 1, s.numel(), dtype=s.dtype, device=s.device).reshape(s.shape)
    return (s * w).sum() + 0.3 * (h.abs() ** 2).sum() + (v * v).sum()


def _grads(fn, x, params, h0, v0, kw):
    leaves = [None if t is None else t.clone().requires_grad_() for t in (x, *params, h0, v0)]
    x_, *ps, h0_, v0_ = leaves
    out = fn(x_, *ps, h0=h0_, v0=v0_, **kw)
    _loss(*out).backward()
    return [t.detach() for t in out], [None if t is None else torch.zeros_like(t) if t.grad is None else t.grad
                                       for t in leaves]


def _near_threshold(x, params, delta):
    """Neurons ``[B, C]`` whose exact (float64) pre-reset membrane comes within ``delta`` of 1 at some step (hard
    reset to 0): only there may a spike of two correctly rounded computations differ."""
    dA, dB, Cc, D, beta, v_th = (t.to(torch.complex128 if t.is_complex() else torch.float64) for t in params)
    x4 = x.double().reshape(*x.shape[:3], -1)
    y, _ = snn_ssm.functional.s4d.scan(x4, None, dA, dB, Cc, D)
    shape = (-1,) + (1,) * (x4.ndim - 3)
    beta, v_th = beta.reshape(shape), v_th.reshape(shape)
    u, near = torch.zeros_like(y[0]), torch.zeros(y.shape[1:], dtype=torch.bool)
    for y_t in y:
        up = beta * u + y_t / v_th
        near |= (up - 1).abs() < delta
        u = torch.where(up >= 1, torch.zeros_like(up), up)
    return near.reshape(x.shape[1:])


def _agrees_with_float64_recurrence(x, params, s, h, v):
    """A float32 kernel's outputs vs the exact recurrence: spikes differ only on neurons within δ = 1e-4 of
    threshold; the dendrite state (no spike touches it) and the other neurons' membranes to float32 rounding."""
    wide = [t.to(torch.complex128 if t.is_complex() else torch.float64) for t in params]
    s64, h64, v64 = ssm_lif_recurrence(x.double(), *wide)
    differs = (s != s64).reshape(x.shape[0], -1).any(0).reshape(x.shape[1:])
    assert not bool((differs & ~_near_threshold(x, params, 1e-4)).any())
    torch.testing.assert_close(h.to(torch.complex128), h64, rtol=1e-4, atol=1e-5)
    same = ~differs
    torch.testing.assert_close(v.double()[same], v64[same], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kw", SOMA, ids=[str(k) or "default" for k in SOMA])
def test_kernel_is_the_recurrence_with_its_gradients(kw):
    """float64: the same spikes, final states and gradients to 1e-12 of autograd through the recurrence (the kernel
    does the recurrence's operations in its order; torch's vectorised complex products may round differently)."""
    T, B, C, N = 200, 3, 5, 8
    x, params = _inputs(T, B, C), _params(C, N)
    h0 = torch.randn(B, C, 1, N // 2, dtype=torch.complex128) * 0.2
    v0 = torch.rand(B, C, dtype=torch.float64) * 0.5
    out_k, g_k = _grads(lambda *a, **k: ssm_lif(*a, backend="numba", **k), x, params, h0, v0, kw)
    out_r, g_r = _grads(ssm_lif_recurrence, x, params, h0, v0, kw)
    assert 0.05 < float(out_k[0].mean()) < 0.95
    assert torch.equal(out_k[0], out_r[0])
    for a, b in zip(out_k[1:], out_r[1:]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    names = ["x", "dA", "dB", "C", "D", "beta", "v_th", "h0", "v0"]
    for name, a, b in zip(names, g_k, g_r):
        assert torch.isfinite(a).all(), name
        assert float((a - b).abs().max()) <= 1e-12 * max(1.0, float(b.abs().max())), name


def _extra_case(N, device="cpu"):
    """Inputs with an extra soma input (a bidirectional layer's anti-causal side), on ``device``, as leaves."""
    T, B, C = 200, 3, 5
    x, params = _inputs(T, B, C), _params(C, N)
    extra = _inputs(T, B, C, seed=2) * 0.5
    return [t.to(device).requires_grad_() for t in (x, extra, *params)]


def _extra_grads(fn, leaves, kw):
    x, extra, *params = leaves
    s, h, v = fn(x, *params, extra=extra, **kw)
    _loss(s, h, v).backward()
    out = [t.detach().cpu() for t in (s, h, v)]
    grads = [t.grad.cpu() for t in leaves]
    for t in leaves:
        t.grad = None
    return out, grads


def _assert_extra_agrees(out_k, g_k, out_r, g_r, tol):
    assert 0.05 < float(out_k[0].mean()) < 0.95
    assert torch.equal(out_k[0], out_r[0])
    for a, b in zip(out_k[1:], out_r[1:]):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    for name, a, b in zip(["x", "extra", "dA", "dB", "C", "D", "beta", "v_th"], g_k, g_r):
        assert torch.isfinite(a).all() and float(b.abs().max()) > 0, name
        assert float((a - b).abs().max()) <= tol * max(1.0, float(b.abs().max())), name


@pytest.mark.parametrize("kw", [dict(), dict(reset="soft", surrogate="atan", alpha=3.0)], ids=["default", "soft"])
def test_extra_soma_input_is_the_recurrence_with_its_gradients(kw):
    """float64: with an input added to the soma's, the numba kernel fires as the recurrence does and every
    gradient, the extra input's included, agrees to 1e-12; the FFT reference takes it too."""
    leaves = _extra_case(8)
    out_k, g_k = _extra_grads(lambda *a, **k: ssm_lif(*a, backend="numba", **k), leaves, kw)
    out_r, g_r = _extra_grads(ssm_lif_recurrence, leaves, kw)
    _assert_extra_agrees(out_k, g_k, out_r, g_r, 1e-12)
    out_f, g_f = _extra_grads(ssm_lif_ref, leaves, kw)
    assert float((out_f[0] != out_r[0]).float().mean()) < 1e-3
    torch.testing.assert_close(g_f[1], g_r[1], rtol=1e-6, atol=1e-6)
    x, extra = leaves[:2]
    with pytest.raises(ValueError, match="extra must be a floating-point tensor of x's shape"):
        ssm_lif(x, *leaves[2:], extra=extra[1:])


@pytest.mark.parametrize("T", [1, 7, 1000])
@pytest.mark.parametrize("shape", [(2, 5, ()), (1, 3, (4,))], ids=["odd-H", "positions"])
@pytest.mark.parametrize("N", [2, 4, 64])
def test_odd_sizes_float32_against_the_float64_recurrence(T, shape, N):
    """float32 kernel vs the exact recurrence: spikes differ only on neurons within δ = 1e-4 of threshold (the
    float32 recurrence's error over these lengths is below 1e-5 of the membrane); the dendrite state, which no
    spike touches, to float32 rounding."""
    B, C, extra = shape
    x, params = _inputs(T, B, C, extra, torch.float32), _params(C, N, torch.float32)
    _agrees_with_float64_recurrence(x, params, *ssm_lif(x, *params, backend="numba"))


def test_against_the_fft_path_every_neuron_away_from_threshold_agrees():
    """float32 kernel vs float32 FFT path: they round differently, so a spike may differ only on a neuron whose
    exact (float64) pre-reset membrane comes within δ = 1e-3 of 1 at some step (the FFT's float32 error at T = 1000
    is ~1e-5 of the input scale; a flip then changes that neuron's later steps, nobody else's)."""
    T, B, C, N = 1000, 4, 16, 16
    x, params = _inputs(T, B, C, dtype=torch.float32), _params(C, N, torch.float32)
    k, _, _ = ssm_lif(x, *params, backend="numba")
    f, _, _ = ssm_lif_ref(x, *params)
    near = _near_threshold(x, params, 1e-3)
    differs = (k != f).any(0)
    assert 0.05 < float(k.mean()) < 0.95
    assert not bool((differs & ~near).any())
    assert int(differs.sum()) <= int(near.sum())


def test_two_calls_continue_exactly_as_one():
    T, B, C, N = 400, 2, 6, 8
    x, params = _inputs(T, B, C, dtype=torch.float32), _params(C, N, torch.float32)
    s, h, v = ssm_lif(x, *params, backend="numba")
    s1, h1, v1 = ssm_lif(x[:150], *params, backend="numba")
    s2, h2, v2 = ssm_lif(x[150:], *params, h0=h1, v0=v1, backend="numba")
    assert torch.equal(torch.cat([s1, s2]), s) and torch.equal(h2, h) and torch.equal(v2, v)


@settings(max_examples=15, deadline=None)
@given(T=st.integers(1, 200), B=st.integers(1, 3), C=st.integers(1, 7), N=st.sampled_from([2, 4, 6, 16]),
       soma=st.sampled_from(SOMA), seed=st.integers(0, 10_000))
def test_fuzz_against_the_recurrence(T, B, C, N, soma, seed):
    x, params = _inputs(T, B, C, seed=seed), _params(C, N, seed=seed)
    out_k, g_k = _grads(lambda *a, **k: ssm_lif(*a, backend="numba", **k), x, params, None, None, soma)
    out_r, g_r = _grads(lambda *a, **k: ssm_lif_recurrence(*a, **k), x, params, None, None, soma)
    assert torch.equal(out_k[0], out_r[0])
    for a, b in zip(out_k[1:], out_r[1:]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_k[:-2], g_r[:-2]):
        assert float((a - b).abs().max()) <= 1e-11 * max(1.0, float(b.abs().max()))


def test_custom_op_passes_opcheck():
    from snn_ssm.ops.ssm_lif import _op
    T, N, C, M = 150, 6, 3, 2
    dA, dB, Cc, D, beta, v_th = _params(C, 8, torch.float64)
    x = torch.randn(N, T, dtype=torch.float64).t().requires_grad_()  # transposed: fake strides must be the kernel's
    ps = [t.clone().requires_grad_() for t in (dA, dB, Cc)]
    per = [torch.rand(N, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    h0 = torch.zeros(N, 4, dtype=torch.complex128, requires_grad=True)
    for extra in (None, torch.randn(T, N, dtype=torch.float64, requires_grad=True)):  # with a soma input, too
        torch.library.opcheck(_op, (x, *ps, *per, h0, extra, C, M, "numba", 0.0, 0, False, False, 0, 1.0))


def test_backward_stores_about_two_bytes_per_neuron_step_at_n64():
    """Saved for the backward beyond the input and the parameters: the membrane and the complex state every
    CHUNK = 128 steps, 8·32/128 + 4/128 ≈ 2.03 bytes per neuron-step in float32 at N = 64."""
    from snn_ssm.ops.ssm_lif import numba as impl
    T, N = 4096, 256
    dA = torch.full((1, 32), 0.9 + 0.1j, dtype=torch.complex64)
    _, ck_v, ck_h = impl.launch_forward(torch.rand(T, N), dA, dA, dA, torch.zeros(N), torch.rand(N), torch.ones(N),
                                        torch.zeros(N), torch.zeros(N, 32, dtype=torch.complex64), None,
                                        KernelOptions(0.0, 0, False, False, 0, 1.0), 1, N)
    per_step = (ck_v.numel() * 4 + ck_h.numel() * 8) / (T * N)
    assert per_step < 2.1


def test_neuron_and_layer_use_it_and_agree_with_the_fft_path():
    torch.manual_seed(0)
    x = torch.randn(500, 3, 6) * 1.5
    fused = snn_ssm.SSMDendriteLIF(6, d_state=4, backend="numba")
    fft = snn_ssm.SSMDendriteLIF(6, d_state=4, backend="torch")
    fft.load_state_dict(fused.state_dict())
    with torch.no_grad():
        a, b = fused(x), fft(x)
    assert float(a.mean()) > 0.02 and float((a != b).float().mean()) < 0.01
    torch.testing.assert_close(fused.state.h, fft.state.h, rtol=1e-4, atol=1e-4)
    layer = snn_ssm.SpikingS4D(8, d_state=4, backend="numba")
    twin = snn_ssm.SpikingS4D(8, d_state=4, backend="torch")
    twin.load_state_dict(layer.state_dict())
    z = torch.randn(300, 2, 8)
    with torch.no_grad():
        torch.testing.assert_close(layer(z), twin(z), rtol=0.05, atol=0.05)
        with snn_ssm.metrics.SpikeRateMonitor(layer) as mon, snn_ssm.metrics.EnergyMeter(layer) as meter:
            layer(z)
    assert list(mon.rates()) == ["soma"] and meter.report()["layers"]["dendrite"]["MACs"] > 0


@pytest.mark.parametrize("backend", ["numba", "auto"])
def test_a_bidirectional_layer_runs_both_sides_through_the_kernels(backend, monkeypatch):
    """A bidirectional layer under a fused backend: the anti-causal side by the kernel without its soma over the
    reversed sequence, handed to the fused kernel as its extra input; no FFT runs, and in float64 the spikes equal
    the FFT path's and every gradient agrees with it (the two differ by float64 rounding only)."""
    assert fused_backend("cpu", torch.float64, snn_ssm.SomaOptions(), backend, 3, 4, 60) == "numba"
    _bidirectional_layer_agrees(backend, "cpu", monkeypatch)


def _bidirectional_layer_agrees(backend, device, monkeypatch):
    torch.manual_seed(0)
    kw = dict(d_state=4, bidirectional=True, dtype=torch.float64, device=device)
    layer = snn_ssm.SpikingS4D(8, backend=backend, **kw)
    twin = snn_ssm.SpikingS4D(8, backend="torch", **kw)
    with torch.no_grad():
        layer.dendrite.C.mul_(3.0)  # a strong anti-causal side, so that dropping it would change many spikes
    twin.load_state_dict(layer.state_dict())
    x = torch.randn(60, 3, 8, dtype=torch.float64, device=device) * 3  # few neurons: auto takes the kernel on CPU
    ref = twin.activation(x)
    causal_only = snn_ssm.SpikingS4D(8, backend="torch", d_state=4, dtype=torch.float64, device=device)
    causal_only.load_state_dict({k: v[:1] if k == "dendrite.C" else v for k, v in layer.state_dict().items()})
    assert float((causal_only.activation(x) != ref).float().mean()) > 0.05
    import snn_ssm.functional.s4d as s4d_module
    with monkeypatch.context() as m:
        m.setattr(s4d_module, "fft_conv", lambda *a: pytest.fail("the fused path ran an FFT"))
        s = layer.activation(x)
    assert float(ref.detach().mean()) > 0.02 and torch.equal(s, ref)
    w = torch.randn_like(ref)
    (s * w).sum().backward()
    (ref * w).sum().backward()
    for (name, a), b in zip(layer.named_parameters(), twin.parameters()):
        if b.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-7, atol=1e-9, msg=name)


def test_s4d_scan_is_the_recurrence_with_its_gradients():
    """The kernel without its soma (float64, numba): the recurrence's outputs and final state, and every gradient
    to 1e-12 of autograd through the recurrence; odd sizes in float32 against it to float32 rounding."""
    _s4d_scan_agrees("numba", "cpu", 8, 1e-12)


def _s4d_scan_agrees(backend, device, N, tol):
    from snn_ssm.ops.ssm_lif import s4d_scan, s4d_scan_ref
    T, B, C = 300, 3, 5
    x, params = _inputs(T, B, C), _params(C, N)[:4]
    h0 = torch.randn(B, C, 1, N // 2, dtype=torch.complex128) * 0.2

    def run(fn, on="cpu", **kw):  # fresh leaves per run: gradients must not accumulate across the runs compared
        leaves = [t.detach().clone().to(on).requires_grad_() for t in (x, h0, *params)]
        y, h = fn(leaves[0], *leaves[2:], h0=leaves[1], **kw)
        w = torch.linspace(-1, 1, y.numel(), dtype=y.dtype, device=on).reshape(y.shape)
        ((y * w).sum() + (h.abs() ** 2).sum()).backward()
        return [y.detach().cpu(), h.detach().cpu()], [t.grad.cpu() for t in leaves]

    def recurrence(x, dA, dB, Cc, D, h0):
        y, h = snn_ssm.functional.s4d.scan(x.unsqueeze(-1), h0, dA, dB, Cc, D)
        return y.squeeze(-1), h

    out_k, g_k = run(s4d_scan, device, backend=backend)
    out_r, g_r = run(recurrence)
    out_f, g_f = run(s4d_scan_ref)
    for a, b, f in zip(out_k, out_r, out_f):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
        torch.testing.assert_close(f, b, rtol=1e-9, atol=1e-9)
    for name, a, b in zip(["x", "h0", "dA", "dB", "C", "D"], g_k, g_r):
        assert float((a - b).abs().max()) <= tol * max(1.0, float(b.abs().max())), name
    for T, (B, C, extra) in ((1, (2, 5, ())), (7, (1, 3, (4,))), (1000, (2, 3, ()))):
        x32 = _inputs(T, B, C, extra, torch.float32)
        p32 = _params(C, 64, torch.float32)[:4]
        y, h = (t.cpu() for t in s4d_scan(x32.to(device), *(t.to(device) for t in p32), backend=backend))
        wide = [t.to(torch.complex128 if t.is_complex() else torch.float64) for t in p32]
        y64, h64 = snn_ssm.functional.s4d.scan(x32.double().reshape(T, B, C, -1), None, *wide)
        torch.testing.assert_close(y.double(), y64.reshape(y.shape), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(h.to(torch.complex128), h64.reshape(h.shape), rtol=1e-4, atol=1e-5)


def test_s4d_scan_custom_op_passes_opcheck():
    from snn_ssm.ops.ssm_lif import _dendrite
    T, N, C, M = 150, 6, 3, 2
    dA, dB, Cc, D = _params(C, 8, torch.float64)[:4]
    x = torch.randn(N, T, dtype=torch.float64).t().requires_grad_()
    ps = [t.clone().requires_grad_() for t in (dA, dB, Cc)]
    Dn = torch.rand(N, dtype=torch.float64, requires_grad=True)
    h0 = torch.zeros(N, 4, dtype=torch.complex128, requires_grad=True)
    torch.library.opcheck(_dendrite.op, (x, *ps, Dn, h0, C, M, "numba"))


def test_auto_chooses_by_the_cost_model_and_never_raises():
    opts = snn_ssm.SomaOptions()
    assert fused_backend("cpu", torch.float32, opts, "auto", 16, 2, 1024) == "numba"  # few modes: fused
    assert fused_backend("cpu", torch.float32, opts, "auto", 4096, 32, 1024) == "numba"  # N = 64: fused
    assert fused_backend("cpu", torch.float32, opts, "auto", 4096, 64, 1024) is None  # big batch, N = 128: FFT
    assert fused_backend("cpu", torch.float32, opts, "torch", 16, 2, 1024) is None
    assert fused_backend("cpu", torch.float16, opts, "numba", 16, 2, 1024) is None
    assert fused_backend("cuda", torch.float32, opts, "triton", 16, 2, 1024) is None  # no fused Triton kernel
    cupy = snn_ssm.ops.dispatch.available("cupy")
    assert fused_backend("cuda", torch.float32, opts, "cupy", 4096, 32, 1024) == ("cupy" if cupy else None)
    from snn_ssm.ops import ssm_lif as op  # auto takes the CUDA kernel only where CUDA_AUTO says so
    assert fused_backend("cuda", torch.float32, opts, "auto", 4096, 32, 1024) == (
        "cupy" if cupy and op.CUDA_AUTO else None)
    assert fused_backend("cpu", torch.float32, snn_ssm.SomaOptions(surrogate="fast_sigmoid"), "numba", 16, 2,
                         1024) is None


def test_bad_arguments_are_named():
    dA, dB, Cc, D, beta, v_th = _params(3, 4, torch.float32)
    x = torch.randn(10, 2, 3)
    with pytest.raises(ValueError, match="dA must be a complex"):
        ssm_lif(x, dA.real, dB, Cc, D, beta)
    with pytest.raises(ValueError, match="D must be"):
        ssm_lif(x, dA, dB, Cc, D[:2], beta)
    with pytest.raises(ValueError, match="h0 must be"):
        ssm_lif(x, dA, dB, Cc, D, beta, h0=torch.zeros(2, 3, 1, 5, dtype=torch.complex64))
    with pytest.raises(ValueError, match="NaN"):
        ssm_lif(torch.full((10, 2, 3), math.nan), dA, dB, Cc, D, beta)
    with pytest.raises(ValueError, match="beta must be in"):
        ssm_lif(x, dA, dB, Cc, D, 1.5)
    with pytest.raises(ValueError, match="v_th must be finite and > 0"):
        ssm_lif(x, dA, dB, Cc, D, beta, torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="tensor \\[C=3\\]"):
        ssm_lif(x, dA, dB, Cc, D, torch.rand(4))
    with pytest.raises(TypeError, match="beta"):
        ssm_lif(x, dA, dB, Cc, D, "0.5")


# -- the CUDA kernel (CuPy): run on the device machine -------------------------------------------------------------

def _cuda(ts):
    return [None if t is None else t.cuda() for t in ts]


def _cupy():
    pytest.importorskip("cupy")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")


@pytest.fixture(params=[0, 16], ids=["bwd", "bwd-split"])
def split(request, monkeypatch):
    """Both CUDA backwards: every lane repeating its neuron's soma (0), and the somas split off (16 per block)."""
    from snn_ssm.ops.ssm_lif import cupy as impl
    monkeypatch.setattr(impl, "SPLIT_NEURONS", request.param)
    return request.param


@pytest.mark.gpu
@pytest.mark.parametrize("kw", SOMA, ids=[str(k) or "default" for k in SOMA])
@pytest.mark.parametrize("N", [8, 64])
def test_cuda_kernel_float64_is_the_recurrence_with_its_gradients(kw, N, split):
    """float64 on the GPU: the kernel's fused multiply-adds round below 1e-16, so spikes equal the recurrence's and
    states and gradients agree to 1e-10 relative (T = 200 crosses six checkpoint chunks and a partial one; 15
    neurons leave the split backward's block partly empty)."""
    _cupy()
    T, B, C = 200, 3, 5
    x, params = _inputs(T, B, C), _params(C, N)
    h0 = torch.randn(B, C, 1, N // 2, dtype=torch.complex128) * 0.2
    v0 = torch.rand(B, C, dtype=torch.float64) * 0.5
    xc, h0c, v0c, *pc = _cuda([x, h0, v0, *params])
    out_k, g_k = _grads(lambda *a, **k: ssm_lif(*a, backend="cupy", **k), xc, pc, h0c, v0c, kw)
    out_r, g_r = _grads(ssm_lif_recurrence, x, params, h0, v0, kw)
    assert 0.05 < float(out_k[0].mean()) < 0.95
    assert torch.equal(out_k[0].cpu(), out_r[0])
    for a, b in zip(out_k[1:], out_r[1:]):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-10, atol=1e-10)
    names = ["x", "dA", "dB", "C", "D", "beta", "v_th", "h0", "v0"]
    for name, a, b in zip(names, g_k, g_r):
        a = a.cpu()
        assert torch.isfinite(a).all(), name
        assert float((a - b).abs().max()) <= 1e-10 * max(1.0, float(b.abs().max())), name


@pytest.mark.gpu
@pytest.mark.parametrize("N", [2, 8, 64])
def test_cuda_s4d_scan_is_the_recurrence_with_its_gradients(N):
    """The CUDA kernel without its soma, float64: the recurrence's outputs, state and gradients to 1e-10; float32 odd
    sizes to float32 rounding."""
    _cupy()
    _s4d_scan_agrees("cupy", "cuda", N, 1e-10)


@pytest.mark.gpu
def test_cuda_bidirectional_layer_runs_both_sides_through_the_kernels(monkeypatch):
    _cupy()
    _bidirectional_layer_agrees("cupy", "cuda", monkeypatch)


@pytest.mark.gpu
def test_cuda_s4d_scan_custom_op_passes_opcheck():
    _cupy()
    from snn_ssm.ops.ssm_lif import _dendrite
    T, N, C, M = 150, 6, 3, 2
    dA, dB, Cc, D = _cuda(_params(C, 8, torch.float64)[:4])
    x = torch.randn(N, T, dtype=torch.float64, device="cuda").t().requires_grad_()
    ps = [t.clone().requires_grad_() for t in (dA, dB, Cc)]
    Dn = torch.rand(N, dtype=torch.float64, device="cuda", requires_grad=True)
    h0 = torch.zeros(N, 4, dtype=torch.complex128, device="cuda", requires_grad=True)
    torch.library.opcheck(_dendrite.op, (x, *ps, Dn, h0, C, M, "cupy"))


@pytest.mark.gpu
@pytest.mark.parametrize("N", [8, 64])
def test_cuda_kernel_extra_soma_input_is_the_recurrence_with_its_gradients(N, split):
    """float64 on the GPU with an input added to the soma's: spikes equal the recurrence's, states and every
    gradient (the extra input's included) to 1e-10, in both backwards."""
    _cupy()
    leaves = _extra_case(N, "cuda")
    out_k, g_k = _extra_grads(lambda *a, **k: ssm_lif(*a, backend="cupy", **k), leaves, {})
    out_r, g_r = _extra_grads(ssm_lif_recurrence, [t.detach().cpu().requires_grad_() for t in leaves], {})
    _assert_extra_agrees(out_k, g_k, out_r, g_r, 1e-10)


@pytest.mark.gpu
@pytest.mark.parametrize("T", [1, 7, 1000])
@pytest.mark.parametrize("shape", [(2, 5, ()), (1, 3, (4,)), (64, 7, ())], ids=["odd-H", "positions", "batch"])
@pytest.mark.parametrize("N", [2, 4, 6, 16, 64])
def test_cuda_kernel_float32_odd_sizes_against_the_float64_recurrence(T, shape, N):
    """float32 on the GPU vs the exact recurrence: spikes differ only on neurons within δ = 1e-4 of threshold (as
    for numba: the float32 recurrence's error is below 1e-5 of the membrane over T = 1000); states to float32
    rounding. N = 2 and 6 give one lane per neuron (1 and 3 modes), 16 and 64 split their modes over several lanes."""
    _cupy()
    B, C, extra = shape
    x, params = _inputs(T, B, C, extra, torch.float32), _params(C, N, torch.float32)
    _agrees_with_float64_recurrence(x, params, *(t.cpu() for t in ssm_lif(*_cuda([x, *params]), backend="cupy")))


@pytest.mark.gpu
@pytest.mark.parametrize("kw", [dict(), dict(reset="soft"), dict(grad_mode="local")], ids=["hard", "soft", "local"])
def test_cuda_kernel_float32_gradients_against_float64(kw, split):
    """float32 gradients vs float64 autograd through the recurrence, where both fire the same spikes (checked):
    every gradient within 1e-3 of its largest element (float32 sums over 300 steps and the batch)."""
    _cupy()
    T, B, C, N = 300, 4, 6, 16
    x, params = _inputs(T, B, C, dtype=torch.float32, seed=3), _params(C, N, torch.float32, seed=2)
    h0 = (torch.randn(B, C, 1, N // 2, dtype=torch.complex64) * 0.2)
    v0 = torch.rand(B, C) * 0.5
    out_k, g_k = _grads(lambda *a, **k: ssm_lif(*a, backend="cupy", **k), *_cuda([x]), _cuda(params),
                        *_cuda([h0, v0]), kw)
    wide = [t.to(torch.complex128 if t.is_complex() else torch.float64) for t in (x, *params, h0, v0)]
    out_r, g_r = _grads(ssm_lif_recurrence, wide[0], wide[1:7], wide[7], wide[8], kw)
    assert torch.equal(out_k[0].cpu().double(), out_r[0])
    for name, a, b in zip(["x", "dA", "dB", "C", "D", "beta", "v_th", "h0", "v0"], g_k, g_r):
        a = a.cpu().to(b.dtype)
        assert float((a - b).abs().max()) <= 1e-3 * max(1e-6, float(b.abs().max())), name


@pytest.mark.gpu
def test_cuda_kernel_agrees_with_numba_and_continues_exactly():
    """GPU vs CPU kernel (float32; fused multiply-adds on one, none on the other): spikes differ only near
    threshold; and two GPU calls continue exactly as one."""
    _cupy()
    T, B, C, N = 700, 8, 12, 64
    x, params = _inputs(T, B, C, dtype=torch.float32), _params(C, N, torch.float32)
    g, hg, vg = (t.cpu() for t in ssm_lif(*_cuda([x, *params]), backend="cupy"))
    c, hc, vc = ssm_lif(x, *params, backend="numba")
    differs = (g != c).any(0)
    assert not bool((differs & ~_near_threshold(x, params, 1e-4)).any())
    torch.testing.assert_close(hg, hc, rtol=1e-4, atol=1e-5)
    xc, pc = _cuda([x])[0], _cuda(params)
    s, h, v = ssm_lif(xc, *pc, backend="cupy")
    s1, h1, v1 = ssm_lif(xc[:333], *pc, backend="cupy")
    s2, h2, v2 = ssm_lif(xc[333:], *pc, h0=h1, v0=v1, backend="cupy")
    assert torch.equal(torch.cat([s1, s2]), s) and torch.equal(h2, h) and torch.equal(v2, v)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_kernel_half_input_is_the_float32_kernel_on_the_rounded_input(dtype):
    """Half-precision input, float32 state: exactly the float32 kernel run on the input rounded to that dtype
    (spikes, states); gradients are the float32 kernel's rounded to the input's dtype."""
    _cupy()
    T, B, C, N = 500, 4, 8, 32
    x, params = _inputs(T, B, C, dtype=torch.float32), _cuda(_params(C, N, torch.float32))
    xh = x.cuda().to(dtype).requires_grad_()
    xf = xh.detach().float().requires_grad_()
    sh, hh, vh = ssm_lif(xh, *params, backend="cupy")
    sf, hf, vf = ssm_lif(xf, *params, backend="cupy")
    assert sh.dtype == dtype and vh.dtype == torch.float32
    assert torch.equal(sh.float(), sf) and torch.equal(hh, hf) and torch.equal(vh, vf)
    w = torch.randn(sf.shape, device="cuda").to(dtype).float()  # representable in the input's dtype
    (sh.float() * w).sum().backward()
    (sf * w).sum().backward()
    assert xh.grad.dtype == dtype
    torch.testing.assert_close(xh.grad.float(), xf.grad.to(dtype).float(), rtol=0, atol=0)


@pytest.mark.gpu
def test_cuda_custom_op_passes_opcheck():
    _cupy()
    from snn_ssm.ops.ssm_lif import _op
    T, N, C, M = 150, 6, 3, 2
    dA, dB, Cc, D, beta, v_th = _cuda(_params(C, 8, torch.float64))
    x = torch.randn(T, N, dtype=torch.float64, device="cuda", requires_grad=True)
    ps = [t.clone().requires_grad_() for t in (dA, dB, Cc)]
    per = [torch.rand(N, dtype=torch.float64, device="cuda", requires_grad=True) for _ in range(4)]
    h0 = torch.zeros(N, 4, dtype=torch.complex128, device="cuda", requires_grad=True)
    for extra in (None, torch.randn(T, N, dtype=torch.float64, device="cuda", requires_grad=True)):
        torch.library.opcheck(_op, (x, *ps, *per, h0, extra, C, M, "cupy", 0.0, 0, False, False, 0, 1.0))


@pytest.mark.gpu
def test_cuda_neuron_and_layer_use_it_and_agree_with_the_fft_path():
    _cupy()
    torch.manual_seed(0)
    x = torch.randn(500, 3, 6, device="cuda") * 1.5
    fused = snn_ssm.SSMDendriteLIF(6, d_state=4, backend="cupy").cuda()
    fft = snn_ssm.SSMDendriteLIF(6, d_state=4, backend="torch").cuda()
    fft.load_state_dict(fused.state_dict())
    assert fused_backend("cuda", torch.float32, fused.options, "cupy", 3, 2, 500) == "cupy"
    with torch.no_grad():
        a, b = fused(x), fft(x)
    assert float(a.mean()) > 0.02 and float((a != b).float().mean()) < 0.01
    layer = snn_ssm.SpikingS4D(8, d_state=4, backend="cupy").cuda()
    twin = snn_ssm.SpikingS4D(8, d_state=4, backend="torch").cuda()
    twin.load_state_dict(layer.state_dict())
    z = torch.randn(300, 2, 8, device="cuda")
    out, ref = layer(z), twin(z)
    torch.testing.assert_close(out, ref, rtol=0.05, atol=0.05)
    out.square().sum().backward()
    ref.square().sum().backward()
    for name, p in layer.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), name


@pytest.mark.gpu
@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 300), B=st.integers(1, 5), C=st.integers(1, 9), N=st.sampled_from([2, 4, 6, 16, 24, 64]),
       soma=st.sampled_from(SOMA), seed=st.integers(0, 10_000))
def test_cuda_fuzz_against_the_recurrence(T, B, C, N, soma, seed):
    """float64, random shapes and soma options: spikes equal, states and gradients to 1e-9 relative."""
    _cupy()
    x, params = _inputs(T, B, C, seed=seed), _params(C, N, seed=seed)
    out_k, g_k = _grads(lambda *a, **k: ssm_lif(*a, backend="cupy", **k), *_cuda([x]), _cuda(params), None, None,
                        soma)
    out_r, g_r = _grads(ssm_lif_recurrence, x, params, None, None, soma)
    assert torch.equal(out_k[0].cpu(), out_r[0])
    for a, b in zip(out_k[1:], out_r[1:]):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-9, atol=1e-9)
    for a, b in zip(g_k[:-2], g_r[:-2]):
        assert float((a.cpu() - b).abs().max()) <= 1e-9 * max(1.0, float(b.abs().max()))
