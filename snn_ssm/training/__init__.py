"""Training: named configs, the loop behind ``python -m snn_ssm train``/``eval``, plots."""
from .configs import CONFIGS, MODELS, TASKS, get_config
from .loop import Task, build_task, cosine_with_warmup, epoch_batches, evaluate, load_checkpoint, train

__all__ = ["CONFIGS", "MODELS", "TASKS", "get_config", "Task", "build_task", "cosine_with_warmup", "epoch_batches",
           "evaluate", "load_checkpoint", "train"]
