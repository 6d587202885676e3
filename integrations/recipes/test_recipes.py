"""Every recipe at a tiny size (the embedded MNIST subset, so no package fetch), the torchvision shim and the
Fashion-MNIST checksum check."""
import gzip
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
pytest.importorskip("spikingjelly.activation_based")
pytest.importorskip("snntorch")

import _common  # noqa: E402
import sj_csnn  # noqa: E402
import sj_model_zoo  # noqa: E402
import snntorch_tutorials  # noqa: E402

TINY = ["--steps", "1", "--n-train", "16", "--n-test", "8", "--dataset", "mnist"]


@pytest.mark.parametrize("arch, extra", [("sew_resnet18", ["--neuron", "ssm_dendrite_lif"]), ("ms_resnet18", []),
                                         ("spiking_vgg11_bn", ["--optimizer", "sgd", "--lr", "0.01"])])
def test_sj_model_zoo(arch, extra):
    r = sj_model_zoo.main(["--arch", arch, "--T", "2", "--batch", "2", *extra, *TINY])
    assert (r["after"] * 8) % 1 == 0 and r["loss"] > 0  # an accuracy over the 8 test images: a count of them


def test_sj_csnn_before_and_after_the_swap():
    r = sj_csnn.main(["--channels", "4", "--T", "2", "--batch", "4", "--to", "ssm_dendrite_lif", *TINY])
    assert set(r) == {"SpikingJelly LIFNode", "snn_ssm ssm_dendrite_lif"}


@pytest.mark.parametrize("net", ["tut5", "tut6"])
def test_snntorch_tutorial_networks(net):
    r = snntorch_tutorials.main(["--net", net, "--num-steps", "3", "--batch", "4", *TINY])
    assert set(r) == {"snnTorch Leaky", "snn_ssm lif"} and all("snntorch_ce_rate_loss" in v for v in r.values())


def test_torchvision_shim(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torchvision(name, *args, **kwargs):
        if name == "torchvision" or name.startswith("torchvision."):
            raise ImportError("torchvision is broken here")
        return real_import(name, *args, **kwargs)

    for key in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, key)
    monkeypatch.setattr(builtins, "__import__", no_torchvision)
    assert _common.install_torchvision_hub_shim()
    monkeypatch.setattr(builtins, "__import__", real_import)
    from torchvision._internally_replaced_utils import load_state_dict_from_url

    import torch
    assert load_state_dict_from_url is torch.hub.load_state_dict_from_url
    for key in ("torchvision", "torchvision._internally_replaced_utils"):
        monkeypatch.delitem(sys.modules, key)


def test_fashion_mnist_checksum_rejects_other_files(tmp_path):
    for stem in _common.FASHION_MD5:
        with gzip.open(tmp_path / f"{stem}.gz", "wb") as f:
            f.write(b"not fashion")
    with pytest.raises(ValueError, match="checksum mismatch"):
        _common._verify(tmp_path)
