"""NIR files (HDF5, NIR's own format)."""
from __future__ import annotations

from pathlib import Path

import nir

__all__ = ["to_file", "from_file"]


def to_file(graph: nir.NIRGraph, path) -> Path:
    """Write ``graph`` to ``path`` (a ``.nir`` HDF5 file, gzip-compressed); returns the path.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), snn_ssm.LIF(4))
        >>> path = to_file(snn_ssm.nir.export(net, torch.rand(10, 1, 3)), "net.nir")
        >>> sorted(from_file(path).nodes)
        ['0', '1', 'input', 'output']
    """
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"graph must be a nir.NIRGraph (from snn_ssm.nir.export), got {type(graph).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"path {str(path)!r}: folder {str(path.parent)!r} does not exist")
    nir.write(path, graph)
    return path


def from_file(path) -> nir.NIRGraph:
    """Read a NIR graph written by :func:`to_file` (or by any NIR tool).

    Examples::

        >>> from_file("missing.nir")
        Traceback (most recent call last):
        ...
        FileNotFoundError: path 'missing.nir' is not a file (a .nir graph)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path {str(path)!r} is not a file (a .nir graph)")
    return nir.read(path)
