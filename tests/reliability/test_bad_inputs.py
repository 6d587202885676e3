"""The bad-input table: every public entry point × {not a tensor, wrong rank, integer dtype, another device, T=0,
NaN, Inf, mismatched channels}, each expecting a TypeError/ValueError that names the argument; none silently
accepted. (The CLI's mistakes are in tests/training/test_run_safety.py.)"""
import math

import pytest
import torch

import snn_ssm
from snn_ssm.ops import lif_scan

T, B, H = 6, 2, 4


def seq(c=H):  # [T, B, C]
    return torch.rand(T, B, c)


# name -> (build, call(module, x), a good input, the argument name errors must mention)
ENTRIES = {
    "LIF": (lambda: snn_ssm.LIF(H), lambda m, x: m(x), seq, "x"),
    "SSMDendriteLIF": (lambda: snn_ssm.SSMDendriteLIF(H, d_state=4), lambda m, x: m(x), seq, "x"),
    "LIF.step": (lambda: snn_ssm.LIF(H), lambda m, x: m.step(x), lambda: torch.rand(B, H), "x"),
    "LIFSoma": (lambda: snn_ssm.LIFSoma(H), lambda m, x: m(x), seq, "y"),
    "S4DDendrite": (lambda: snn_ssm.S4DDendrite(H, d_state=4), lambda m, x: m(x),
                    lambda: torch.rand(T, B, H, 1), "x"),
    "S4DPLR": (lambda: snn_ssm.S4DPLR(H, d_state=4), lambda m, x: m(x), lambda: torch.rand(T, B, H, 1), "x"),
    "SpikingS4D": (lambda: snn_ssm.SpikingS4D(H, d_state=4), lambda m, x: m(x), seq, "x"),
    "S4DLayer": (lambda: snn_ssm.S4DLayer(H, d_state=4), lambda m, x: m(x), seq, "x"),
    "BinaryS4D": (lambda: snn_ssm.BinaryS4D(H, d_state=4), lambda m, x: m(x), seq, "x"),
    "S4DGSU": (lambda: snn_ssm.S4DGSU(H, d_state=4), lambda m, x: m(x), seq, "x"),
    "PSpikeSSMBlock": (lambda: snn_ssm.PSpikeSSMBlock(H, d_state=4), lambda m, x: m(x), seq, "x"),
    "SpikeSampler": (lambda: snn_ssm.SpikeSampler(H, seed=0), lambda m, x: m(x), seq, "x"),
    "GatedSpikingUnit": (lambda: snn_ssm.GatedSpikingUnit(H), lambda m, x: m(x), seq, "y"),
    "SpikeMixer": (lambda: snn_ssm.SpikeMixer(H), lambda m, x: m(x), lambda: (seq() > 0.5).float(), "s"),
    "ClampFuse": (lambda: snn_ssm.ClampFuse(H, norm="layer"), lambda m, x: m(x, torch.rand(x.shape) if
                  isinstance(x, torch.Tensor) and x.device.type == "cpu" else x), seq, "x"),
    "SpikingSSM": (lambda: snn_ssm.SpikingSSM(1, 3, d_model=H, n_layers=1, d_state=4), lambda m, x: m(x),
                   lambda: torch.rand(T, B, 1), "x"),
    "S4D": (lambda: snn_ssm.S4D(1, 3, d_model=H, n_layers=1, d_state=4), lambda m, x: m(x),
            lambda: torch.rand(T, B, 1), "x"),
    "PSpikeSSM": (lambda: snn_ssm.PSpikeSSM(1, 3, d_model=H, n_layers=1, d_state=4, seed=0), lambda m, x: m(x),
                  lambda: torch.rand(T, B, 1), "x"),
    "BinaryS4DNet": (lambda: snn_ssm.BinaryS4DNet(1, 3, d_model=H, n_layers=1, d_state=4), lambda m, x: m(x),
                     lambda: torch.rand(T, B, 1), "x"),
    "BinaryS4DGSUNet": (lambda: snn_ssm.BinaryS4DGSUNet(1, 3, d_model=H, n_layers=1, d_state=4),
                        lambda m, x: m(x), lambda: torch.rand(T, B, 1), "x"),
    "lif_scan": (lambda: None, lambda m, x: lif_scan(x, None, 0.5), seq, "y"),
}


