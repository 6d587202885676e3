r"""Synaptic operations and energy estimates, counted with forward hooks.

A layer whose input is spikes (every non-zero entry has the same magnitude: binary, ternary, or dropout-scaled
spikes) needs no multiplications: each input event adds one weight to each of its targets, so it costs
**accumulates** (ACs) = events × fan-out. Any other input costs **multiply-accumulates** (MACs). Counted per
forward pass, summed over the batch:

========================  =========================================================================================
layer                     operations
========================  =========================================================================================
``nn.Linear`` (in→out)    real input: rows · in · out MACs; spike input: nnz(x) · out ACs
``nn.Conv1d/2d``          real input: out.numel() · in/groups · kernel MACs; spike input: that × nnz(x)/x.numel()
                          ACs (exact away from the borders for stride 1)
S4D dendrite              recurrent form per step and channel, N real states (N/2 complex modes): 4N + 1 MACs
                          (Āh: 2N complex-as-real, B̄x: N, Re(Ch): N, D·x: 1); with spike input the B̄x and D·x
                          terms become N + 1 ACs per input event and the rest 3N MACs per step (``S4DDendrite``, also
                          inside ``SSMDendriteLIF``)
S4 DPLR (``S4DPLR``)      recurrent form with a dense N×N Ā: N² + 2N + 1 MACs per step and channel
GSU                       identity path: rows · nnz(Tern(W)) ACs (ternary weights); spike path as a Linear on
                          ternary spikes; the gate: rows · H MACs
========================  =========================================================================================

The SSM rows include the state size N, which the P-SpikeSSM reviewers pointed out was missing from its count.
Norms, activations, pooling and the surrogate spike functions are not counted (elementwise, a few % at most).

Energy: ``E = MACs · E_MAC + ACs · E_AC`` with 45 nm constants by default (Horowitz, ISSCC 2014: 32-bit float
E_MAC = 4.6 pJ, E_AC = 0.9 pJ). :meth:`EnergyMeter.report` gives two accountings:

- ``"paper"``: SpikingSSM's — only the feature-mixing layers on spikes (the ``nn.Linear`` layers whose input is
  spikes: the GLU projection after the neuron), priced as ACs, against the same layers as MACs in a non-spiking
  twin;
- ``"full"``: every counted layer above, encoder, SSMs and decoder included.
"""
from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from ..layers.dendrite import S4DDendrite
from ..layers.neurons import SSMDendriteLIF
from ..layers.s4 import S4DPLR
from ..layers.soma import LIFSoma

__all__ = ["EnergyMeter", "E_MAC_PJ", "E_AC_PJ", "is_spikes"]

E_MAC_PJ, E_AC_PJ = 4.6, 0.9


def is_spikes(x: torch.Tensor) -> bool:
    """Whether every non-zero entry of ``x`` has the same magnitude (binary, ternary or scaled spikes).

    Examples::

        >>> is_spikes(torch.tensor([0.0, 1.0, 1.0])), is_spikes(torch.tensor([0.3, 1.0]))
        (True, False)
    """
    nz = x[x != 0]
    return nz.numel() == 0 or bool((nz.abs() == nz.abs().reshape(-1)[0]).all())


