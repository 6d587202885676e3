"""Shared by the recipes: Fashion-MNIST from Debian's package, the embedded MNIST fallback, the torchvision shim,
and a few-step training loop."""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import torch

from snn_ssm.data import embedded_split, load_mnist

# md5 of the *uncompressed* IDX files (Debian recompresses the .gz files, so their own md5s differ from upstream's)
FASHION_MD5 = {"train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
               "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
               "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
               "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965"}
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


def install_torchvision_hub_shim() -> bool:
    """SpikingJelly's ``sew_resnet``/``spiking_vgg`` import torchvision only for ``load_state_dict_from_url``. Where
    torchvision is missing or broken (CPU machines with a CUDA-only wheel), provide that one name from ``torch.hub``
    as ``torchvision._internally_replaced_utils``. Returns whether the shim was installed."""
    try:
        import torchvision
    except Exception:  # noqa: BLE001 - a broken install counts as missing
        torchvision = None
    if torchvision is not None:
        return False
    tv = types.ModuleType("torchvision")
    tv.__path__ = []
    utils = types.ModuleType("torchvision._internally_replaced_utils")
    utils.load_state_dict_from_url = torch.hub.load_state_dict_from_url
    tv._internally_replaced_utils = utils
    sys.modules["torchvision"], sys.modules["torchvision._internally_replaced_utils"] = tv, utils
    return True


def _verify(folder: Path) -> None:
    for stem, md5 in FASHION_MD5.items():
        path = folder / f"{stem}.gz"
        raw = gzip.open(path).read() if path.exists() else (folder / stem).read_bytes()
        if hashlib.md5(raw).hexdigest() != md5:
            raise ValueError(f"{folder}/{stem}: checksum mismatch (not Fashion-MNIST, or corrupt)")


def fashion_mnist_dir(cache: Path | None = None) -> Path | None:
    """A folder with Fashion-MNIST: ``$FASHION_MNIST_DIR``, the system package's folder, or the Debian package
    ``dataset-fashion-mnist`` fetched with ``apt-get download`` and unpacked into ``cache`` (nothing is installed
    system-wide, nothing comes from the internet beyond the machine's apt source). ``None`` if none works."""
    candidates = [Path(os.environ["FASHION_MNIST_DIR"])] if os.environ.get("FASHION_MNIST_DIR") else []
    cache = Path(cache or Path.home() / ".cache" / "snn_ssm" / "fashion-mnist")
    candidates += [SYSTEM_DIR, cache / "usr/share/datasets/fashion-mnist"]
    for c in candidates:
        if (c / "train-images-idx3-ubyte.gz").exists() or (c / "train-images-idx3-ubyte").exists():
            _verify(c)
            return c
    if shutil.which("apt-get") and shutil.which("dpkg-deb"):
        with tempfile.TemporaryDirectory() as tmp:
            got = subprocess.run(["apt-get", "download", "dataset-fashion-mnist"], cwd=tmp, capture_output=True)
            debs = list(Path(tmp).glob("dataset-fashion-mnist_*.deb"))
            if got.returncode == 0 and debs:
                cache.mkdir(parents=True, exist_ok=True)
                subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(cache)], check=True)
                folder = cache / "usr/share/datasets/fashion-mnist"
                _verify(folder)
                return folder
    return None


def image_data(n_train: int, n_test: int, *, dataset: str = "auto"):
    """``((x_train, y_train), (x_test, y_test), name)``: float images ``[N, 1, 28, 28]`` in [0, 1] and labels.

    ``dataset``: ``"fashion"`` (required), ``"mnist"`` (the embedded subset) or ``"auto"`` (Fashion-MNIST when
    available, else the embedded MNIST subset)."""
    folder = fashion_mnist_dir() if dataset in ("auto", "fashion") else None
    if folder is not None:
        (xi, yi), (xt, yt) = load_mnist("train", folder), load_mnist("test", folder)
        name = "Fashion-MNIST"
    elif dataset == "fashion":
        raise FileNotFoundError("Fashion-MNIST not found: set FASHION_MNIST_DIR or install dataset-fashion-mnist")
    else:
        (xi, yi), (xt, yt) = embedded_split()
        name = "MNIST (embedded subset)"
    to_float = (lambda x: x[:, None].float() / 255)
    return (to_float(xi[:n_train]), yi[:n_train]), (to_float(xt[:n_test]), yt[:n_test]), name


def add_run_args(parser, *, steps: int, batch: int, n_train: int = 4000, n_test: int = 1000) -> None:
    """The options every recipe takes: training steps, batch, how many images, which dataset."""
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--n-train", type=int, default=n_train)
    parser.add_argument("--n-test", type=int, default=n_test)
    parser.add_argument("--dataset", choices=("auto", "fashion", "mnist"), default="auto",
                        help="auto: Fashion-MNIST when available, else the embedded MNIST subset")


def fit(model, forward, train, test, *, steps: int, batch: int, lr: float, reset=None, optimizer: str = "adam",
        log=print) -> dict:
    """A few steps of Adam (or plain SGD, which keeps no state: for big models on small machines) on the
    cross-entropy of ``forward(model, x)`` logits; accuracy on ``test`` before and after."""
    def accuracy():
        model.eval()
        with torch.no_grad():
            correct = 0
            for i in range(0, len(test[1]), 100):
                if reset:
                    reset(model)
                correct += int((forward(model, test[0][i:i + 100]).argmax(1) == test[1][i:i + 100]).sum())
        model.train()
        return correct / len(test[1])

    before = accuracy()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr) if optimizer == "adam" else torch.optim.SGD(params, lr=lr)
    g = torch.Generator().manual_seed(0)
    for step in range(steps):
        idx = torch.randint(0, len(train[1]), (batch,), generator=g)
        if reset:
            reset(model)
        loss = torch.nn.functional.cross_entropy(forward(model, train[0][idx]), train[1][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % max(1, steps // 5) == 0:
            log(f"  step {step + 1}/{steps}  loss {loss.item():.3f}")
    after = accuracy()
    log(f"test accuracy before {100 * before:.1f}%, after {steps} steps {100 * after:.1f}%")
    return {"before": before, "after": after, "loss": loss.item()}
