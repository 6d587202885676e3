import io

import pytest
import torch

from snn_ssm import LIF, SSMDendriteLIF
from snn_ssm.layers import S4DDendrite


def run_steps(neuron, x):
    return torch.stack([neuron.step(x[t]) for t in range(x.shape[0])])


@pytest.mark.parametrize("shape", [(64, 3, 5), (40, 2, 4, 3, 3)], ids=["T64-B3-C5", "T40-B2-C4-3x3"])
def test_lif_step_equals_sequence_exactly(shape):
    x = torch.randn(shape)
    a, b = LIF(shape[2], beta=0.7, reset="soft"), LIF(shape[2], beta=0.7, reset="soft")
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x), run_steps(b, x))
    assert torch.equal(a.state.v, b.state.v)


def test_ssm_neuron_step_equals_sequence_float64():
    x = torch.randn(300, 3, 6, 2, dtype=torch.float64)
    a = SSMDendriteLIF(6, dtype=torch.float64)
    b = SSMDendriteLIF(6, dtype=torch.float64)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x), run_steps(b, x))
    torch.testing.assert_close(a.state.v, b.state.v, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(a.state.h, b.state.h, rtol=1e-9, atol=1e-9)


def test_ssm_neuron_step_vs_sequence_float32_flips_are_rare():
    """FFT convolution and recurrence round differently in float32; a spike can flip only when the membrane lands
    within that rounding (~1e-6) of the threshold. Bound: at most 1 in 10^4 neuron-steps."""
    x = torch.randn(1000, 8, 16)
    a = SSMDendriteLIF(16)
    b = SSMDendriteLIF(16)
    b.load_state_dict(a.state_dict())
    flips = int((a(x) != run_steps(b, x)).sum())
    assert flips <= x.numel() // 10_000


def test_sequence_in_pieces_equals_whole():
    x = torch.randn(90, 2, 4, dtype=torch.float64)
    n = SSMDendriteLIF(4, dtype=torch.float64)
    whole = n(x)
    state = n.state
    n.reset()
    pieces = torch.cat([n(x[:31]), run_steps(n, x[31:40]), n(x[40:])])
    assert torch.equal(whole, pieces)
    torch.testing.assert_close(n.state.h, state.h, rtol=1e-9, atol=1e-9)


def test_gradients_step_vs_sequence():
    x = torch.randn(30, 2, 3, dtype=torch.float64, requires_grad=True)
    a = SSMDendriteLIF(3, dtype=torch.float64)
    b = SSMDendriteLIF(3, dtype=torch.float64)
    b.load_state_dict(a.state_dict())
    w = torch.randn(30, 2, 3, dtype=torch.float64)
    (a(x) * w).sum().backward()
    gx = x.grad.clone()
    x.grad = None
    (run_steps(b, x) * w).sum().backward()
    torch.testing.assert_close(gx, x.grad, rtol=1e-8, atol=1e-10)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-8, atol=1e-10, msg=name)


def test_lazy_channels_and_state_dict_round_trip():
    n = SSMDendriteLIF()
    assert n.channels is None and not list(n.parameters())
    n(torch.randn(5, 2, 7))
    assert n.channels == 7 and n.ln_vth.shape == (7,) and n.dendrite.log_dt.shape == (7,)
    lazy = SSMDendriteLIF()
    lazy.load_state_dict(n.state_dict())
    x = torch.randn(12, 2, 7)
    n.reset()
    assert torch.equal(lazy(x), n(x))
    buf = io.BytesIO()
    torch.save(n, buf)
    buf.seek(0)
    again = torch.load(buf, weights_only=False)
    again.reset(), n.reset()
    assert torch.equal(again(x), n(x))


def test_shared_parameters_take_any_channel_count():
    n = SSMDendriteLIF(shared=True)
    assert n.ln_vth.shape == (1,) and n.dendrite.C.shape[1] == 1
    assert n(torch.randn(10, 2, 5)).shape == (10, 2, 5)
    n.reset()
    assert n(torch.randn(10, 2)).shape == (10, 2)  # [T, B] is fine when nothing is per channel


