"""Recipe: a SpikingJelly convolutional SNN in the style of its ``conv_fashion_mnist`` example, first with
SpikingJelly's own ``LIFNode``, then with its neurons swapped for snn_ssm's (``snn_ssm.swap_neurons``), trained a
few steps each on Fashion-MNIST (the embedded MNIST subset when Fashion-MNIST is unavailable).

    python integrations/recipes/sj_csnn.py --steps 50 [--to ssm_dendrite_lif]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _common import add_run_args, fit, image_data  # noqa: E402


def csnn(channels: int = 32):
    """Conv-BN-LIF-pool twice, then two fully connected spiking layers (SpikingJelly layers, multi-step)."""
    from spikingjelly.activation_based import layer, neuron, surrogate

    def lif():
        return neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), detach_reset=True)

    return nn.Sequential(
        layer.Conv2d(1, channels, 3, padding=1, bias=False), layer.BatchNorm2d(channels), lif(), layer.MaxPool2d(2),
        layer.Conv2d(channels, channels, 3, padding=1, bias=False), layer.BatchNorm2d(channels), lif(),
        layer.MaxPool2d(2), layer.Flatten(), layer.Linear(channels * 7 * 7, channels * 4 * 4, bias=False), lif(),
        layer.Linear(channels * 4 * 4, 10, bias=False), lif())


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--to", choices=("lif", "ssm_dendrite_lif"), default="lif", help="snn_ssm neuron to swap in")
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--T", type=int, default=4)
    add_run_args(p, steps=50, batch=32)
    args = p.parse_args(argv)
    from spikingjelly.activation_based import functional

    import snn_ssm

    train, test, name = image_data(args.n_train, args.n_test, dataset=args.dataset)

    def forward(m, x):  # direct encoding over T steps; the output neurons' firing rates (x 10 as logits)
        return 10 * m(x[None].expand(args.T, -1, -1, -1, -1)).mean(0)

    results = {}
    for label in ("SpikingJelly LIFNode", f"snn_ssm {args.to}"):
        torch.manual_seed(0)
        net = csnn(args.channels)
        functional.set_step_mode(net, "m")
        if label.startswith("snn_ssm"):
            kw = {"d_state": 8} if args.to == "ssm_dendrite_lif" else {}
            snn_ssm.swap_neurons(net, to=args.to, **kw)
        print(f"{label} on {name}:")
        results[label] = fit(net, forward, train, test, steps=args.steps, batch=args.batch, lr=1e-3,
                             reset=functional.reset_net)
    return results


if __name__ == "__main__":
    main()
