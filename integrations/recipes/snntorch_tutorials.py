"""Recipe: the networks of snnTorch's tutorials 5 (fully connected) and 6 (convolutional), built with
``snntorch.Leaky`` as the tutorials do, then with the Leaky neurons swapped for snn_ssm's (``snn_ssm.swap_neurons``),
each trained a few steps with snnTorch's own rate loss on Fashion-MNIST (the embedded MNIST subset when
Fashion-MNIST is unavailable).

    python integrations/recipes/snntorch_tutorials.py --net tut6 --steps 50 [--to ssm_dendrite_lif]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _common import add_run_args, fit, image_data  # noqa: E402


class Tutorial5(nn.Module):
    """784 → 1000 → 10, Leaky neurons (β = 0.95), stepped over ``num_steps`` with the same input."""

    def __init__(self, beta=0.95):
        super().__init__()
        import snntorch as snn

        self.fc1, self.lif1 = nn.Linear(784, 1000), snn.Leaky(beta=beta)
        self.fc2, self.lif2 = nn.Linear(1000, 10), snn.Leaky(beta=beta)

    def forward(self, x, num_steps):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spikes = []
        for _ in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x.flatten(1)), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spikes.append(spk2)
        return torch.stack(spikes)


class Tutorial6(nn.Module):
    """Conv(1→12, 5) → pool → Leaky → Conv(12→64, 5) → pool → Leaky → Linear(1024 → 10) → Leaky (β = 0.5)."""

    def __init__(self, beta=0.5):
        super().__init__()
        import snntorch as snn

        self.conv1, self.lif1 = nn.Conv2d(1, 12, 5), snn.Leaky(beta=beta)
        self.conv2, self.lif2 = nn.Conv2d(12, 64, 5), snn.Leaky(beta=beta)
        self.fc, self.lif3 = nn.Linear(64 * 4 * 4, 10), snn.Leaky(beta=beta)

    def forward(self, x, num_steps):
        mems = [n.init_leaky() for n in (self.lif1, self.lif2, self.lif3)]
        spikes = []
        for _ in range(num_steps):
            spk1, mems[0] = self.lif1(nn.functional.max_pool2d(self.conv1(x), 2), mems[0])
            spk2, mems[1] = self.lif2(nn.functional.max_pool2d(self.conv2(spk1), 2), mems[1])
            spk3, mems[2] = self.lif3(self.fc(spk2.flatten(1)), mems[2])
            spikes.append(spk3)
        return torch.stack(spikes)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", choices=("tut5", "tut6"), default="tut6")
    p.add_argument("--to", choices=("lif", "ssm_dendrite_lif"), default="lif", help="snn_ssm neuron to swap in")
    p.add_argument("--num-steps", type=int, default=25)
    p.add_argument("--lr", type=float, default=2e-3)
    add_run_args(p, steps=50, batch=64)
    args = p.parse_args(argv)
    import snntorch.functional as SF

    import snn_ssm

    train, test, name = image_data(args.n_train, args.n_test, dataset=args.dataset)
    rate_loss = SF.ce_rate_loss()

    def forward(m, x):  # spike counts of the output layer, the quantity snnTorch's rate loss and accuracy use
        return m(x, args.num_steps).sum(0)

    results = {}
    for label in ("snnTorch Leaky", f"snn_ssm {args.to}"):
        torch.manual_seed(0)
        net = Tutorial5() if args.net == "tut5" else Tutorial6()
        if label.startswith("snn_ssm"):
            kw = {"d_state": 8} if args.to == "ssm_dendrite_lif" else {}
            snn_ssm.swap_neurons(net, to=args.to, **kw)
        print(f"{args.net} with {label} on {name}:")
        results[label] = fit(net, forward, train, test, steps=args.steps, batch=args.batch, lr=args.lr)
        with torch.no_grad():  # snnTorch's own loss on the trained network, for reference
            x, y = test[0][:100], test[1][:100]
            results[label]["snntorch_ce_rate_loss"] = float(rate_loss(net(x, args.num_steps), y))
    return results


if __name__ == "__main__":
    main()