def test_state_follows_dtype_and_models_do_not_share_state():
    a, b = SSMDendriteLIF(3), SSMDendriteLIF(3)
    a(torch.randn(10, 2, 3))
    assert b.state.v is None
    a.double()
    assert a.state.v.dtype == torch.float64 and a.state.h.dtype == torch.complex128
    assert a.ln_vth.dtype == torch.float64
    a(torch.randn(4, 2, 3, dtype=torch.float64))
    a.reset()
    assert a.state == (None, None)


def test_detach_allows_truncated_bptt():
    n = SSMDendriteLIF(3)
    x = torch.randn(20, 2, 3)
    n(x[:10]).sum().backward()
    n.detach()
    n(x[10:]).sum().backward()  # would raise "backward through the graph a second time" without detach


def test_new_batch_shape_without_reset_is_an_error():
    n = LIF(3)
    n(torch.randn(5, 2, 3))
    with pytest.raises(ValueError, match="call reset"):
        n(torch.randn(5, 4, 3))


def test_output_dtype_follows_input_and_state_stays_in_parameter_dtype():
    n = SSMDendriteLIF(3)
    s = n(torch.randn(10, 2, 3, dtype=torch.float64))
    assert s.dtype == torch.float64 and n.state.v.dtype == torch.float32


@pytest.mark.parametrize("bad, error, match", [
    (lambda: torch.randn(5, 3), ValueError, "layout"),
    (lambda: torch.randn(0, 2, 3), ValueError, "zero length"),
    (lambda: torch.randn(5, 2, 4), ValueError, "channels"),
    (lambda: torch.ones(5, 2, 3, dtype=torch.int64), TypeError, "floating-point"),
    (lambda: torch.randn(5, 2, 3, dtype=torch.complex64), TypeError, "floating-point"),
    (lambda: torch.tensor([[[float("nan")] * 3]]), ValueError, "NaN or Inf"),
    (lambda: torch.full((2, 2, 3), float("inf")), ValueError, "NaN or Inf"),
    (lambda: torch.randn(5, 2, 3, device="meta"), ValueError, "device|on meta"),
    (lambda: [[0.0]], TypeError, "torch.Tensor"),
])
def test_bad_input(bad, error, match):
    n = SSMDendriteLIF(3)
    with pytest.raises(error, match=match):
        n(bad())


def test_bad_step_input_and_constructor_arguments():
    n = LIF(3)
    with pytest.raises(ValueError, match=r"\[B, C, \.\.\.\]"):
        n.step(torch.randn(3))
    with pytest.raises(ValueError, match="channels"):
        LIF(0)
    with pytest.raises(ValueError, match="beta"):
        LIF(3, beta=1.5)
    with pytest.raises(ValueError, match="v_th"):
        LIF(3, v_th=0.0)
    with pytest.raises(ValueError, match="d_state"):
        SSMDendriteLIF(3, d_state=5)
    with pytest.raises(ValueError, match="reset must be"):
        LIF(3, reset="zero")
    with pytest.raises(ValueError, match="bidirectional"):
        S4DDendrite(2, bidirectional=True).step(torch.randn(1, 2, 1), None)


def test_extra_repr_names_the_options():
    r = repr(SSMDendriteLIF(4, d_state=8, reset="soft"))
    assert "d_state=8" in r and "reset='soft'" in r and "channels=4" in r


def test_reset_states_resets_only_the_given_model():
    import snn_ssm

    a = torch.nn.Sequential(SSMDendriteLIF(3), torch.nn.Sequential(LIF(3)))
    b = SSMDendriteLIF(3)
    x = torch.randn(4, 2, 3)
    a(x), b(x)
    snn_ssm.reset_states(a)
    assert a[0].state == (None, None) and a[1][0].state == (None, None)
    assert b.state.v is not None


def test_factory_kwargs():
    n = SSMDendriteLIF(3, dtype=torch.float64, device="cpu")
    assert n.ln_vth.dtype == torch.float64 and n.dendrite.log_dt.dtype == torch.float64
    from snn_ssm import SpikingSSM

    m = SpikingSSM(1, 2, d_model=4, n_layers=1, dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in m.parameters())
    assert m(torch.rand(6, 2, 1, dtype=torch.float64)).dtype == torch.float64
