"""Every Python-API case the 2026-12 reliability probe found silently accepted (``reliability_probe.md``, "Every
worst case"), replayed with the probe's call: each is now a named error, or, where the input is legitimate, the
output is what it should be (a float64 state kept in the neuron's dtype)."""
import math

import pytest
import torch

import snn_ssm
from snn_ssm.ops import lif_scan

nan, inf = math.nan, math.inf


def x(*shape):
    return torch.randn(*shape) if shape else torch.randn(16, 2, 4)


def with_nan(t):
    t = t.clone()
    t.view(-1)[0] = nan
    return t


CASES = {
    "LIF.vthinf": (lambda: snn_ssm.LIF(4, v_th=inf), "v_th"),
    "LIF.vrnan": (lambda: snn_ssm.LIF(4, v_reset=nan), "v_reset"),
    "LIF.vrinf": (lambda: snn_ssm.LIF(4, v_reset=inf), "v_reset"),
    "LIF.ainf": (lambda: snn_ssm.LIF(4, alpha=inf), "alpha"),
    "LIF.sdnv": (lambda: snn_ssm.LIF(4, sdn_variant="bogus"), "sdn_variant"),
    "LIF.sdnpx": (lambda: snn_ssm.LIF(4, sdn_path="/nonexistent.pt"), "sdn_path"),
    "SSMDendriteLIF.vthinf": (lambda: snn_ssm.SSMDendriteLIF(4, v_th=inf), "v_th"),
    "SSMDendriteLIF.dtinf": (lambda: snn_ssm.SSMDendriteLIF(4, dt_max=inf), "dt_max"),
    "SSMDendriteLIF.vrnan": (lambda: snn_ssm.SSMDendriteLIF(4, v_reset=nan), "v_reset"),
    "SSMDendriteLIF.vrinf": (lambda: snn_ssm.SSMDendriteLIF(4, v_reset=inf), "v_reset"),
    "SSMDendriteLIF.ainf": (lambda: snn_ssm.SSMDendriteLIF(4, alpha=inf), "alpha"),
    "SSMDendriteLIF.sdnv": (lambda: snn_ssm.SSMDendriteLIF(4, sdn_variant="bogus"), "sdn_variant"),
    "SSMDendriteLIF.sdnpx": (lambda: snn_ssm.SSMDendriteLIF(4, sdn_path="/nonexistent.pt"), "sdn_path"),
    "scan.nan": (lambda: lif_scan(with_nan(x()), None, 0.5), "y"),
    "scan.beta2": (lambda: lif_scan(x(), None, 2.0), "beta"),
    "scan.beta-": (lambda: lif_scan(x(), None, -1.0), "beta"),
    "scan.vth-": (lambda: lif_scan(x(), None, 0.5, -1.0), "v_th"),
    "scan.aneg": (lambda: lif_scan(x(), None, 0.5, surrogate="triangle", alpha=-1.0), "alpha"),
    "scan.a0": (lambda: lif_scan(x(), None, 0.5, surrogate="atan", alpha=0.0), "alpha"),
    "scan.v0nan": (lambda: lif_scan(x(), torch.full((2, 4), nan), 0.5), "v0"),
    "BinaryS4D.thnan": (lambda: snn_ssm.BinaryS4D(8, threshold=nan), "threshold"),
    "BinaryS4D.thinf": (lambda: snn_ssm.BinaryS4D(8, threshold=inf), "threshold"),
    "GSU.nan": (lambda: snn_ssm.GatedSpikingUnit(8)(with_nan(x(16, 2, 8))), "y"),
    "GSU.dm0": (lambda: snn_ssm.GatedSpikingUnit(0), "d_model"),
    "S4DDend.nan": (lambda: snn_ssm.S4DDendrite(4)(with_nan(x(16, 2, 4, 1))), "x"),
    "LIFSoma.nan": (lambda: snn_ssm.LIFSoma(4)(with_nan(x())), "y"),
    "S4DPLR.int": (lambda: snn_ssm.S4DPLR(8)(torch.ones(16, 2, 8, 1, dtype=torch.int64)), "x"),
    "S4DPLR.bool": (lambda: snn_ssm.S4DPLR(8)(torch.ones(16, 2, 8, 1, dtype=torch.bool)), "x"),
    "S4DPLR.nan": (lambda: snn_ssm.S4DPLR(8)(with_nan(x(16, 2, 8, 1))), "x"),
    "Sampler.nan": (lambda: snn_ssm.SpikeSampler(4, seed=0)(with_nan(x())), "x"),
    "Sampler.inf": (lambda: snn_ssm.SpikeSampler(4, seed=0)(x().index_fill(0, torch.tensor([0]), inf)), "x"),
    "Sampler.noisenan": (lambda: snn_ssm.SpikeSampler(4, seed=0)(x(), noise=torch.full((16, 2, 4), nan)), "noise"),
    "Mixer.nan": (lambda: snn_ssm.SpikeMixer(8)(with_nan(x(16, 2, 8))), "s"),
    "Mixer.d0": (lambda: snn_ssm.SpikeMixer(0), "d_in"),
    "Clamp.bcast": (lambda: snn_ssm.ClampFuse(8, norm="layer")(x(16, 2, 8), x(2, 8)), "y"),
    "Clamp.bcast2": (lambda: snn_ssm.ClampFuse(8, norm="layer")(x(16, 1, 8), x(16, 2, 8)), "shape"),
    "Clamp.nan": (lambda: snn_ssm.ClampFuse(8, norm=None)(with_nan(x(16, 2, 8)), x(16, 2, 8)), "x"),
    "Clamp.int": (lambda: snn_ssm.ClampFuse(8, norm=None)(torch.ones(16, 2, 8, dtype=torch.int64),
                                                          torch.ones(16, 2, 8, dtype=torch.int64)), "x"),
    "SpikingSSM.lenf": (lambda: snn_ssm.SpikingSSM(1, 10, d_model=8, n_layers=1)(
        torch.rand(16, 2, 1), torch.tensor([3.5, 16.0])), "lengths"),
    "PSpikeSSM.lenf": (lambda: snn_ssm.PSpikeSSM(1, 10, d_model=8, n_layers=1, seed=0)(
        torch.rand(16, 2, 1), torch.tensor([3.5, 16.0])), "lengths"),
    "S4D.lenf": (lambda: snn_ssm.S4D(1, 10, d_model=8, n_layers=1)(
        torch.rand(16, 2, 1), torch.tensor([3.5, 16.0])), "lengths"),
    "BinaryS4DNet.lenf": (lambda: snn_ssm.BinaryS4DNet(1, 10, d_model=8, n_layers=1)(
        torch.rand(16, 2, 1), torch.tensor([3.5, 16.0])), "lengths"),
    "BinaryS4DGSUNet.lenf": (lambda: snn_ssm.BinaryS4DGSUNet(1, 10, d_model=8, n_layers=1)(
        torch.rand(16, 2, 1), torch.tensor([3.5, 16.0])), "lengths"),
    "pg.lazy": (lambda: snn_ssm.param_groups(torch.nn.Sequential(snn_ssm.SSMDendriteLIF()), 1e-3, 0.0),
                "run one batch"),
    "pg.lrneg": (lambda: snn_ssm.param_groups(snn_ssm.S4D(1, 3, d_model=8, n_layers=1), lr=-1,
                                              weight_decay=0.0), "lr"),
    "sdn.lifnan": (lambda: snn_ssm.sdn.sdn_lif(with_nan(x(16, 2)), snn_ssm.sdn.load_sdn(0.125),
                                               snn_ssm.functional.surrogate.resolve("triangle")), "x"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_probe_worst_case_is_now_a_named_error(case):
    call, name = CASES[case]
    with pytest.raises((TypeError, ValueError, FileNotFoundError)) as e:
        call()
    assert name in str(e.value), f"{case}: the error does not name {name!r}: {e.value}"


@pytest.mark.parametrize("framework", ["snntorch"])
def test_framework_faces_worst_cases(framework):
    st = pytest.importorskip("snn_ssm.snntorch")
    sj = pytest.importorskip("snn_ssm.spikingjelly")
    for cls in (st.LIF, st.SSMDendriteLIF):
        with pytest.raises(ValueError, match="mem"):  # stLIF.memnan
            cls(4)(torch.randn(2, 4), torch.full((2, 4), nan))
        with pytest.raises(ValueError, match="threshold"):  # stLIF.thinf
            cls(4, threshold=inf)
        n = cls(4)  # stLIF.mem64: a float64 mem is taken in the neuron's dtype, the state does not drift
        _, mem = n(torch.randn(2, 4), torch.full((2, 4), 0.5, dtype=torch.float64))
        assert mem.dtype == torch.float32
    with pytest.raises(ValueError, match="x"):  # stSampler.nan
        st.SpikeSampler(4, seed=0)(torch.full((2, 4), nan))
    with pytest.raises(ValueError, match="x"):  # sjSampler.nan
        sj.SpikeSampler(4, step_mode="m")(with_nan(x()))


def test_swap_with_nothing_to_swap_says_so():  # swap.none
    snn = pytest.importorskip("snntorch")
    sjn = pytest.importorskip("spikingjelly.activation_based.neuron")
    with pytest.warns(UserWarning, match="returned unchanged"):
        snn_ssm.swap_neurons(torch.nn.Sequential(snn.Synaptic(alpha=0.9, beta=0.8), sjn.IzhikevichNode()))
