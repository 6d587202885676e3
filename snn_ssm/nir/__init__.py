r"""NIR export and import: our neurons on the Neuromorphic Intermediate Representation (``pip install snn_ssm[nir]``).

:func:`export` turns a model into a ``nir.NIRGraph``; :func:`import_` turns a graph into a runnable
:class:`NIRNetwork` built from our modules; :func:`to_file`/:func:`from_file` write and read NIR's HDF5 files.

**The reading.** NIR nodes are continuous-time ODEs; a simulator with step ``dt`` reads them by forward Euler,
``x_t = x_{t-1} + dt·f(x_{t-1}, input_t)``, with a neuron's state updated before it fires (snnTorch's and
SpikingJelly's order). Edges into a node add up; an edge that closes a cycle carries the previous step's value.
Under that reading the exported graph *is* our discrete neuron:

* LIF soma ``u'_t = β u_{t-1} + y_t / v_th``, ``s_t = [u'_t ≥ 1]``, hard reset to ``v_reset`` →
  ``Scale(1/v_th)`` (left out when every threshold is 1) → ``LIF(τ = dt/(1-β), r = τ/dt, v_leak = 0,
  v_threshold = 1⁻, v_reset)``, where ``1⁻`` is the largest float below 1 in the model's dtype, so that NIR's strict
  ``v > v_threshold`` fires exactly when our ``u' ≥ 1``. β = 1 becomes ``IF(r = 1/dt)``; ``reset="none"`` becomes
  ``LI`` → ``Threshold(1⁻)``. A soft (subtractive) reset has no NIR node and is refused, never written as a hard one.
* S4D dendrite (``SSMDendriteLIF``), per channel and complex mode ``h ← Ā h + B̄ x``, ``y = 2 Re(C h) + D x`` →
  a subgraph ``Linear(B̄)`` → ``I(r = 1/dt)`` with a recurrent block-diagonal ``Linear`` (one 2x2 block
  ``[[Re Ā - 1, -Im Ā], [Im Ā, Re Ā - 1]]`` per mode, so that the Euler step is ``Ā`` exactly) → ``Linear(2 Re C,
  -2 Im C)``, plus ``Scale(D)`` from the input, into the soma above. A neuron with one real mode per channel
  (``d_state=2``, ``Im Ā = 0``) and no skip (``D = 0``) is written as ``Scale`` → ``CubaLIF`` instead.
  The subgraph's metadata keeps the continuous parameters, so our importer rebuilds the same trainable neuron.

What NIR cannot express raises a ``ValueError`` naming every such module, before anything is built: bidirectional
kernels, the SDN reset mode, the SpikeSampler, GLU/GSU mixers and the spiking S4D blocks, normalisation, max pooling,
the DPLR S4 kernel, and host neurons that :func:`snn_ssm.swap_neurons` has not replaced.

Examples::

    >>> import torch, snn_ssm, snn_ssm.nir
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), snn_ssm.LIF(4, beta=0.5))
    >>> graph = snn_ssm.nir.export(net, torch.rand(10, 1, 3))   # [T, B, 3]
    >>> sorted(graph.nodes)
    ['0', '1', 'input', 'output']
    >>> copy = snn_ssm.nir.import_(graph)
    >>> x = torch.rand(50, 2, 3)
    >>> bool((copy(x) == net(x)).all())
    True
"""
from __future__ import annotations

try:
    import nir as _nir  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("snn_ssm.nir needs the NIR packages: pip install 'snn_ssm[nir]' (nir, nirtorch)") from e

from ._export import export
from ._import import NIRNetwork, import_
from ._io import from_file, to_file

__all__ = ["export", "import_", "NIRNetwork", "to_file", "from_file"]
