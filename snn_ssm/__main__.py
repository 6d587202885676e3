"""``python -m snn_ssm <command>`` (also the ``snn-ssm`` console script)."""
from __future__ import annotations

import sys

COMMANDS = {"demo": "train a small SpikingSSM on MNIST for a CPU time budget and print accuracy and spike rate",
            "train": "train a model on sMNIST/psMNIST/ListOps/kjv/WikiText-103 with a named config (checkpoints, "
                     "resume, report)",
            "eval": "evaluate a checkpoint: accuracy, spike rates, synaptic operations, energy",
            "info": "versions, devices, and which kernel backends are available and chosen",
            "generate": "continue a prompt with a trained language model (recurrent, O(1) per token)",
            "export": "write a trained model as one .safetensors file (weights + what rebuilds it)",
            "data": "prepare an offline text corpus (kjv) from the dump `make kjv` makes",
            "sdn-train": "train a surrogate dynamic network (SDN) for one leak beta and save its weights",
            "sdn-report": "measure how exactly the shipped SDNs reproduce the exact neuron"}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: python -m snn_ssm <command> [options]\n\ncommands:")
        for name, text in COMMANDS.items():
            print(f"  {name:10s} {text}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    from .memory import reuse_cpu_memory

    reuse_cpu_memory()  # large CPU tensors reused, not page-faulted in again at every step (snn_ssm/memory.py)
    if argv[0] == "demo":
        from .demo import main as run
    elif argv[0] == "train":
        from .training.cli import train_main as run
    elif argv[0] == "eval":
        from .training.cli import eval_main as run
    elif argv[0] == "info":
        from .training.cli import info_main as run
    elif argv[0] == "generate":
        from .training.cli import generate_main as run
    elif argv[0] == "export":
        from .training.cli import export_main as run
    elif argv[0] == "data":
        from .training.cli import data_main as run
    elif argv[0] == "sdn-train":
        from .training.sdn_train import main as run
    else:
        from .training.sdn_report import main as run
    run(argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
