"""Recipe: SpikingJelly 2.0.0 model-zoo networks built with snn_ssm neurons (``spiking_neuron=``), trained a few
steps on Fashion-MNIST (Debian's ``dataset-fashion-mnist``; the embedded MNIST subset when it is unavailable).

    python integrations/recipes/sj_model_zoo.py --arch sew_resnet18 --neuron ssm_dendrite_lif --steps 30
    python integrations/recipes/sj_model_zoo.py --arch spiking_vgg11_bn --steps 10
    python integrations/recipes/sj_model_zoo.py --arch ms_resnet18

``sew_resnet18`` and ``spiking_vgg11_bn`` are run in multi-step mode on the image repeated for ``--T`` steps
(direct encoding, 3 channels); ``ms_resnet18`` repeats its input itself. Their modules import torchvision for
``load_state_dict_from_url`` only: without a working torchvision, :func:`_common.install_torchvision_hub_shim`
provides that name from ``torch.hub``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import add_run_args, fit, image_data, install_torchvision_hub_shim  # noqa: E402

ARCHS = ("sew_resnet18", "spiking_vgg11_bn", "ms_resnet18")


def build(arch: str, neuron_name: str, T: int):
    install_torchvision_hub_shim()
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.model import ms_resnet, sew_resnet, spiking_vgg

    import snn_ssm.spikingjelly as ours

    neuron = {"lif": ours.LIF, "ssm_dendrite_lif": ours.SSMDendriteLIF}[neuron_name]
    kw = {"d_state": 8} if neuron_name == "ssm_dendrite_lif" else {}
    if arch == "sew_resnet18":
        net = sew_resnet.sew_resnet18(cnf="ADD", spiking_neuron=neuron, num_classes=10, **kw)
    elif arch == "spiking_vgg11_bn":
        net = spiking_vgg.spiking_vgg11_bn(spiking_neuron=neuron, num_classes=10, **kw)
    else:
        net = ms_resnet.ms_resnet18(T=T, num_classes=10, spiking_neuron=neuron, **kw)
        return net, (lambda m, x: m(_rgb32(x)))
    functional.set_step_mode(net, "m")

    def forward(m, x):  # [B, 1, 28, 28] -> [T, B, 3, 32, 32] -> mean over time of the logits
        return m(_rgb32(x)[None].expand(T, -1, -1, -1, -1)).mean(0)
    return net, forward


def _rgb32(x):
    """Grey 28x28 -> 3 x 32 x 32 (zero border): VGG's five poolings need at least 32 pixels."""
    return F.pad(x, (2, 2, 2, 2)).expand(-1, 3, -1, -1)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=ARCHS, default="sew_resnet18")
    p.add_argument("--neuron", choices=("lif", "ssm_dendrite_lif"), default="lif")
    p.add_argument("--T", type=int, default=4)
    add_run_args(p, steps=30, batch=16, n_train=2000, n_test=500)
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--lr", type=float, default=1e-3)
    args = p.parse_args(argv)
    from spikingjelly.activation_based import functional

    train, test, name = image_data(args.n_train, args.n_test, dataset=args.dataset)
    net, forward = build(args.arch, args.neuron, args.T)
    n = sum(1 for m in net.modules() if type(m).__module__ == "snn_ssm.spikingjelly")
    print(f"{args.arch} with {n} snn_ssm {args.neuron} neurons on {name}")
    return fit(net, forward, train, test, steps=args.steps, batch=args.batch, lr=args.lr, reset=functional.reset_net,
               optimizer=args.optimizer)


if __name__ == "__main__":
    main()
