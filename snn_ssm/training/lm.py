"""Language-model tasks for the training loop: text data, the next-token loss (with a state carried between
consecutive chunks for truncated BPTT), perplexity and bits per byte, and the spike-rate regulariser."""
from __future__ import annotations

import math

import torch

from .. import _checks
from .._transfer import to_device
from ..data.text import (BPETokenizer, ByteTokenizer, TokenChunks, WordVocab, data_dir_from_env, load_kjv,
                         load_wikitext103)
from ..layers.soma import LIFSoma

__all__ = ["LM_TASKS", "build_lm_task", "lm_loss", "evaluate_lm", "RateRegulariser", "detach_state"]

LM_TASKS = ("kjv", "wikitext103")


def build_lm_task(name: str, *, data_dir=None, cache_dir=None, tokenizer: str = "byte", bpe_vocab: int = 8192,
                  seq_len: int, batch: int, limit_train: int | None = None, limit_eval: int | None = None):
    """The :class:`~snn_ssm.training.loop.Task` of a text corpus: ``kjv`` (``data_dir`` made by ``make kjv``, else
    the embedded sample) with ``tokenizer="byte"``, ``"bpe"`` or a tokenizer object, or ``wikitext103`` (word level,
    ``data_dir`` required). Each split is one token stream cut into :class:`~snn_ssm.data.text.TokenChunks` of
    ``seq_len`` in ``batch`` rows; ``limit_train``/``limit_eval`` keep the first that many chunks.

    Examples::

        >>> task = build_lm_task("kjv", seq_len=64, batch=4, limit_train=8, limit_eval=4)
        >>> task.d_input, len(task.datasets["train"]), task.bytes["val"] > 0
        (256, 8, True)
    """
    from .loop import Task

    if name == "kjv":
        text = load_kjv(data_dir_from_env(data_dir))
        if not isinstance(tokenizer, str):
            tok = tokenizer  # a trained model's own (e.g. shipped weights')
        elif tokenizer == "byte":
            tok = ByteTokenizer()
        elif tokenizer == "bpe":
            tok = BPETokenizer.train(text["train"], bpe_vocab, cache_dir)
        else:
            raise ValueError(f"--tokenizer must be 'byte' or 'bpe' for kjv, got {tokenizer!r}")
        streams = {split: tok.encode(text[split]) for split in ("train", "valid", "test")}
        n_bytes = {split: len(text[split].encode("utf-8")) for split in streams}
    elif name == "wikitext103":
        lines = load_wikitext103(data_dir)
        tok = WordVocab.build(lines["train"])
        streams = {split: tok.encode_lines(lines[split]) for split in lines}
        n_bytes = {split: sum(len(line.encode("utf-8")) + 1 for line in lines[split]) for split in lines}
    else:
        raise ValueError(f"unknown text task {name!r}: choose one of {', '.join(LM_TASKS)}")
    datasets, bytes_ = {}, {}
    for split, ours, limit in (("train", "train", limit_train), ("valid", "val", limit_eval),
                               ("test", "test", limit_eval)):
        tokens = streams[split]
        if limit:
            keep = limit * seq_len + 1
            bytes_[ours] = n_bytes[split] * min(1.0, keep / tokens.numel())
            tokens = tokens[:keep]
        else:
            bytes_[ours] = n_bytes[split]
        rows = batch if limit is None else min(batch, max(1, limit))
        datasets[ours] = TokenChunks(tokens, seq_len, rows)
    task = Task(name, datasets, TokenChunks.collate, tok.vocab_size, tok.vocab_size)
    task.kind, task.tokenizer, task.bytes = "lm", tok, bytes_
    return task


def detach_state(state):
    """A model state (nested tuples/lists of tensors) cut from the autograd graph (truncated BPTT)."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)


def lm_loss(model, batch, device, state=None, carry: bool = False):
    """``(mean NLL per token, state after the batch or None)`` for one ``([L, B], [L, B])`` batch."""
    inner = model.module if hasattr(model, "module") else model
    inner.check_values(batch[0])  # on the CPU, where the batch was cut: then the model need not check on the GPU
    inner.check_values(batch[1], "targets")
    x, y = (to_device(t, device) for t in batch)
    with _checks.checked():
        if carry:
            nll, state = model(x, y, state=state, return_state=True)
            return nll.mean(), detach_state(state)
        return model(x, y).mean(), None


class RateRegulariser:
    """Spike rates of every LIF soma during a forward pass, and the penalty
    ``weight · Σ_layers relu(rate − target)²`` (one-sided: a language model's neurons tend to fire too often, and a
    layer below the target is left alone). Use as a context manager around training; :meth:`collect` starts a step.

    Examples::

        >>> lm = snn_ssm.models.SpikingSSMLM(256, size="tiny")
        >>> with RateRegulariser(lm, target=0.05, weight=1.0) as reg:
        ...     loss = lm(torch.randint(0, 256, (32, 2)), torch.randint(0, 256, (32, 2))).mean() + reg.penalty()
        >>> sorted(reg.rates())
        ['blocks.0.layer.soma', 'blocks.1.layer.soma']
    """

    def __init__(self, model, target: float = 0.0, weight: float = 0.0):
        self.model, self.target, self.weight = model, float(target), float(weight)
        self._rates: dict[str, torch.Tensor] = {}
        self._handles = []

    def __enter__(self):
        for name, m in self.model.named_modules():
            if isinstance(m, LIFSoma):
                self._handles.append(m.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, name):
        def hook(module, args, out):
            s = out[0] if isinstance(out, tuple) else out
            self._rates[name] = s.float().mean()
        return hook

    def collect(self) -> None:
        self._rates = {}

    def penalty(self) -> torch.Tensor | float:
        if self.weight == 0 or not self._rates:
            return 0.0
        return self.weight * sum(torch.relu(r - self.target) ** 2 for r in self._rates.values())

    def rates(self) -> dict[str, float]:
        return {k: float(v.detach()) for k, v in self._rates.items()}


@torch.no_grad()
def evaluate_lm(model, task, split: str, batch: int, device, *, monitor: bool = False, precision: str = "32",
                carry: bool = False) -> dict:
    """Mean NLL per token (``loss``), ``perplexity`` = e^loss, ``bits_per_byte`` (the split's NLL in bits over its
    UTF-8 bytes) and ``tokens`` on ``split``, in order (the state carried between chunks with ``carry``); with
    ``monitor``, spike rates per layer and operations/energy per token."""
    from .loop import _batches, epoch_batches, evaluating, precision_scope

    ds = task.datasets[split]
    batches = epoch_batches(len(ds), ds.streams, seed=0, epoch=0, shuffle=False, drop_last=False)
    total, n, state = 0.0, 0, None
    with evaluating(model, monitor) as monitored:
        for b in _batches(ds, batches, task.collate):
            if carry and b[0].shape[1] != ds.streams:
                state = None  # a short last batch is not the continuation of every row
            with precision_scope(precision, device):
                loss, state = lm_loss(model, b, device, state, carry)
            tokens = b[1].numel()
            total += float(loss) * tokens
            n += tokens
    mean = total / n
    covered = task.bytes[split] * n / max(1, ds.tokens)  # the bytes of the tokens scored
    return {"loss": mean, "perplexity": math.exp(min(mean, 700.0)), "bits_per_byte": total / math.log(2) / covered,
            "tokens": n, **monitored(n, "token")}
