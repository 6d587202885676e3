"""Sequential MNIST and permuted sequential MNIST with the S4 protocol.

Each image becomes a 784-step, 1-feature sequence of pixels / 255 in row-major order (psMNIST: reordered by the
bit-reversal permutation of S4's code). The 60k training images are split 54k / 6k into train / validation by
``torch.randperm(60000, generator=torch.Generator().manual_seed(42))`` (the first 54k indices train); the official
10k images are the test set. Without a data folder the images embedded in the package are used: images 0–3999 for
training (split 90 / 10 into train / validation with the same seeded permutation), 4000–4999 for testing.
"""
from __future__ import annotations

import os

import torch

from .mnist import embedded_split, load_mnist

__all__ = ["bitreversal_permutation", "SequenceMNIST", "mnist_splits"]


def bitreversal_permutation(n: int = 784) -> torch.Tensor:
    """The bit-reversal permutation of ``0 … 2^k − 1`` (``2^k ≥ n``), keeping the entries below ``n``.

    Examples::

        >>> bitreversal_permutation(784)[:6].tolist()
        [0, 512, 256, 768, 128, 640]
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    bits = max(1, (n - 1).bit_length())
    rev = [int(format(i, f"0{bits}b")[::-1], 2) for i in range(2 ** bits)]
    return torch.tensor([r for r in rev if r < n], dtype=torch.int64)


def mnist_splits(data_dir: str | os.PathLike | None = None, seed: int = 42):
    """``{"train": (images, labels), "val": ..., "test": ...}`` (uint8 ``[N, 28, 28]``, int64 ``[N]``) from IDX files
    in ``data_dir`` (or ``$SNN_SSM_DATA``), else from the embedded subset.

    Examples::

        >>> {k: len(v[1]) for k, v in mnist_splits().items()}   # embedded subset (full MNIST: 54000/6000/10000)
        {'train': 3600, 'val': 400, 'test': 1000}
    """
    data_dir = data_dir or os.environ.get("SNN_SSM_DATA")
    if data_dir:
        train, test = load_mnist("train", data_dir), load_mnist("test", data_dir)
    else:
        train, test = embedded_split()
    n = len(train[1])
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_train = n - n // 10
    pick = (lambda idx: (train[0][idx], train[1][idx]))
    return {"train": pick(order[:n_train]), "val": pick(order[n_train:]), "test": test}


class SequenceMNIST(torch.utils.data.Dataset):
    """One split of sMNIST (``permute=False``) or psMNIST (``permute=True``): items ``(x [784, 1], label)``.

    Batch with :meth:`collate` to get time-first ``[784, B, 1]`` inputs, the layout of every snn_ssm model.

    Examples::

        >>> splits = mnist_splits()                       # the embedded subset without SNN_SSM_DATA
        >>> x, y = SequenceMNIST.collate([SequenceMNIST(*splits["test"], permute=True)[i] for i in range(4)])
        >>> tuple(x.shape)
        (784, 4, 1)
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, permute: bool = False):
        if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise ValueError(f"images must be [N, 28, 28] with N labels, got {tuple(images.shape)} and "
                             f"{tuple(labels.shape)}")
        self.images, self.labels = images, labels.long()
        self.permutation = bitreversal_permutation(784) if permute else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i].reshape(784).float() / 255
        if self.permutation is not None:
            x = x[self.permutation]
        return x[:, None], self.labels[i]

    @staticmethod
    def collate(batch):
        xs, ys = zip(*batch)
        return torch.stack(xs, dim=1), torch.stack(ys)  # (784 B 1), (B)