class EnergyMeter:
    """Count MACs and ACs of ``model``'s layers while active (a context manager); see the module docstring.

    Args:
        model (nn.Module): any model (our layers, snnTorch/SpikingJelly networks with Linear/Conv layers).
        e_mac, e_ac (float): energy per MAC and per AC in pJ. Default: 4.6, 0.9.

    Examples::

        >>> model, x = snn_ssm.SpikingSSM(1, 10, d_model=16, n_layers=2), torch.rand(100, 4, 1)
        >>> with EnergyMeter(model) as meter:
        ...     _ = model(x)
        >>> report = meter.report()
        >>> report["full"]["MACs"] > 0 and report["paper"]["layers"] == ["blocks.0.layer.output_linear",
        ...                                                             "blocks.1.layer.output_linear"]
        True
    """

    def __init__(self, model: nn.Module, *, e_mac: float = E_MAC_PJ, e_ac: float = E_AC_PJ):
        self.model, self.e_mac, self.e_ac = model, e_mac, e_ac
        self.macs: dict[str, float] = defaultdict(float)
        self.acs: dict[str, float] = defaultdict(float)
        self.dense_macs: dict[str, float] = defaultdict(float)  # what each layer would cost on real inputs
        self.spike_input: dict[str, bool] = {}
        self._handles = []

    # -- counting ----------------------------------------------------------------------------------------------
    def _linear(self, name):
        def hook(module, args, output):
            x = args[0].detach()
            rows = x.numel() // module.in_features
            self.dense_macs[name] += rows * module.in_features * module.out_features
            if is_spikes(x):
                self.acs[name] += float((x != 0).sum()) * module.out_features
                self.spike_input[name] = True
            else:
                self.macs[name] += rows * module.in_features * module.out_features
                self.spike_input.setdefault(name, False)
        return hook

    def _conv(self, name):
        def hook(module, args, output):
            x = args[0].detach()
            k = module.weight[0].numel()  # in/groups * kernel
            dense = output.numel() * k
            if is_spikes(x):
                self.acs[name] += dense * float((x != 0).sum()) / x.numel()
                self.spike_input[name] = True
            else:
                self.macs[name] += dense
                self.spike_input.setdefault(name, False)
        return hook

    def _ssm(self, name, dplr: bool, ssm=None):
        def hook(module, args, output):
            x = args[0].detach()
            N = (ssm or module).d_state
            steps = x.numel()  # steps x channels x positions
            if dplr:
                self.macs[name] += steps * (N * N + 2 * N + 1)
            elif is_spikes(x):
                self.macs[name] += steps * 3 * N
                self.acs[name] += float((x != 0).sum()) * (N + 1)
                self.spike_input[name] = True
            else:
                self.macs[name] += steps * (4 * N + 1)
            self.spike_input.setdefault(name, False)
        return hook

    def _soma_dendrite(self, names):
        def hook(module, args, kwargs, output):
            d = kwargs.get("dendrite")
            if d is not None:
                self._ssm(names.get(id(d), "dendrite"), False, d)(d, args, output)
        return hook

    def _gsu(self, name):
        from ..functional.quant import ternary_weight

        def hook(module, args, output):
            y = args[0].detach()
            rows = y.numel() // y.shape[-1]
            w = ternary_weight(module.identity_path.weight.detach(), module.weight_threshold)
            prefix = f"{name}." if name else ""
            self.acs[prefix + "identity_path"] += rows * float((w != 0).sum())
            self.macs[prefix + "gate"] += rows * y.shape[-1]
        return hook

    def __enter__(self):
        from ..blocks.gsu import GatedSpikingUnit

        names = {id(m): name for name, m in self.model.named_modules()}
        for name, m in self.model.named_modules():
            if isinstance(m, GatedSpikingUnit):  # before its children: its identity path is counted here
                self._handles.append(m.register_forward_hook(self._gsu(name)))
                continue
            name = name or type(m).__name__
            if isinstance(m, nn.Linear) and not name.endswith("identity_path"):
                self._handles.append(m.register_forward_hook(self._linear(name)))
            elif isinstance(m, (nn.Conv1d, nn.Conv2d)):
                self._handles.append(m.register_forward_hook(self._conv(name)))
            elif isinstance(m, (S4DDendrite, S4DPLR)):
                self._handles.append(m.register_forward_hook(self._ssm(name, isinstance(m, S4DPLR))))
            elif isinstance(m, SSMDendriteLIF):  # runs its dendrite without calling it as a module
                self._handles.append(m.register_forward_hook(self._ssm(name + ".dendrite", False, m.dendrite)))
            elif isinstance(m, LIFSoma):  # soma(x, dendrite=d) runs d itself (fused or not): counted here
                self._handles.append(m.register_forward_hook(self._soma_dendrite(names), with_kwargs=True))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # -- reporting ---------------------------------------------------------------------------------------------
    def _feature_mix_layers(self) -> list[str]:
        """The Linear layers fed by spikes (SpikingSSM's GLU projections, P-SpikeSSM's SpikeMixers, ...)."""
        return [n for n in self.dense_macs if self.spike_input.get(n)]

    def report(self) -> dict:
        """``{"full": {...}, "paper": {...}, "layers": {name: {"MACs", "ACs"}}}`` with energies in µJ per forward
        pass (summed over the batch) and, for ``"paper"``, the energy of the same layers computed with MACs."""
        layers = {n: {"MACs": self.macs.get(n, 0.0), "ACs": self.acs.get(n, 0.0)}
                  for n in sorted(set(self.macs) | set(self.acs))}
        full_mac = sum(v["MACs"] for v in layers.values())
        full_ac = sum(v["ACs"] for v in layers.values())
        mix = self._feature_mix_layers()
        paper_ac = sum(self.acs[n] for n in mix)
        # the non-spiking twin runs the same layers on real inputs: one MAC per weight use
        dense_equiv = sum(self.dense_macs[n] for n in mix)
        pj_to_uj = 1e-6
        return {
            "full": {"MACs": full_mac, "ACs": full_ac,
                     "energy_uJ": (full_mac * self.e_mac + full_ac * self.e_ac) * pj_to_uj},
            "paper": {"layers": mix, "ACs": paper_ac, "energy_uJ": paper_ac * self.e_ac * pj_to_uj,
                      "ann_MACs": dense_equiv, "ann_energy_uJ": dense_equiv * self.e_mac * pj_to_uj},
            "layers": layers,
            "constants_pJ": {"E_MAC": self.e_mac, "E_AC": self.e_ac},
        }
