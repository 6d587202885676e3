"""The P-SpikeSSM backbone (Bal & Sengupta, ICLR 2025) and its per-task configurations."""
from __future__ import annotations

import copy

import torch

from ..blocks.pssm import PSpikeSSMBlock
from ..layers.sampler import SpikeSampler
from ..registry import register
from .backbone import SequenceClassifier

__all__ = ["PSpikeSSM", "PSSM_CONFIGS"]

#: The released code's per-task settings (its ``configs/experiment/lra/*.yaml``): ``model`` holds this backbone's
#: arguments, ``train`` the optimisation (AdamW, betas 0.9/0.999; ``warmup``/``steps`` of the cosine schedule).
#: Every task uses two-sided S4 kernels; all but psMNIST use the block-bidirectional second path. The token tasks
#: fit their kernels at the dataset's maximum length (``l_max``) and truncate them for shorter (padded) batches.
PSSM_CONFIGS = {
    "listops": {"model": dict(n_layers=4, d_model=128, d_state=16, norm="batch", prenorm=False, dropout=0.0,
                              encoder="embedding", block_bidirectional=True, l_max=2048),
                "train": dict(batch=32, lr=8e-4, weight_decay=0.01, schedule="cosine", warmup=12_000,
                              steps=120_000, epochs=200)},
    "text": {"model": dict(n_layers=4, d_model=128, d_state=16, norm="batch", prenorm=True, dropout=0.05,
                           encoder="embedding", block_bidirectional=True, l_max=4096),
             "train": dict(batch=32, lr=5e-3, weight_decay=0.05, schedule="cosine", warmup=5_000, steps=50_000,
                           epochs=200)},
    "retrieval": {"model": dict(n_layers=4, d_model=200, d_state=24, norm="batch", prenorm=True, dropout=0.0,
                                encoder="embedding", block_bidirectional=True, l_max=4000),
                  "train": dict(batch=36, lr=3e-3, weight_decay=0.05, schedule="cosine", warmup=5_000,
                                steps=50_000, epochs=20)},
    "image": {"model": dict(n_layers=6, d_model=512, d_state=64, norm="layer", prenorm=False, dropout=0.1,
                            block_bidirectional=True),
              "train": dict(batch=50, lr=5e-3, weight_decay=0.01, schedule="cosine", warmup=18_000, steps=180_000,
                            epochs=200)},
    "pathfinder": {"model": dict(n_layers=6, d_model=256, d_state=64, norm="batch", prenorm=True, dropout=0.1,
                                 n_ssm=None, block_bidirectional=True),
                   "train": dict(batch=100, lr=2e-4, weight_decay=0.0, schedule="cosine", warmup=50_000,
                                 steps=500_000, epochs=500)},
    "psmnist": {"model": dict(n_layers=2, d_model=400, d_state=64, norm="batch", prenorm=True, dropout=0.1,
                              residual=False, block_bidirectional=False),
                "train": dict(batch=64, lr=5e-4, weight_decay=0.01, schedule="plateau", factor=0.2, patience=20,
                              epochs=200)},
}


@register("pssm", kind="model")
class PSpikeSSM(SequenceClassifier):
    """P-SpikeSSM: encoder → ``n_layers`` × :class:`~snn_ssm.blocks.PSpikeSSMBlock` → final norm (with prenorm)
    → mean over time → Linear decoder.

    Args:
        d_input (int): input features per step (vocabulary size with ``encoder="embedding"``).
        d_output (int): classes.
        d_model (int): channels H. Default: ``128``.
        n_layers (int): blocks. Default: ``4``.
        norm (str, optional): ``"batch"``, ``"layer"`` or ``None``. Default: ``"batch"``.
        prenorm (bool): the norm sits in each block's first sampler, plus a final norm. Default: ``True``.
        encoder (str): ``"linear"`` or ``"embedding"``. Default: ``"linear"``.
        seed (int, optional): seeds every sampler (sampler ``i`` gets ``seed + i``). Default: ``None``.
        **block_kwargs: :class:`~snn_ssm.blocks.PSpikeSSMBlock` options (``d_state``, ``n_ssm``, ``dropout``,
            ``bidirectional``, ``block_bidirectional``, ``residual``, ``eval_mode``, ``mixer_activation``, ...).

    :meth:`from_config` builds the released configuration of a task (:data:`PSSM_CONFIGS`); :meth:`predict`
    averages the class probabilities of several stochastic forward passes.

    Examples::

        >>> model = PSpikeSSM(1, 10, d_model=32, n_layers=2, seed=0)
        >>> model(torch.rand(784, 8, 1)).shape
        torch.Size([8, 10])
    """

    def __init__(self, d_input: int, d_output: int, *, d_model: int = 128, n_layers: int = 4,
                 norm: str | None = "batch", prenorm: bool = True, encoder: str = "linear", seed: int | None = None,
                 device=None, dtype=None, **block_kwargs):
        fk = {"device": device, "dtype": dtype}

        def make_block():
            return PSpikeSSMBlock(d_model, norm=norm, prenorm=prenorm, **block_kwargs, **fk)

        super().__init__(make_block, d_input=d_input, d_output=d_output, d_model=d_model, n_layers=n_layers,
                         encoder=encoder, wrap=False, final_norm=norm if prenorm else None, **fk)
        self.manual_seed(seed)

    @classmethod
    def from_config(cls, task: str, d_input: int, d_output: int, **overrides) -> "PSpikeSSM":
        """The released configuration of ``task`` (a key of :data:`PSSM_CONFIGS`), with ``overrides``."""
        if task not in PSSM_CONFIGS:
            raise ValueError(f"task must be one of {tuple(PSSM_CONFIGS)}, got {task!r}")
        kwargs = copy.deepcopy(PSSM_CONFIGS[task]["model"])
        kwargs.update(overrides)
        return cls(d_input, d_output, **kwargs)

    def samplers(self) -> list[SpikeSampler]:
        return [m for m in self.modules() if isinstance(m, SpikeSampler)]

    def manual_seed(self, seed: int | None) -> "PSpikeSSM":
        """Seed every sampler (``seed + i`` for the ``i``-th), or ``None`` for torch's global generator."""
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        for i, sampler in enumerate(self.samplers()):
            sampler.manual_seed(None if seed is None else seed + i)
        return self

    @torch.no_grad()
    def predict(self, x: torch.Tensor, n_samples: int = 1, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Class probabilities ``[B, d_output]`` averaged over ``n_samples`` forward passes (each draws new spikes
        unless the samplers' ``eval_mode`` is deterministic)."""
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
        return sum(torch.softmax(self(x, lengths), dim=-1) for _ in range(n_samples)) / n_samples
