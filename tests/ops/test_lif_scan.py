"""Every lif_scan backend against the reference: spikes and final state exactly, all gradients closely."""
import logging

import pytest
import torch
from hypothesis import example, given, settings, strategies as st

from snn_ssm.ops import available, lif_scan, lif_scan_ref, use_backend
from snn_ssm.functional.lif import SomaOptions
from snn_ssm.ops import dispatch
from snn_ssm.ops.lif_scan import KernelOptions, _kernel_support

CPU_BACKENDS = [b for b in ("numba",) if available(b)]
GPU_BACKENDS = [pytest.param(b, marks=pytest.mark.gpu) for b in ("cupy", "triton")]


def compare(backend, T, B, C, dtype=torch.float32, device="cpu", noncontiguous=False, skip=False, **kw):
    g = torch.Generator().manual_seed(T * 1000 + B * 10 + C)
    y = (torch.randn(T, B, C, generator=g, dtype=dtype) * 1.5).to(device).requires_grad_()
    v0 = torch.randn(B, C, generator=g, dtype=dtype).to(device).requires_grad_()
    beta = torch.rand(C, generator=g, dtype=dtype).to(device).requires_grad_()
    v_th = (torch.rand(C, generator=g, dtype=dtype) + 0.5).to(device).requires_grad_()
    gs = torch.randn(T, B, C, generator=g, dtype=dtype).to(device)
    if noncontiguous:
        gs = torch.randn(C, B, T, generator=g, dtype=dtype).to(device).permute(2, 1, 0)
    gv = torch.randn(B, C, generator=g, dtype=dtype).to(device)
    inputs = (y, v0, beta, v_th)
    if skip:  # the fused D-skip: the soma runs on y + D * x
        x = torch.randn(T, B, C, generator=g, dtype=dtype).to(device).requires_grad_()
        D = torch.randn(C, generator=g, dtype=dtype).to(device).requires_grad_()
        inputs += (x, D)
        kw.update(skip_input=x, skip_weight=D)
    out = []
    for b in (backend, "torch"):
        s, v = lif_scan(y, v0, beta, v_th, backend=b, **kw)
        grads = torch.autograd.grad((s * gs).sum() + (v * gv).sum(), inputs, allow_unused=True)
        out.append((s, v, [torch.zeros_like(x) if gr is None else gr for x, gr in zip(inputs, grads)]))
    (s, v, gk), (s_ref, v_ref, g_ref) = out
    assert torch.equal(s, s_ref), f"{int((s != s_ref).sum())} spikes differ"
    assert torch.equal(v, v_ref)
    tol = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-12)}.get(
        dtype, dict(rtol=2e-2, atol=2e-3))  # half precision: gradients are rounded to the input's dtype
    for name, a, b in zip(("y", "v0", "beta", "v_th", "skip_input", "skip_weight"), gk, g_ref):
        # float32: the sigmoid surrogate's α·σ·(1 − σ) deep in its tail computes 1 − σ with an absolute error of up to
        # 2^-24, which the chain rule multiplies by the same factors (α, k, y, upstream gradients) that set the
        # gradient's size: so the error of an entry is bounded relative to the largest entry, not to itself (found
        # by the fuzz test: v_th's gradient 2.2e-5 in the reference, 1.2e-5 in float64 and numba, largest 6.5)
        scale = max(1.0, float(b.abs().max())) if dtype == torch.float32 and b.numel() else 1.0
        torch.testing.assert_close(a, b, msg=name, rtol=tol["rtol"], atol=tol["atol"] * scale)


OPTIONS = [dict(reset=r, grad_mode=m, detach_reset=d, surrogate=sg)
           for r, m, d, sg in [("hard", "bptt", False, "triangle"), ("hard", "bptt", True, "atan"),
                               ("soft", "bptt", False, "sigmoid"), ("soft", "local", True, "triangle"),
                               ("none", "bptt", False, "atan"), ("hard", "local", False, "sigmoid")]]
SIZES = [(1, 3, 5), (7, 2, 67), (1000, 3, 5), (33, 5, 64)]


@pytest.mark.parametrize("backend", CPU_BACKENDS + GPU_BACKENDS)
@pytest.mark.parametrize("T, B, C", SIZES, ids=[f"T{t}-B{b}-C{c}" for t, b, c in SIZES])
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_backend_matches_reference(backend, T, B, C, opts):
    compare(backend, T, B, C, device="cpu" if backend == "numba" else "cuda", **opts)


@pytest.mark.parametrize("backend", CPU_BACKENDS + GPU_BACKENDS)
@pytest.mark.parametrize("T, B, C", SIZES, ids=[f"T{t}-B{b}-C{c}" for t, b, c in SIZES])
@pytest.mark.parametrize("opts", OPTIONS[:4], ids=lambda o: "-".join(str(v) for v in o.values()))
def test_fused_skip_matches_reference(backend, T, B, C, opts):
    compare(backend, T, B, C, device="cpu" if backend == "numba" else "cuda", skip=True, **opts)


