import gzip
import struct

import numpy as np
import pytest

from snn_ssm.data import load_embedded, load_mnist, read_idx


def test_embedded_subset_is_the_first_mnist_test_images():
    images, labels = load_embedded()
    assert images.shape == (5000, 28, 28) and labels.shape == (5000,)
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(labels.numpy()).tolist() == [460, 571, 530, 500, 500, 456, 462, 512, 489, 520]
    assert images.max() == 255 and images.min() == 0


def write_idx(path, arr, magic_dtype=0x08, gz=True):
    data = bytes([0, 0, magic_dtype, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(data)


def test_load_mnist_from_folder_and_env(tmp_path, monkeypatch):
    imgs = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labs = np.arange(7, dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labs, gz=False)  # raw files work too
    x, y = load_mnist("test", tmp_path)
    assert np.array_equal(x.numpy(), imgs) and y.tolist() == list(range(7))
    monkeypatch.setenv("SNN_SSM_DATA", str(tmp_path))
    assert load_mnist("test")[1].tolist() == list(range(7))


def test_data_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("SNN_SSM_DATA", raising=False)
    with pytest.raises(ValueError, match="SNN_SSM_DATA"):
        load_mnist("train")
    with pytest.raises(ValueError, match="split"):
        load_mnist("val", tmp_path)
    with pytest.raises(FileNotFoundError):
        load_mnist("train", tmp_path)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")