def _channel_dim(x):
    return 1 if x.ndim == 2 else 2  # [B, C] one step; [T, B, C, *] otherwise


BAD = {
    "not a tensor": lambda x: x.tolist(),
    "wrong rank": lambda x: x.reshape(-1),
    "integer dtype": lambda x: (x * 10).long(),
    "another device": lambda x: x.to("meta"),
    "T=0": lambda x: x[:0],
    "NaN": lambda x: x.index_put_((torch.tensor([0]),), torch.tensor(math.nan)),
    "Inf": lambda x: x.index_put_((torch.tensor([0]),), torch.tensor(math.inf)),
    "channels": lambda x: torch.cat([x, x.narrow(_channel_dim(x), 0, 1)], dim=_channel_dim(x)),
}

# legitimate: a mixer takes integer spikes as 0/1 events; one step has no time axis; the models' channel
# dimension is d_input (tested by "channels" on the layers); lif_scan has no channel count
ALLOWED = {("SpikeMixer", "integer dtype"), ("LIF.step", "T=0"), ("GatedSpikingUnit", "T=0"),
           ("SpikeMixer", "T=0"), ("lif_scan", "channels"), ("lif_scan", "wrong rank")}


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("bad", list(BAD))
def test_bad_input_is_a_named_error(entry, bad):
    build, call, good, arg = ENTRIES[entry]
    if (entry, bad) in ALLOWED:
        pytest.skip("a legitimate input for this entry point (see ALLOWED)")
    module = build()
    call(module, good())  # the good input works
    x = BAD[bad](good())
    with pytest.raises((TypeError, ValueError)) as e:
        call(module, x)
    assert arg in str(e.value) or "lengths" in str(e.value), f"the error does not name {arg!r}: {e.value}"


