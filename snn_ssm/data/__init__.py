"""Datasets: MNIST from IDX files and the subset embedded in the package."""
from .mnist import load_embedded, load_mnist, read_idx

__all__ = ["load_embedded", "load_mnist", "read_idx"]
