"""``python -m snn_ssm sdn-report``: how exactly each shipped SDN reproduces the exact neuron.

For every weights file (β × variant) and every input family it reports the per-step spike agreement with the exact
hard-reset LIF (threshold 1, from rest), the membrane MAE of ``m̂`` and both spike rates. Input families:

- i.i.d. Gaussian at three scales (the published SDN's training distribution is N(0, 1));
- smooth AR(1) inputs (ρ = 0.99), slowly varying like SSM outputs;
- the known failure: constant inputs in ``[1/(1+β), 1)``, where the exact neuron fires every other step;
- near-threshold piecewise-constant inputs entering the firing band at random times;
- the soma inputs ``(K*x + D·x)/v_th`` of a SpikingSSM trained briefly on pixel-level MNIST (14×14, T = 196; the
  embedded subset), captured with a hook.

Writes ``sdn_report.json`` and ``sdn_report.md`` to ``--out`` and prints the table.
"""
from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

from ..sdn import load_sdn, shipped
from .sdn_inputs import constant, exact_targets, gaussian, near_threshold, smooth
from ._args import writable_folder
from .sdn_train import agreement

__all__ = ["input_families", "ssm_inputs", "report", "main"]


def input_families(beta: float, seed: int = 7, T: int = 1024, N: int = 128) -> dict:
    """Name → soma inputs ``[T, N]`` for one β (seeded)."""
    g = torch.Generator().manual_seed(seed)
    band = torch.linspace(1 / (1 + beta), 1, N + 1)[:-1]
    return {
        "N(0, 0.5²)": gaussian(T, N, g, std=0.5),
        "N(0, 1)": gaussian(T, N, g),
        "N(0, 2²)": gaussian(T, N, g, std=2.0),
        "AR(1) ρ=0.99, mean 0.5": smooth(T, N, g, rho=0.99, std=0.5) + 0.5,
        "constant in [1/(1+β), 1)": constant(T, band),
        "near-threshold steps": near_threshold(T, N, g, beta),
    }


def ssm_inputs(steps: int = 200, seed: int = 0) -> torch.Tensor:
    """Soma inputs ``[196, N]`` of the first layer of a SpikingSSM trained ``steps`` steps on pixel-level MNIST."""
    from .. import SpikingSSM, param_groups
    from ..data import embedded_split, to_sequence
    from ..layers.soma import LIFSoma

    torch.manual_seed(seed)
    (images, labels), (test_images, _) = embedded_split()
    model = SpikingSSM(1, 10, d_model=32, n_layers=2, d_state=32, prenorm=True)
    opt = torch.optim.AdamW(param_groups(model, lr=1e-2, weight_decay=1e-2))
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(labels), (32,), generator=g)
        loss = F.cross_entropy(model(to_sequence(images[idx], pixel=True)), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    captured = []
    soma = next(m for m in model.modules() if isinstance(m, LIFSoma))  # the first layer's

    def hook(module, args, kwargs):
        if kwargs.get("dendrite") is not None:  # soma(x, dendrite=d): the soma fires on S4D(x) + D·x
            x, d = args[0], kwargs["dendrite"]
            y = d(x.unsqueeze(-1)).squeeze(-1)
        else:
            y, x, D = args
            y = y + D * x
        captured.append((y / module.v_th).detach())

    handle = soma.register_forward_pre_hook(hook, with_kwargs=True)
    with torch.no_grad():
        model.eval()(to_sequence(test_images[:64], pixel=True))
    handle.remove()
    return captured[0].reshape(captured[0].shape[0], -1)  # (T, B*H)


def report(ssm_steps: int = 200, betas=None) -> list[dict]:
    rows = []
    metas = shipped()
    if betas is not None:
        metas = [m for m in metas if m["beta"] in betas]
    real = ssm_inputs(ssm_steps) if ssm_steps > 0 else None
    for beta in sorted({m["beta"] for m in metas}):
        families = input_families(beta)
        if real is not None:
            families[f"SpikingSSM layer inputs ({ssm_steps} steps, T=196)"] = real
        for name, x in families.items():
            m, s, _ = exact_targets(x, beta)
            for meta in (mm for mm in metas if mm["beta"] == beta):
                net = load_sdn(beta, meta["variant"])
                rows.append({"beta": beta, "variant": meta["variant"], "input": name, **agreement(net, x, m, s)})
    return rows


def to_markdown(rows: list[dict]) -> str:
    lines = ["| β | input | variant | spike agreement | membrane MAE | rate exact | rate SDN |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['beta']:g} | {r['input']} | {r['variant']} | {100 * r['spike_agreement']:.3f}% | "
                     f"{r['membrane_mae']:.4f} | {r['rate_exact']:.4f} | {r['rate_sdn']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m snn_ssm sdn-report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=".", help="folder for sdn_report.json / .md (default: the current folder)")
    p.add_argument("--ssm-steps", type=int, default=200,
                   help="training steps of the SpikingSSM whose layer inputs are tested (0: skip; default 200)")
    p.add_argument("--beta", type=float, nargs="*", default=None, help="only these shipped β")
    args = p.parse_args(argv)
    try:
        out = writable_folder(args.out)
        shipped_betas = {m["beta"] for m in shipped()}
        unknown = sorted(set(args.beta or ()) - shipped_betas)
        if unknown:
            raise ValueError(f"--beta {' '.join(f'{b:g}' for b in unknown)}: no shipped SDN; shipped: "
                             f"{' '.join(f'{b:g}' for b in sorted(shipped_betas))}")
        if args.ssm_steps < 0:
            raise ValueError(f"--ssm-steps must be >= 0, got {args.ssm_steps}")
    except ValueError as e:
        p.exit(2, f"error: {e}\n")
    rows = report(args.ssm_steps, args.beta)
    (out / "sdn_report.json").write_text(json.dumps(rows, indent=1))
    table = to_markdown(rows)
    (out / "sdn_report.md").write_text(table)
    print(table)
    return rows
