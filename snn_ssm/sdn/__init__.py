"""SpikingSSM's surrogate dynamic network (SDN): parallel, approximate hard reset; weights, trainer and report.

The exact hard-reset LIF is sequential in time. The SDN mode (``reset_mode="sdn"`` on :class:`~snn_ssm.LIF`,
:class:`~snn_ssm.SSMDendriteLIF`, :class:`~snn_ssm.SpikingS4D`, :class:`~snn_ssm.SpikingSSM` and the framework
adapters) replaces the loop by a frozen ~150-parameter causal CNN that predicts the decayed after-reset membrane
``m̂_t ≈ β·v_{t−1}`` from the soma input ``x = y / v_th`` alone, so all spikes come from one parallel pass::

    m̂ = SDN(x.detach())          (no gradient)
    s_t = H(m̂_t + x_t − 1)       (gradient: the surrogate at step t, through x_t only)

The learnable threshold works through the input scaling (SpikingSSM's Property 2: ``s(y; v_th) = s(y/v_th; 1)`` from
rest with reset to 0), so the mode needs a hard reset to 0, a shared scalar β with shipped weights, and a neuron at
rest at the start of each sequence. Its gradient is always the local one (as ``grad_mode="local"``).

Two variants are shipped for β ∈ {0.125, 0.25, 0.5, 0.75, 0.9}, both trained by ``python -m snn_ssm sdn-train``:

- ``"paper"``: the published network (receptive field 8, current step excluded) trained on i.i.d. N(0, 1) inputs
  with the published recipe.
- ``"scan"``: ours. A constant input just below threshold makes the exact neuron fire periodically (every other
  step when it lies in ``[1/(1+β), 1)``); a time-invariant CNN with a finite window maps a constant input to a
  constant output and so can never alternate (the paper's network predicts a constant membrane there and gets half
  the steps wrong). But the only history-dependent part of the alternation is the reset, and the reset is simple:
  after a spike the carried membrane is exactly 0. So the same network predicts ``p̂_t ≈ β·u_{t−1}``, the membrane
  the neuron would carry had it *not* fired at ``t − 1`` (constant, ``β·c``, in the alternating regime), and the
  spikes follow ``s_t = H((1 − s_{t−1})·p̂_t + x_t − 1)`` from ``s_0 = 1`` (rest), a recursion over two states whose
  steps compose associatively: a parallel scan of ``⌈log₂ T⌉`` elementwise passes
  (:func:`~snn_ssm.sdn.model.reset_scan`). It stays parallel, has the same 153 parameters, and is exact whenever
  ``p̂`` is. ``python -m snn_ssm sdn-report`` measures both variants.

:func:`snn_ssm.to_exact` switches a model trained with the SDN to the exact neuron (for inference, or to
fine-tune). The trainer and the report (``python -m snn_ssm sdn-train`` / ``sdn-report``) live in
:mod:`snn_ssm.tools`, beside the CLI: this package is a floor the soma stands on and imports nothing above it.
"""
from __future__ import annotations

import copy
import os
import weakref
from pathlib import Path
from typing import NamedTuple

import torch

from .. import _checks
from .model import SDN, reset_scan

__all__ = ["SDN", "VARIANTS", "SHIPPED_BETAS", "Frozen", "load_sdn", "shipped", "weights_path", "predict", "sdn_lif",
           "reset_scan", "ENV_VAR"]

#: Architecture of each variant (keyword arguments of :class:`SDN`) and the data it is trained on.
VARIANTS = {"paper": dict(arch=dict(), data="gaussian"),
            "scan": dict(arch=dict(scan=True), data="gaussian")}
SHIPPED_BETAS = (0.125, 0.25, 0.5, 0.75, 0.9)
#: A folder searched before the shipped weights (files named as :func:`weights_path` names them).
ENV_VAR = "SNN_SSM_SDN_DIR"
_WEIGHTS = Path(__file__).parent / "weights"
_cache: dict = {}  # (path, beta, variant) -> the loaded network, shared by every soma that asks for it
_copies: "weakref.WeakKeyDictionary[SDN, dict]" = weakref.WeakKeyDictionary()  # net -> {(device, dtype): copy}


class Frozen(NamedTuple):
    """A frozen SDN held by a soma outside its module tree: not a submodule, so it is neither in the soma's
    ``state_dict`` nor moved by ``.to()`` (:func:`predict` keeps a copy per device and dtype).

    Examples::

        >>> soma = snn_ssm.LIFSoma(4, reset_mode="sdn")
        >>> isinstance(soma._sdn, Frozen) and "sdn" not in dict(soma.named_modules())
        True
    """

    net: SDN


def weights_path(beta: float, variant: str = "paper", folder: str | os.PathLike | None = None) -> Path:
    """The file name of the weights for ``beta`` and ``variant`` in ``folder`` (default: the shipped folder).

    Examples::

        >>> weights_path(0.5, "paper", "my_sdns").name
        'sdn_paper_beta0.5.pt'
    """
    return Path(folder or _WEIGHTS) / f"sdn_{variant}_beta{float(beta):g}.pt"


