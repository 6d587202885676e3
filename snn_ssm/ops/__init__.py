"""Fused kernels behind one dispatch; each op has a pure-torch reference with the same signature."""
from .dispatch import BACKENDS, available, use_backend
from .lif_scan import lif_scan, lif_scan_ref
from .ssm_lif import s4d_scan, s4d_scan_ref, ssm_lif, ssm_lif_ref

__all__ = ["BACKENDS", "available", "use_backend", "lif_scan", "lif_scan_ref", "ssm_lif", "ssm_lif_ref", "s4d_scan",
           "s4d_scan_ref"]
