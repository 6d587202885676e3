"""The demo: train a small SpikingSSM on MNIST read as a sequence, on the CPU, for a fixed time budget.

Default data: the 5,000 MNIST images shipped in the package (4,000 train / 1,000 held-out test), so it runs
anywhere. ``--data-dir`` (or ``SNN_SSM_DATA``) switches to full MNIST (60k train / 10k test). Default sequence:
row by row (T = 28 steps of 28 pixels); ``--pixel`` gives pixel-level sMNIST downsampled to 14×14 (T = 196, one
pixel per step), which needs far more training than a demo budget.
"""
from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

from . import SpikingSSM, param_groups
from .data import embedded_split, load_mnist, to_sequence
from .metrics import SpikeRateMonitor
from .training._args import positive


def evaluate(model, images, labels, pixel: bool, batch: int = 500):
    model.eval()
    correct = 0
    with torch.no_grad(), SpikeRateMonitor(model) as mon:
        for i in range(0, len(labels), batch):
            out = model(to_sequence(images[i:i + batch], pixel))
            correct += int((out.argmax(1) == labels[i:i + batch]).sum())
    model.train()
    return correct / len(labels), mon


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m snn_ssm demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0, help="training time budget (default: 60)")
    p.add_argument("--steps", type=int, default=None, help="train exactly this many steps instead of a time budget")
    p.add_argument("--data-dir", default=os.environ.get("SNN_SSM_DATA"),
                   help="folder with the MNIST IDX files (default: $SNN_SSM_DATA, else the embedded subset)")
    p.add_argument("--pixel", action="store_true", help="pixel-level sequence (14x14 downsampled, T=196)")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as e:
        p.exit(2, f"error: {e}\n")


def _run(args) -> dict:
    positive(args.seconds, "--seconds")
    if args.steps is not None:
        positive(args.steps, "--steps", integer=True)
    for flag, v in (("--d-model", args.d_model), ("--layers", args.layers), ("--batch", args.batch)):
        positive(v, flag, integer=True)
    positive(args.lr, "--lr")
    torch.manual_seed(args.seed)
    if args.data_dir:
        (x_train, y_train), (x_test, y_test) = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
        source = f"MNIST from {args.data_dir}"
    else:
        (x_train, y_train), (x_test, y_test) = embedded_split()
        source = "embedded MNIST subset"
    kind = "pixel-level 14x14 (T=196)" if args.pixel else "row by row (T=28)"
    budget = f"{args.steps} steps" if args.steps else f"{args.seconds:g} s CPU budget"
    print(f"snn_ssm demo: SpikingSSM on {source}, {kind}: {len(y_train)} train / {len(y_test)} test images, {budget}")

    # Rows are short sequences: a larger step range suits T=28; pixels keep the S4D default.
    dt = dict(dt_min=1e-2, dt_max=1.0) if not args.pixel else {}
    model = SpikingSSM(1 if args.pixel else 28, 10, d_model=args.d_model, n_layers=args.layers, d_state=32,
                       prenorm=True, **dt)
    opt = torch.optim.AdamW(param_groups(model, lr=args.lr, weight_decay=1e-2))
    gen = torch.Generator().manual_seed(args.seed)
    start, step, seen = time.time(), 0, 0
    while (step < args.steps) if args.steps else (time.time() - start < args.seconds):
        idx = torch.randint(0, len(y_train), (args.batch,), generator=gen)
        loss = F.cross_entropy(model(to_sequence(x_train[idx], args.pixel)), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        seen += args.batch
        if step % 50 == 0:
            print(f"  step {step:5d}  {time.time() - start:5.1f} s  loss {loss.item():.3f}", flush=True)
    train_time = time.time() - start
    acc, mon = evaluate(model, x_test, y_test, args.pixel)
    rates = mon.rates()
    print(f"trained {step} steps ({seen} examples) in {train_time:.1f} s")
    print(f"test accuracy: {100 * acc:.2f}% on {len(y_test)} held-out images")
    for name, r in rates.items():
        print(f"spike rate {name}: {r:.4f}")
    print(f"mean spike rate: {mon.mean_rate():.4f} (sparsity {100 * (1 - mon.mean_rate()):.1f}%)")
    return {"accuracy": acc, "spike_rate": mon.mean_rate(), "steps": step}