def shipped() -> list[dict]:
    """Metadata of every weights file shipped with the package (β, variant, receptive field, measured agreement).

    Examples::

        >>> sorted({m["beta"] for m in shipped()})
        [0.125, 0.25, 0.5, 0.75, 0.9]
    """
    return [torch.load(p, weights_only=True)["meta"] for p in sorted(_WEIGHTS.glob("sdn_*.pt"))]


def _check_beta(beta) -> float:
    if isinstance(beta, torch.Tensor):
        if beta.numel() != 1 and not bool((beta == beta.reshape(-1)[0]).all()):
            raise ValueError("the SDN needs one β for all neurons (weights are trained per β); got per-channel "
                             "values that differ: use reset_mode='exact'")
        beta = float(beta.reshape(-1)[0])
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta <= 1:
        raise ValueError(f"beta must be a number in [0, 1], got {beta!r}")
    return float(beta)


def load_sdn(beta, variant: str = "paper", path: str | os.PathLike | None = None) -> SDN:
    """The reduced, frozen SDN for leak ``beta``: from ``path``, else ``$SNN_SSM_SDN_DIR``, else the shipped weights.

    Raises:
        ValueError: unknown variant, β not a number in [0, 1] (or per-channel values that differ).
        FileNotFoundError: no weights for this β, naming the command that trains them.

    Examples::

        >>> net = load_sdn(0.125, "scan")
        >>> net.meta["receptive_field"], net.meta["agreement"]["spike_agreement"] > 0.999
        (8, True)
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {variant!r}")
    beta = _check_beta(beta)
    if path is None:
        candidates = [weights_path(beta, variant, os.environ[ENV_VAR])] if os.environ.get(ENV_VAR) else []
        candidates.append(weights_path(beta, variant))
        path = next((p for p in candidates if p.exists()), None)
        if path is None:
            have = ", ".join(f"{b:g}" for b in SHIPPED_BETAS)
            raise FileNotFoundError(
                f"no SDN weights for beta={beta:g} (variant {variant!r}); shipped: beta in {{{have}}}. Train them "
                f"with `python -m snn_ssm sdn-train --beta {beta:g} --variant {variant} --out DIR` and set "
                f"{ENV_VAR}=DIR (or pass path=)")
    key = (str(path), beta, variant)
    if key not in _cache:
        try:
            blob = torch.load(path, weights_only=True)
        except Exception as e:  # a truncated or foreign file
            raise ValueError(f"{path} is not an SDN weights file ({type(e).__name__}: {e})") from None
        if not isinstance(blob, dict) or not {"meta", "state_dict"} <= blob.keys():
            raise ValueError(f"{path} is not an SDN weights file (no meta/state_dict)")
        meta = blob["meta"]
        if abs(meta["beta"] - beta) > 1e-6 or meta["variant"] != variant:
            raise ValueError(f"{path} holds an SDN for beta={meta['beta']:g} ({meta['variant']!r}), "
                             f"not beta={beta:g} ({variant!r})")
        net = SDN(**meta["config"]).reduce()
        net.load_state_dict(blob["state_dict"])
        net.meta = meta
        _cache[key] = net
    return _cache[key]


def predict(net: SDN, x: torch.Tensor) -> torch.Tensor:
    """The carried membrane ``m̂`` (:meth:`SDN.carried`) for a time-first tensor ``x`` ``[T, *]`` (every trailing
    position is one neuron), without gradient.

    Examples::

        >>> predict(load_sdn(0.125), torch.randn(200, 4, 8)).shape    # m-hat for every step and neuron
        torch.Size([200, 4, 8])
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 1:
        raise TypeError(f"x must be a floating-point tensor [T, *], got {getattr(x, 'dtype', type(x).__name__)} of "
                        f"shape {tuple(getattr(x, 'shape', ()))}")
    T = x.shape[0]
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    copies = _copies.setdefault(net, {})  # one copy per device and dtype; the loaded net stays put
    key = (x.device, dtype)
    if key not in copies:
        copies[key] = copy.deepcopy(net).to(device=x.device, dtype=dtype)
    with torch.no_grad():
        return copies[key].carried(x.detach().reshape(T, -1).to(dtype)).reshape(x.shape).to(x.dtype)


def sdn_lif(x: torch.Tensor, net: SDN, fire):
    """SDN-mode soma on the scaled input ``x`` ``[T, *]`` (threshold 1, from rest) → ``(spikes, v_T)``.

    ``fire`` is the surrogate spike function (``x -> spikes``); the gradient reaches ``x_t`` through it only.
    ``v_T`` is the membrane the prediction implies after the last step, ``(m̂_T + x_T)·(1 − s_T)``.

    Examples::

        >>> from snn_ssm.functional.surrogate import resolve
        >>> s, v = sdn_lif(torch.randn(200, 4), load_sdn(0.125), resolve("triangle"))
        >>> s.shape, v.shape
        (torch.Size([200, 4]), torch.Size([4]))
    """
    _checks.check_finite(x, "x")
    m_hat = predict(net, x)
    u = m_hat + x
    s = fire(u - 1.0)
    return s, u[-1] - s[-1] * u[-1]