@pytest.mark.parametrize("backend", ["torch"] + CPU_BACKENDS)
def test_fused_skip_is_the_soma_on_the_sum(backend):
    g = torch.Generator().manual_seed(3)
    y, x, D = torch.randn(40, 2, 5, generator=g), torch.randn(40, 2, 5, generator=g), torch.randn(5, generator=g)
    s, v = lif_scan(y, None, 0.25, skip_input=x, skip_weight=D, backend=backend)
    s_sum, v_sum = lif_scan(y + D * x, None, 0.25, backend="torch")
    assert torch.equal(s, s_sum) and torch.equal(v, v_sum)
    s, _ = lif_scan(y, None, 0.25, skip_input=x, skip_weight=0.5, backend=backend)  # a shared number
    assert torch.equal(s, lif_scan(y + 0.5 * x, None, 0.25, backend="torch")[0])


def test_fused_skip_bad_input():
    y = torch.randn(5, 2, 3)
    with pytest.raises(ValueError, match="skip_input and skip_weight go together"):
        lif_scan(y, None, 0.5, skip_input=y)
    with pytest.raises(ValueError, match="skip_input must be a tensor like y"):
        lif_scan(y, None, 0.5, skip_input=y[:, :1], skip_weight=torch.ones(3))
    with pytest.raises(ValueError, match="skip_input must be a tensor like y"):
        lif_scan(y, None, 0.5, skip_input=y.double(), skip_weight=torch.ones(3))
    with pytest.raises(ValueError, match="skip_weight of shape"):
        lif_scan(y, None, 0.5, skip_input=y, skip_weight=torch.ones(4))
    with pytest.raises(TypeError, match="skip_weight must be a number or a tensor"):
        lif_scan(y, None, 0.5, skip_input=y, skip_weight="D")


