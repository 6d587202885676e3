"""Causal language models: SpikingSSM's WikiText-103 model (``spikingssm_lm``) and its non-spiking twin (``s4d_lm``).

Token embedding → ``n_layers`` prenorm residual blocks of causal :class:`~snn_ssm.blocks.SpikingS4D` (or
:class:`~snn_ssm.blocks.S4DLayer`) layers → final norm → output tied to the embedding: a plain softmax, or for large
vocabularies an adaptive input and adaptive softmax (Baevski & Auli; Grave et al.) sharing their weights.

Three ways to run the same network, which agree to float rounding:

* ``model(x)``: the parallel form on ``[T, B]`` tokens (the FFT convolution and the fused soma), from rest;
* ``model(x, state=s, return_state=True)``: the same from a carried state, returning the state after the last token
  (truncated BPTT over consecutive chunks; a prompt before generation);
* ``model.step(token, state)``: one token by the recurrences (the S4D recurrence and one LIF step): O(1) per token,
  what :meth:`CausalLM.generate` runs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from .._weights import inference_copy
from ..blocks import ResidualBlock, S4DLayer, SpikingS4D
from ..layers.norm import ChannelNorm
from ..registry import register

__all__ = ["CausalLM", "SpikingSSMLM", "S4DLM", "LM_SIZES", "AdaptiveInput"]

#: Named sizes. ``wt103`` is SpikingSSM's WikiText-103 model (16 x 1024, N = 64, adaptive input/softmax with
#: div_val 4 and cutoffs 19997/39997/199997, tied); ``small`` is ~10M parameters with a plain tied softmax at a BPE
#: vocabulary of 8k; ``tiny`` is for tests and CPU demos.
LM_SIZES = {
    "wt103": dict(d_model=1024, n_layers=16, d_state=64, dropout=0.1, adaptive=dict(cutoffs=[19997, 39997, 199997],
                                                                                      div_value=4.0)),
    "small": dict(d_model=512, n_layers=10, d_state=64, dropout=0.1),
    "tiny": dict(d_model=64, n_layers=2, d_state=16, dropout=0.0),
}


class AdaptiveInput(nn.Module):
    """Adaptive input embeddings tied to an ``nn.AdaptiveLogSoftmaxWithLoss``: the frequent words (the head's
    shortlist) use the head's rows at full width; each rarer cluster embeds at the tail's reduced width with the
    tail's output weights and projects back with its input projection (transposed), so input and output share
    every weight.

    Examples::

        >>> asm = nn.AdaptiveLogSoftmaxWithLoss(16, 100, cutoffs=[20, 60], div_value=2.0)
        >>> AdaptiveInput(asm)(torch.tensor([[1, 30, 99]])).shape
        torch.Size([1, 3, 16])
    """

    def __init__(self, softmax: nn.AdaptiveLogSoftmaxWithLoss):
        super().__init__()
        self.softmax = softmax

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        asm = self.softmax
        shortlist = asm.shortlist_size
        out = F.embedding(tokens.clamp(max=shortlist - 1), asm.head.weight[:shortlist])
        out = out * (tokens < shortlist).unsqueeze(-1).to(out.dtype)
        for i, (lo, hi) in enumerate(zip(asm.cutoffs[:-1], asm.cutoffs[1:])):
            proj, emb = asm.tail[i][0].weight, asm.tail[i][1].weight  # [h_i, d], [hi - lo, h_i]
            inside = (tokens >= lo) & (tokens < hi)
            e = F.embedding((tokens - lo).clamp(0, hi - lo - 1), emb) @ proj  # [.., d]
            out = out + e * inside.unsqueeze(-1).to(e.dtype)
        return out


class CausalLM(nn.Module):
    """Embedding → prenorm residual blocks of causal ``layer_cls`` layers → norm → tied output.

    Args:
        vocab_size (int): tokens V.
        d_model (int): width H. Default: ``384``.
        n_layers (int): blocks. Default: ``8``.
        dropout (float): time-tied dropout inside each layer and on each residual branch. Default: ``0.1``.
        norm (str): ``"layer"`` (LayerNorm; a language model normalises each token on its own). Default: ``"layer"``.
        adaptive (dict, optional): ``{"cutoffs": [...], "div_value": float}`` for an adaptive input and softmax
            (tied); ``None`` for a plain tied softmax. Default: ``None``.
        size (str, optional): a name in :data:`LM_SIZES`, whose values the other arguments then override.
        **layer_options: options of the layers (the S4D's ``d_state``, ``dt_min``, ...; the soma's ``beta``,
            ``surrogate``, ...). ``bidirectional`` is refused: a language model must be causal.

    ``forward(x [T, B] int64, targets=None, *, state=None, return_state=False)`` gives logits ``[T, B, V]`` (or, with
    an adaptive softmax, log-probabilities), or with ``targets`` ``[T, B]`` the negative log-likelihood per token
    ``[T, B]`` (float32); with ``return_state`` also the state after the last token.

    Examples::

        >>> lm = CausalLM(100, d_model=16, n_layers=1, d_state=8).eval()
        >>> x = torch.randint(0, 100, (20, 2))
        >>> logits, state = lm(x[:10], return_state=True)           # a prompt, keeping the state
        >>> more, state = lm(x[10:], state=state, return_state=True)  # ... continued: as lm(x)[10:]
        >>> torch.allclose(more, lm(x)[10:], atol=1e-4)
        True
    """

    layer_cls = SpikingS4D

    def __init__(self, vocab_size: int, *, d_model: int = 384, n_layers: int = 8, dropout: float = 0.1,
                 norm: str = "layer", adaptive: dict | None = None, device=None, dtype=None, **layer_options):
        super().__init__()
        self.vocab_size = _checks.positive_int(vocab_size, "vocab_size")
        _checks.positive_int(d_model, "d_model")
        _checks.positive_int(n_layers, "n_layers")
        if layer_options.get("bidirectional"):
            raise ValueError("a language model is causal: bidirectional=True would let each token see the future")
        layer_options["bidirectional"] = False
        _checks.one_of(norm, "norm", ("layer",))
        fk = {"device": device, "dtype": dtype}
        self.blocks = nn.ModuleList(
            ResidualBlock(self.layer_cls(d_model, dropout=dropout, **fk, **layer_options), d_model, norm=norm,
                          prenorm=True, dropout=dropout, **fk) for _ in range(n_layers))
        self.final_norm = ChannelNorm(d_model, norm, **fk)
        if adaptive is not None:
            cutoffs = list(adaptive["cutoffs"])
            if not cutoffs or cutoffs != sorted(cutoffs) or cutoffs[-1] >= vocab_size or cutoffs[0] < 1:
                raise ValueError(f"adaptive cutoffs must increase within [1, vocab_size={vocab_size}), got {cutoffs}")
            self.softmax = nn.AdaptiveLogSoftmaxWithLoss(d_model, vocab_size, cutoffs,
                                                         div_value=float(adaptive.get("div_value", 4.0)), **fk)
            self.embedding = AdaptiveInput(self.softmax)
        else:
            self.softmax = None
            self.embedding = nn.Embedding(vocab_size, d_model, **fk)
            nn.init.normal_(self.embedding.weight, std=d_model ** -0.5)
        self.d_model = d_model

    # -- the three forms -------------------------------------------------------------------------------------
    def _check_tokens(self, x: torch.Tensor, name: str = "x") -> None:
        if not isinstance(x, torch.Tensor) or x.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"{name} must be an int64 tensor of token ids, got {getattr(x, 'dtype', type(x).__name__)}")
        ref = self.final_norm.norm.weight
        if x.device != ref.device:
            raise ValueError(f"{name} is on {x.device} but the model is on {ref.device}")
        if not _checks.trusted(x):
            self.check_values(x, name)  # one synchronisation on a GPU, where tokens enter

    def check_values(self, x: torch.Tensor, name: str = "x") -> None:
        """The value check of :meth:`forward` on token ids ``x`` wherever they are (inside the vocabulary, else
        ``ValueError``). The training loop runs it on the batch while it is still on the CPU, then calls the model
        inside :func:`snn_ssm._checks.checked`, which skips it: on a GPU it is a full reduction that makes the host
        wait."""
        if x.numel() and not bool(((x >= 0) & (x < self.vocab_size)).all()):
            raise ValueError(f"{name} holds token ids outside the vocabulary [0, {self.vocab_size})")

    def _output(self, h: torch.Tensor, targets: torch.Tensor | None, matmul_dtype: torch.dtype | None = None):
        if self.softmax is not None:
            flat = h.reshape(-1, self.d_model).float()
            if targets is None:
                return self.softmax.log_prob(flat).reshape(*h.shape[:-1], self.vocab_size)
            out = self.softmax(flat, targets.reshape(-1))
            return -out.output.reshape(targets.shape)
        weight = self.embedding.weight
        if matmul_dtype not in (None, weight.dtype) and not torch.is_grad_enabled():
            logits = F.linear(h.to(matmul_dtype), inference_copy(self, weight, matmul_dtype)).to(h.dtype)
        else:
            logits = F.linear(h, weight)
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().reshape(-1, self.vocab_size), targets.reshape(-1),
                               reduction="none").reshape(targets.shape)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None, *, state=None,
                return_state: bool = False):
        self._check_tokens(x)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"x must have layout [T, B] with T >= 1, got shape {tuple(x.shape)}")
        if targets is not None:
            self._check_tokens(targets, "targets")
            if targets.shape != x.shape:
                raise ValueError(f"targets must have x's shape {tuple(x.shape)}, got {tuple(targets.shape)}")
        h = self.embedding(x)
        with _checks.checked():
            if state is None and not return_state:
                for block in self.blocks:
                    h = block(h)
                new_state = None
            else:
                state = state if state is not None else [None] * len(self.blocks)
                if len(state) != len(self.blocks):
                    raise ValueError(f"state must hold one entry per block ({len(self.blocks)}), got {len(state)}")
                new_state = []
                for block, st in zip(self.blocks, state):
                    y, st = block.layer.run(block.norm(h), st)
                    h = h + block.dropout(y)
                    new_state.append(st)
            out = self._output(self.final_norm(h), targets)
        return (out, new_state) if return_state else out

    def step(self, token: torch.Tensor, state=None, *, matmul_dtype: torch.dtype | None = None):
        """One token ``[B]`` → ``(logits [B, V] (log-probabilities with an adaptive softmax), state)``, by the
        recurrences (dropout off: call it in eval mode). ``matmul_dtype``: see :meth:`generate`."""
        self._check_tokens(token, "token")
        if token.ndim != 1:
            raise ValueError(f"token must have layout [B], got shape {tuple(token.shape)}")
        return self._step(token, state, _check_matmul_dtype(matmul_dtype))

    def _step(self, token: torch.Tensor, state, matmul_dtype: torch.dtype | None):
        h = self.embedding(token)
        state = state if state is not None else [None] * len(self.blocks)
        new_state = []
        with _checks.checked():
            for block, st in zip(self.blocks, state):
                norm = block.norm
                z = norm(h, dim=-1) if isinstance(norm, ChannelNorm) else norm(h)
                y, st = block.layer.step(z, st, matmul_dtype=matmul_dtype)
                h = h + y
                new_state.append(st)
            out = self._output(self.final_norm(h, dim=-1), None, matmul_dtype)
        return out, new_state

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, max_tokens: int, *, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None, matmul_dtype: torch.dtype | None = None) -> torch.Tensor:
        """Continue ``prompt`` (``[T0]`` or ``[T0, B]`` token ids) by ``max_tokens`` tokens: the prompt in the
        parallel form, then one recurrent step per token (O(1) each). ``temperature=0`` is greedy; ``top_k``
        samples among the k most likely. Returns the new tokens ``[max_tokens]`` (or ``[max_tokens, B]``).

        ``matmul_dtype=torch.bfloat16`` (or ``float16``) reads the weight matrices of the recurrent steps from
        copies in that dtype, made once: the plain softmax's output layer and the GELU twin's projections multiply
        in it, the spiking layers' projections sum the rows of the channels that fired in float32; the
        recurrences and the somas stay in float32. On a CPU, where a small model's step is bound by reading its
        matrices, that is about twice as fast per token; the logits then differ from the float32 ones by the
        dtype's rounding (about 3 significant digits for bfloat16), so sampled text can differ. Default ``None``:
        the weights' dtype, the same logits as the parallel form.

        Examples::

            >>> lm = SpikingSSMLM(256, size="tiny").eval()
            >>> lm.generate(torch.tensor([72, 101, 108]), 5, temperature=0).shape
            torch.Size([5])
        """
        _checks.positive_int(max_tokens, "max_tokens")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature < 0:
            raise ValueError(f"temperature must be a number >= 0 (0: greedy), got {temperature!r}")
        if top_k is not None:
            _checks.positive_int(top_k, "top_k")
        matmul_dtype = _check_matmul_dtype(matmul_dtype)
        single = prompt.ndim == 1
        x = prompt[:, None] if single else prompt
        was_training = self.training
        self.eval()
        out, state = self(x, state=None, return_state=True)
        scores, tokens = out[-1], []
        for i in range(max_tokens):
            nxt = _sample(scores.float(), temperature, top_k, generator)
            tokens.append(nxt)
            if i + 1 < max_tokens:
                scores, state = self._step(nxt, state, matmul_dtype)  # sampled ids are in the vocabulary
        self.train(was_training)
        result = torch.stack(tokens)
        return result[:, 0] if single else result


def _check_matmul_dtype(dtype):
    if dtype not in (None, torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"matmul_dtype must be None, torch.float32, torch.bfloat16 or torch.float16, got {dtype!r}")
    return dtype


def _sample(scores: torch.Tensor, temperature: float, top_k: int | None, generator) -> torch.Tensor:
    if temperature == 0:
        return scores.argmax(-1)
    scores = scores / temperature
    if top_k is not None and top_k < scores.shape[-1]:
        kth = scores.topk(top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _sized(size: str | None, kwargs: dict) -> dict:
    if size is None:
        return kwargs
    if size not in LM_SIZES:
        raise ValueError(f"size must be one of {tuple(LM_SIZES)}, got {size!r}")
    return {**LM_SIZES[size], **kwargs}


@register("spikingssm_lm", kind="model")
class SpikingSSMLM(CausalLM):
    """SpikingSSM's language model: causal :class:`~snn_ssm.blocks.SpikingS4D` blocks (see :class:`CausalLM`).

    Examples::

        >>> lm = SpikingSSMLM(256, size="tiny")
        >>> x = torch.randint(0, 256, (32, 2))
        >>> lm(x).shape, lm(x[:-1], x[1:]).shape      # logits; NLL per token
        (torch.Size([32, 2, 256]), torch.Size([31, 2]))
    """

    def __init__(self, vocab_size: int, *, size: str | None = None, **kwargs):
        super().__init__(vocab_size, **_sized(size, kwargs))

    @classmethod
    def from_config(cls, size: str, vocab_size: int, **overrides) -> "CausalLM":
        """The named size ``size`` (:data:`LM_SIZES`) for ``vocab_size`` tokens, with ``overrides``."""
        return cls(vocab_size, size=size, **overrides)


@register("s4d_lm", kind="model")
class S4DLM(SpikingSSMLM):
    """The non-spiking twin: the same language model with :class:`~snn_ssm.blocks.S4DLayer` (GELU) layers.

    Examples::

        >>> S4DLM(256, size="tiny")(torch.randint(0, 256, (16, 2))).shape
        torch.Size([16, 2, 256])
    """

    layer_cls = S4DLayer