@pytest.mark.parametrize("make, match", [
    (lambda: snn_ssm.LIF(4, beta=1.5), "beta"), (lambda: snn_ssm.LIF(4, beta=math.nan), "beta"),
    (lambda: snn_ssm.LIF(4, beta="0.5"), "beta"), (lambda: snn_ssm.LIF(4, v_th=0), "v_th"),
    (lambda: snn_ssm.LIF(4, v_th=math.inf), "v_th"), (lambda: snn_ssm.LIF(4, v_reset=math.nan), "v_reset"),
    (lambda: snn_ssm.LIF(4, alpha=math.inf), "alpha"), (lambda: snn_ssm.LIF(4, alpha=0.0), "alpha"),
    (lambda: snn_ssm.LIF(4, reset="zero"), "reset"), (lambda: snn_ssm.LIF(4, grad_mode="fast"), "grad_mode"),
    (lambda: snn_ssm.LIF(4, surrogate="bogus"), "surrogate"), (lambda: snn_ssm.LIF(4, backend="gpu"), "backend"),
    (lambda: snn_ssm.LIF(4, sdn_variant="bogus"), "sdn_variant"),
    (lambda: snn_ssm.LIF(4, reset_mode="fast"), "reset_mode"),
    (lambda: snn_ssm.SSMDendriteLIF(4, d_state=3), "d_state"),
    (lambda: snn_ssm.SSMDendriteLIF(4, dt_max=math.inf), "dt_min"),
    (lambda: snn_ssm.SSMDendriteLIF(4, bidirectional=True), "causal"),
    (lambda: snn_ssm.SSMDendriteLIF(4, bogus=1), "bogus"),
    (lambda: snn_ssm.SpikingS4D(0), "d_model"), (lambda: snn_ssm.SpikingS4D(4, dropout=1.0), "dropout"),
    (lambda: snn_ssm.SpikeMixer(-2), "d_in"), (lambda: snn_ssm.GatedSpikingUnit(0), "d_model"),
    (lambda: snn_ssm.ClampFuse(0), "d_model"), (lambda: snn_ssm.PSpikeSSM(1, 3, seed="0"), "seed"),
    (lambda: snn_ssm.S4DPLR(0), "channels"), (lambda: snn_ssm.SpikeSampler(4, norm="group"), "norm"),
])
def test_impossible_hyperparameters_are_named(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


@pytest.mark.parametrize("call, match", [
    (lambda y: lif_scan(y, None, 2.0), "beta"), (lambda y: lif_scan(y, None, -1.0), "beta"),
    (lambda y: lif_scan(y, None, 0.5, -1.0), "v_th"), (lambda y: lif_scan(y, None, 0.5, 0.0), "v_th"),
    (lambda y: lif_scan(y, torch.full(y.shape[1:], math.nan), 0.5), "v0"),
    (lambda y: lif_scan(y, None, torch.full((H,), 1.5)), "beta"),
    (lambda y: lif_scan(y, None, 0.5, surrogate="triangle", alpha=-1.0), "alpha"),
    (lambda y: lif_scan(y, torch.zeros(3, 3), 0.5), "v0"),
    (lambda y: lif_scan(y, None, torch.rand(5)), "beta"),
    (lambda y: lif_scan(y, None, 0.5, skip_input=y), "skip"),
])
def test_lif_scan_state_and_parameters_are_checked(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call(seq())


def test_neuron_states_are_checked():
    import snn_ssm.snntorch as st

    for neuron in (st.LIF(H), st.SSMDendriteLIF(H, d_state=4)):
        with pytest.raises(ValueError, match="mem"):
            neuron(torch.rand(B, H), torch.full((B, H), math.nan))
        with pytest.raises(ValueError, match="mem"):
            neuron(torch.rand(B, H), torch.full((B, H), 0.5, device="meta"))
    with pytest.raises(ValueError, match="noise"):
        snn_ssm.SpikeSampler(H)(seq(), noise=torch.full((T, B, H), math.nan))
    with pytest.raises(TypeError, match="lengths"):
        snn_ssm.SpikingSSM(1, 3, d_model=H, n_layers=1)(torch.rand(T, B, 1), [3, 4])
    with pytest.raises(ValueError, match="vocabulary"):
        snn_ssm.SpikingSSM(5, 3, d_model=H, n_layers=1, encoder="embedding")(torch.full((T, B), 5))
    with pytest.raises(ValueError, match="run one batch"):
        snn_ssm.param_groups(torch.nn.Sequential(snn_ssm.SSMDendriteLIF()), 1e-3, 0.0)
    for fn in (snn_ssm.reset_states, lambda m: snn_ssm.set_backend(m, "torch"), snn_ssm.to_exact):
        with pytest.raises(TypeError, match="model"):
            fn("net")


LAYERS = {k: v for k, v in ENTRIES.items() if k not in ("LIF.step", "lif_scan", "SpikeMixer", "ClampFuse")}


@pytest.mark.parametrize("entry", list(LAYERS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_other_float_dtypes_run_in_the_parameters_dtype(entry, dtype):
    """numpy arrays arrive as float64, and a half input is common: every module takes them (the probe's "bad"
    f64/bf16 rows), computing in its parameters' dtype as the neurons always did."""
    build, call, good, _ = LAYERS[entry]
    module = build()
    x = good()
    out = call(module, x.to(dtype))
    snn_ssm.reset_states(module)  # the neurons would continue from the first call's state
    ref = call(module, x.to(dtype).float())  # the same values, given in float32
    out = out[0] if isinstance(out, tuple) else out
    ref = ref[0] if isinstance(ref, tuple) else ref
    assert out.dtype in (torch.float32, dtype) and out.shape == ref.shape
    if "Sampler" not in entry and "PSpike" not in entry:  # stochastic ones draw new noise per call
        torch.testing.assert_close(out.float(), ref.float())


@pytest.mark.parametrize("entry", list(LAYERS))
def test_an_empty_batch_gives_an_empty_result(entry):
    build, call, good, _ = LAYERS[entry]
    module = build().eval()
    x = good()
    out = call(module, x[:, :0])
    out = out[0] if isinstance(out, tuple) else out
    assert out.numel() == 0