@pytest.mark.parametrize("backend", CPU_BACKENDS + GPU_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes_and_noncontiguous_upstream_gradient(backend, dtype):
    compare(backend, 100, 4, 9, dtype=dtype, device="cpu" if backend == "numba" else "cuda",
            noncontiguous=True, reset="soft", v_reset=0.0)
    compare(backend, 50, 2, 3, dtype=dtype, device="cpu" if backend == "numba" else "cuda",
            reset="hard", v_reset=0.3, alpha=2.5)


@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_keep_a_float32_state(backend, dtype):
    compare(backend, 300, 4, 9, dtype=dtype, device="cuda", reset="hard")
    compare(backend, 40, 3, 130, dtype=dtype, device="cuda", reset="soft", grad_mode="local", surrogate="atan")
    compare(backend, 70, 3, 33, dtype=dtype, device="cuda", reset="hard", skip=True)


def test_half_precision_reference_keeps_a_float32_state():
    y = torch.randn(50, 2, 3)
    s16, v16 = lif_scan(y.bfloat16(), None, 0.5, backend="torch")
    s32, v32 = lif_scan(y.bfloat16().float(), None, 0.5, backend="torch")
    assert s16.dtype == torch.bfloat16 and v16.dtype == torch.float32
    assert torch.equal(s16.float(), s32) and torch.equal(v16, v32)


FUZZ = dict(T=st.integers(1, 70), B=st.integers(1, 4), C=st.integers(1, 80),
            reset=st.sampled_from(["hard", "soft", "none"]), grad_mode=st.sampled_from(["bptt", "local"]),
            detach=st.booleans(), surrogate=st.sampled_from(["triangle", "atan", "sigmoid"]),
            v_reset=st.floats(-0.5, 0.5), skip=st.booleans())


@pytest.mark.parametrize("backend", CPU_BACKENDS + GPU_BACKENDS)
def test_fuzz_against_reference(backend):
    @settings(max_examples=40, deadline=None)
    @given(**FUZZ)
    @example(T=1, B=1, C=45, reset="hard", grad_mode="bptt", detach=False, surrogate="sigmoid", v_reset=0.0,
             skip=False)  # a sigmoid-tail gradient (see compare's tolerance)
    def check(T, B, C, reset, grad_mode, detach, surrogate, v_reset, skip):
        compare(backend, T, B, C, device="cpu" if backend == "numba" else "cuda", reset=reset,
                grad_mode=grad_mode, detach_reset=detach, surrogate=surrogate, v_reset=v_reset, skip=skip)

    check()


@pytest.mark.skipif(not CPU_BACKENDS, reason="numba is not installed")
def test_backward_stores_at_most_two_bytes_per_neuron_step():
    T, B, C = 1000, 4, 64
    y = torch.randn(T, B, C, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        lif_scan(y, None, 0.5, backend="numba")
    extra = sum(t.numel() * t.element_size() for t in saved if t.data_ptr() != y.data_ptr())
    assert extra <= 2 * T * B * C, f"{extra / (T * B * C):.2f} bytes per neuron-step"


def test_dispatch_precedence_and_errors(monkeypatch, caplog):
    y = torch.randn(5, 2, 3)
    monkeypatch.setenv(dispatch.ENV_VAR, "torch")
    assert dispatch.requested_backend() == "torch"
    with use_backend("numba"):
        assert dispatch.requested_backend() == "numba"
        assert dispatch.requested_backend("torch") == "torch"
    monkeypatch.setenv(dispatch.ENV_VAR, "cuda-magic")
    with pytest.raises(ValueError, match="SNN_SSM_BACKEND"):
        lif_scan(y, None, 0.5)
    monkeypatch.delenv(dispatch.ENV_VAR)
    with pytest.raises(ValueError, match="backend must be one of"):
        lif_scan(y, None, 0.5, backend="cupy2")
    monkeypatch.setattr(dispatch, "available", lambda name: name == "torch")
    with pytest.raises(ImportError, match=r"pip install 'snn_ssm\[numba\]'"):
        lif_scan(y, None, 0.5, backend="numba")


@pytest.mark.skipif(not available("triton"), reason="triton is not installed")
def test_explicit_gpu_backend_on_a_cpu_tensor_is_an_error():
    with pytest.raises(ValueError, match="cannot run.*device cpu"):
        lif_scan(torch.randn(5, 2, 3), None, 0.5, backend="triton")


@pytest.mark.skipif(not CPU_BACKENDS, reason="numba is not installed")
def test_auto_falls_back_for_custom_surrogates_and_logs_its_choice_once(caplog, monkeypatch):
    monkeypatch.setattr(dispatch, "_logged", set())
    y = torch.randn(5, 2, 3)
    with caplog.at_level(logging.INFO, logger="snn_ssm.ops.dispatch"):
        lif_scan(y, None, 0.5)
        lif_scan(y, None, 0.5)
    assert sum("uses the numba backend" in r.message for r in caplog.records) == 1
    custom = lambda x: (x >= 0).float()  # noqa: E731
    support = _kernel_support(y, KernelOptions.of(SomaOptions(surrogate=custom)))
    assert dispatch.choose("lif_scan", "cpu", support) == "torch"  # auto falls back to the reference
    s, _ = lif_scan(y, None, 0.5, surrogate=custom)
    torch.testing.assert_close(s, lif_scan_ref(y, None, 0.5, surrogate=custom)[0])
    with pytest.raises(ValueError, match="custom surrogate"):
        lif_scan(y, None, 0.5, surrogate=custom, backend="numba")
    with pytest.raises(ValueError, match="dtype"):
        lif_scan(y.half(), None, 0.5, backend="numba")


@pytest.mark.parametrize("backend", ["torch"] + CPU_BACKENDS)
def test_broadcast_initial_membrane_and_bad_input(backend):
    y = torch.randn(20, 3, 4)
    v0 = torch.tensor([0.1, 0.5, 0.9, 0.0])  # one value per channel, broadcast over the batch
    s, v = lif_scan(y, v0, 0.5, backend=backend)
    s_ref, v_ref = lif_scan_ref(y, v0.expand(3, 4), 0.5)
    assert torch.equal(s, s_ref) and torch.equal(v, v_ref)
    with pytest.raises(TypeError, match="floating-point"):
        lif_scan(torch.ones(5, 2, dtype=torch.int64), None, 0.5, backend=backend)


@pytest.mark.parametrize("backend", CPU_BACKENDS + GPU_BACKENDS)
def test_parameter_shapes_noncontiguous_and_5d_inputs(backend):
    """What the neurons never pass but a user of the op may: scalar, 0-d, per-channel and per-neuron β and v_th, a
    non-contiguous y, a [T, B, C, H, W] input; spikes and membrane equal the reference, gradients reach every shape."""
    device = "cuda" if backend in ("cupy", "triton") else "cpu"
    g = torch.Generator().manual_seed(5)
    y = (torch.randn(13, 2, 3, 4, 5, generator=g) * 1.5).to(device)
    shapes = {"number": (0.6, 1.2), "0-d": (torch.tensor(0.6), torch.tensor(1.2)),
              "per channel": (torch.rand(3, 1, 1, generator=g), torch.rand(3, 1, 1, generator=g) + 0.5),
              "per neuron": (torch.rand(2, 3, 4, 5, generator=g), torch.rand(2, 3, 4, 5, generator=g) + 0.5)}
    for name, (beta, v_th) in shapes.items():
        params = [p.to(device).requires_grad_() if isinstance(p, torch.Tensor) else p for p in (beta, v_th)]
        out = []
        for b in (backend, "torch"):
            yy = y.clone().requires_grad_()
            s, v = lif_scan(yy, None, *params, backend=b)
            tensors = [yy] + [p for p in params if isinstance(p, torch.Tensor)]
            out.append((s, v, torch.autograd.grad(s.sum() + v.sum(), tensors)))
        (s, v, gk), (s_ref, v_ref, g_ref) = out
        assert torch.equal(s, s_ref) and torch.equal(v, v_ref), name
        for a, b in zip(gk, g_ref):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4, msg=name)
    y_nc = y.reshape(13, 2, 60).transpose(1, 2)  # [T, 60, 2], not contiguous
    assert not y_nc.is_contiguous()
    s, v = lif_scan(y_nc, None, 0.5, backend=backend)
    s_ref, v_ref = lif_scan_ref(y_nc.contiguous(), None, 0.5)
    assert torch.equal(s, s_ref) and torch.equal(v, v_ref)


def test_zero_time_steps_is_a_named_error():
    with pytest.raises(ValueError, match="zero time steps"):
        lif_scan(torch.randn(0, 2, 3), None, 0.5)


@pytest.mark.parametrize("skip", [False, True])
def test_kernel_custom_op_passes_opcheck(skip):
    """The numba kernel as the ``snn_ssm::lif_scan`` custom op: schema, fake (meta) implementation, autograd
    registration and dispatch are consistent (torch.library.opcheck). The inputs are laid out transposed, as a
    layer's activations can be: the fake outputs must have the kernels' (contiguous) strides, or Inductor's stride
    assertions fail on them."""
    pytest.importorskip("numba")
    from snn_ssm.ops.lif_scan import _scan_op
    torch.manual_seed(0)
    T, N = 37, 5
    y = (torch.rand(N, T, dtype=torch.float64) * 1.5).t().requires_grad_()
    x = torch.rand(N, T, dtype=torch.float64).t().requires_grad_() if skip else None
    d = torch.rand(N, dtype=torch.float64).requires_grad_() if skip else None
    beta = torch.full((N,), 0.5, dtype=torch.float64, requires_grad=True)
    k = torch.full((N,), 1.25, dtype=torch.float64, requires_grad=True)
    v0 = torch.zeros(N, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(_scan_op, (y, v0, beta, k, x, d, "numba", 0.0, 0, False, False, 0, 1.0))


@pytest.mark.parametrize("shape", ["shared 0-d", "shared [1]", "per channel", "per neuron"])
def test_launchers_get_one_contiguous_value_per_neuron(monkeypatch, shape):
    """The CUDA launchers pass raw pointers, so every tensor a backend's launcher receives must be contiguous and hold
    one value per neuron, however the caller shaped β, v_th, v0 and the skip weight (a shared 0-d parameter spread
    by ``expand`` is a stride-0 view: read through a pointer it would run past its one element). Checked on the
    numba launchers, which would accept strided arrays and so hide the mistake."""
    pytest.importorskip("numba")
    from snn_ssm.ops.lif_scan import numba as impl
    seen = []

    def spy(launch):
        def wrapped(*args):
            seen.extend(a for a in args if isinstance(a, torch.Tensor))
            seen.extend(a for a in (args[-1] or ()) if isinstance(a, torch.Tensor))  # the skip (x, d)
            return launch(*args)
        return wrapped

    monkeypatch.setattr(impl, "launch_forward", spy(impl.launch_forward))
    monkeypatch.setattr(impl, "launch_backward", spy(impl.launch_backward))
    T, B, C = 9, 3, 4
    make = {"shared 0-d": lambda v: torch.tensor(v), "shared [1]": lambda v: torch.tensor([v]),
            "per channel": lambda v: torch.full((C,), v), "per neuron": lambda v: torch.full((B, C), v)}[shape]
    beta, v_th, d = make(0.5), make(0.8).requires_grad_(), make(0.3).requires_grad_()
    v0 = make(0.1).requires_grad_()
    y, x = torch.rand(T, B, C, requires_grad=True), torch.rand(T, B, C)
    s, v = lif_scan(y, v0, beta, v_th, skip_input=x, skip_weight=d, backend="numba")
    (s.sum() + v.sum()).backward()
    s_ref, v_ref = lif_scan_ref(y, v0, beta, v_th, skip_input=x, skip_weight=d)
    assert torch.equal(s, s_ref) and torch.equal(v, v_ref)
    assert seen and all(t.is_contiguous() for t in seen)
    assert all(t.shape[-1] == B * C for t in seen if t.dim() == 1)
