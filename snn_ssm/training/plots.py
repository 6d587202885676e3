"""PNG plots written next to a run: training/validation curves, spike rate per layer, a spike raster."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..layers.emitter import SpikeEmitter

__all__ = ["write_plots"]


def write_plots(out_dir, model, task, device) -> list[Path]:
    """``curves.png``, ``spike_rates.png`` and ``raster.png`` in ``out_dir``; returns the paths written (none, with
    a message, when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plots skipped: pip install matplotlib (or snn_ssm[plots])")
        return []
    out = Path(out_dir)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if "loss" in r]
    val = [r for r in rows if "val_accuracy" in r]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].plot([r["step"] for r in train], [r["loss"] for r in train], label="training loss")
    ax[0].plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="validation loss")
    ax[0].set_xlabel("step"), ax[0].set_ylabel("cross-entropy"), ax[0].legend()
    ax[1].plot([r["step"] for r in val], [100 * r["val_accuracy"] for r in val], "o-", color="C2")
    ax[1].set_xlabel("step"), ax[1].set_ylabel("validation accuracy (%)")
    fig.tight_layout()
    paths = [out / "curves.png"]
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    # one test example through the model: spikes of every spiking layer
    x, *_ = task.collate([task.datasets["test"][0]])
    spikes = {}
    hooks = [m.register_forward_hook(lambda mod, a, o, n=name: spikes.__setitem__(n, o.detach()))
             for name, m in model.named_modules() if isinstance(m, SpikeEmitter)]
    model.eval()
    with torch.no_grad():
        model(x.to(device))
    for h in hooks:
        h.remove()
    if spikes:
        names = list(spikes)
        rates = [float((spikes[n] != 0).float().mean()) for n in names]
        fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(names) + 2), 3.5))
        ax.bar(range(len(names)), rates)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("spike rate (one test example)")
        fig.tight_layout()
        paths.append(out / "spike_rates.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
        first = spikes[names[0]]  # (T, 1, H, ...)
        raster = (first.reshape(first.shape[0], -1) != 0).float().cpu()[:, :128]
        fig, ax = plt.subplots(figsize=(8, 3.5))
        t, n = raster.nonzero(as_tuple=True)
        ax.scatter(t, n, s=1, marker="|", color="k")
        ax.set_xlabel("time step"), ax.set_ylabel("neuron"), ax.set_title(f"spikes of {names[0]}, one test example")
        fig.tight_layout()
        paths.append(out / "raster.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths
