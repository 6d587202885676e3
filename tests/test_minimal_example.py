"""examples/minimal_spiking_s4d.py (torch only) and the package compute the same model."""
import importlib.util
from pathlib import Path

import torch

from snn_ssm import SpikingSSM

PATH = Path(__file__).resolve().parents[1] / "examples" / "minimal_spiking_s4d.py"


def load_minimal():
    spec = importlib.util.spec_from_file_location("minimal_spiking_s4d", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_minimal_example_matches_package():
    minimal = load_minimal().MinimalSpikingSSM(d_input=3, d_output=5, H=8, n_layers=2, N=8).double()
    ours = SpikingSSM(3, 5, d_model=8, n_layers=2, d_state=8, norm="layer", prenorm=False, dtype=torch.float64)
    with torch.no_grad():
        ours.encoder.load_state_dict(minimal.encoder.state_dict())
        ours.decoder.load_state_dict(minimal.decoder.state_dict())
        for block, layer, norm in zip(ours.blocks, minimal.layers, minimal.norms):
            d = block.layer.dendrite
            for name in ("log_dt", "log_A_real", "A_imag", "C", "D"):
                getattr(d, name).copy_(getattr(layer, name))
            block.layer.soma.ln_vth.copy_(layer.ln_vth + 0.1)
            layer.ln_vth.add_(0.1)
            block.layer.output_linear.load_state_dict(layer.out.state_dict())
            block.norm.norm.load_state_dict(norm.state_dict())
    x = torch.randn(50, 4, 3, dtype=torch.float64) * 3
    out_min, out_pkg = minimal(x), ours(x)
    torch.testing.assert_close(out_pkg, out_min, rtol=1e-9, atol=1e-9)
    out_min.sum().backward()
    out_pkg.sum().backward()
    torch.testing.assert_close(ours.blocks[0].layer.dendrite.log_dt.grad, minimal.layers[0].log_dt.grad,
                               rtol=1e-7, atol=1e-9)
