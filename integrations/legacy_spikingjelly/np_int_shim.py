"""Restore the NumPy aliases that SpikingJelly 0.0.0.0.14 still uses.

Its CuPy kernels (``activation_based/auto_cuda/base.py``) call ``np.int``, which NumPy removed in 1.24, so every
CuPy launch fails with ``AttributeError: module 'numpy' has no attribute 'int'``. Import this module once, before
running the network, to put the old aliases back (they were plain aliases of the Python builtins):

    import np_int_shim  # noqa: F401

It changes nothing on NumPy versions that still have the aliases.
"""
import numpy as np

for _name, _alias in (("int", int), ("float", float), ("bool", bool)):
    if not hasattr(np, _name):
        setattr(np, _name, _alias)
