"""MNIST from IDX files (gzip or raw), and the 5,000-image subset shipped inside the package.

The subset (the first 5,000 official test images, CC BY-SA 3.0, see ``data/mnist/NOTICE``) lets demos and tests
run with no download. Full MNIST is read from a folder given as an argument or in ``SNN_SSM_DATA``.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import torch

__all__ = ["read_idx", "load_mnist", "load_embedded", "embedded_split", "to_sequence", "EMBEDDED_DIR",
           "EMBEDDED_TRAIN"]

EMBEDDED_DIR = Path(__file__).parent / "mnist"
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a numpy array of the shape its header gives.

    Examples::

        >>> read_idx("/path/to/t10k-labels-idx1-ubyte.gz")[:3]    # doctest: +SKIP
        array([7, 2, 1], dtype=uint8)
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, OSError, zlib.error) as e:  # a truncated or corrupt download, or a .gz that is not gzip
        raise ValueError(f"{path} cannot be read ({type(e).__name__}: {e}); download it again") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=_DTYPES[data[2]], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {arr.size} values")
    return arr.reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem, stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"no {stem}[.gz] in {folder}")


def load_mnist(split: str = "train", data_dir: str | os.PathLike | None = None):
    """Images ``uint8 [N, 28, 28]`` and labels ``int64 [N]`` of MNIST ``split`` (``"train"`` or ``"test"``).

    ``data_dir`` defaults to the ``SNN_SSM_DATA`` environment variable.

    Examples::

        >>> images, labels = load_mnist("test", "/path/to/mnist")   # doctest: +SKIP
        >>> images.shape                                          # doctest: +SKIP
        torch.Size([10000, 28, 28])
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    data_dir = data_dir or os.environ.get("SNN_SSM_DATA")
    if not data_dir:
        raise ValueError("give data_dir or set SNN_SSM_DATA to a folder holding the MNIST IDX files "
                         "(or use load_embedded() for the shipped 5,000-image subset)")
    folder = Path(data_dir)
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"))
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{folder}: {images.shape[0]} images but {labels.shape[0]} labels")
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28):
        raise ValueError(f"{folder}: MNIST images must be uint8 [N, 28, 28], got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.size and not (0 <= labels.min() and labels.max() <= 9):
        raise ValueError(f"{folder}: MNIST labels must be digits 0-9, got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


#: The embedded subset's split: images before this index train (and validate), the rest test.
EMBEDDED_TRAIN = 4000


def embedded_split():
    """The embedded subset split as every demo and recipe uses it: ``((train images, labels), (test images,
    labels))``, 4,000 / 1,000.

    Examples::

        >>> (x, y), (xt, yt) = embedded_split()
        >>> len(y), len(yt)
        (4000, 1000)
    """
    images, labels = load_embedded()
    return (images[:EMBEDDED_TRAIN], labels[:EMBEDDED_TRAIN]), (images[EMBEDDED_TRAIN:], labels[EMBEDDED_TRAIN:])


def to_sequence(images: torch.Tensor, pixel: bool) -> torch.Tensor:
    """``uint8 [B, 28, 28]`` → time-first floats in [0, 1]: ``[28, B, 28]`` (rows) or ``[196, B, 1]`` (2×2-pooled
    pixels).

    Examples::

        >>> to_sequence(torch.zeros(2, 28, 28, dtype=torch.uint8), pixel=True).shape
        torch.Size([196, 2, 1])
    """
    x = images.float() / 255
    if pixel:
        return torch.nn.functional.avg_pool2d(x[:, None], 2).flatten(1).T[..., None]
    return x.permute(1, 0, 2)


def load_embedded():
    """The shipped subset: the first 5,000 MNIST test images ``uint8 [5000, 28, 28]`` and labels ``[5000]``.

    Examples::

        >>> images, labels = load_embedded()
        >>> tuple(images.shape), images.dtype
        ((5000, 28, 28), torch.uint8)
    """
    images = read_idx(EMBEDDED_DIR / "t10k-5000-images-idx3-ubyte.gz")
    labels = read_idx(EMBEDDED_DIR / "t10k-5000-labels-idx1-ubyte.gz")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))
