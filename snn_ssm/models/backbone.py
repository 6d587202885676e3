"""Sequence classifiers: encoder → residual S4D blocks → mean pooling → decoder, on time-first input."""
from __future__ import annotations

import torch
from torch import nn

from .. import _checks
from .._transfer import to_device
from ..registry import register
from ..blocks import ResidualBlock, S4DLayer, SpikingS4D
from ..layers.norm import ChannelNorm

__all__ = ["SequenceClassifier", "SpikingSSM", "S4D"]


class SequenceClassifier(nn.Module):
    """Encoder → ``n_layers`` × ResidualBlock(layer) → mean over time → Linear decoder.

    Input is ``[T, B, d_input]`` floats (``encoder="linear"``) or ``[T, B]`` token ids (``encoder="embedding"``);
    output is ``[B, d_output]`` logits. ``lengths`` ``[B]`` restricts the mean to each sequence's valid steps
    (give them on the CPU: their check then costs the GPU no synchronisation).
    ``wrap=False`` takes the factory's modules as whole blocks (with their own residual and norms), and
    ``final_norm`` normalises the stream after the last block.

    Examples::

        >>> from snn_ssm.blocks import S4DLayer
        >>> model = SequenceClassifier(lambda: S4DLayer(16), d_input=3, d_output=5, d_model=16, n_layers=2)
        >>> model(torch.rand(40, 2, 3)).shape
        torch.Size([2, 5])
    """

    def __init__(self, layer_factory, *, d_input: int, d_output: int, d_model: int, n_layers: int,
                 encoder: str = "linear", norm: str | None = "layer", prenorm: bool = False,
                 dropout: float = 0.0, wrap: bool = True, final_norm: str | None = None, device=None, dtype=None):
        super().__init__()
        for name, v in (("d_input", d_input), ("d_output", d_output), ("d_model", d_model), ("n_layers", n_layers)):
            _checks.positive_int(v, name)
        fk = {"device": device, "dtype": dtype}
        if encoder == "linear":
            self.encoder = nn.Linear(d_input, d_model, **fk)
        elif encoder == "embedding":
            self.encoder = nn.Embedding(d_input, d_model, **fk)  # d_input = vocabulary size
        else:
            raise ValueError(f"encoder must be 'linear' or 'embedding', got {encoder!r}")
        self.encoder_kind = encoder
        self.blocks = nn.ModuleList(
            ResidualBlock(layer_factory(), d_model, norm=norm, prenorm=prenorm, dropout=dropout, **fk) if wrap
            else layer_factory() for _ in range(n_layers))
        self.final_norm = None if final_norm is None else ChannelNorm(d_model, final_norm, device=device, dtype=dtype)
        self.decoder = nn.Linear(d_model, d_output, **fk)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        if self.encoder_kind == "embedding":
            if not isinstance(x, torch.Tensor) or x.dtype not in (torch.int32, torch.int64):
                raise TypeError(f"x must be a [T, B] tensor of int64 token ids for encoder='embedding', "
                                f"got {getattr(x, 'dtype', type(x).__name__)}")
            if x.ndim != 2 or x.shape[0] == 0:
                raise ValueError(f"x must have layout [T, B] with T >= 1, got shape {tuple(x.shape)}")
            if x.device != self.encoder.weight.device:
                raise ValueError(f"x is on {x.device} but the model's parameters are on {self.encoder.weight.device}")
            if not _checks.trusted(x):
                self.check_values(x)  # one synchronisation on a GPU, as for float input
            return self.encoder(x)
        x = _checks.check_sequence(x, "x", channels=self.encoder.in_features, like=self.encoder.weight,
                                   layout="[T, B, d_input]")
        return self.encoder(x)

    def check_values(self, x: torch.Tensor) -> None:
        """The value checks of :meth:`forward` on ``x`` wherever it is: token ids inside the vocabulary
        (``encoder="embedding"``), or no NaN/Inf (``"linear"``); ``ValueError`` otherwise. The training loop runs
        them on the batch while it is still on the CPU, then calls the model inside :func:`snn_ssm._checks.checked`,
        which skips them: on a GPU each is a full reduction that makes the host wait."""
        if self.encoder_kind == "embedding":
            vocab = self.encoder.num_embeddings
            if x.numel() and not bool(((x >= 0) & (x < vocab)).all()):
                raise ValueError(f"x holds token ids outside the vocabulary [0, {vocab}): "
                                 f"min {int(x.min())}, max {int(x.max())}")
        elif not bool(torch.isfinite(x).all()):
            raise ValueError("x contains NaN or Inf; spiking neurons reject non-finite input")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The residual stream after the last block, ``[T, B, d_model]``."""
        z = self._encode(x)  # the one input check of the model; the blocks below trust what they are given
        with _checks.checked():
            for block in self.blocks:
                z = block(z)
        return self.final_norm(z) if self.final_norm is not None else z

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        z = self.features(x)  # (T B H)
        if lengths is None:
            pooled = z.mean(0)
        else:
            T, B = z.shape[:2]
            if not isinstance(lengths, torch.Tensor) or lengths.is_floating_point() or lengths.is_complex() \
                    or lengths.dtype == torch.bool:
                raise TypeError(f"lengths must be an integer tensor [B={B}], got "
                                f"{getattr(lengths, 'dtype', type(lengths).__name__)}")
            if lengths.shape != (B,) or bool(((lengths < 1) | (lengths > T)).any()):
                raise ValueError(f"lengths must be [B={B}] with values in [1, T={T}], got {lengths.tolist()}")
            mask = (torch.arange(T, device=z.device)[:, None] < to_device(lengths, z.device)[None]).to(z.dtype)
            pooled = (z * mask[..., None]).sum(0) / mask.sum(0)[:, None]
        return self.decoder(pooled)


@register("spikingssm", kind="model")
class SpikingSSM(SequenceClassifier):
    """SpikingSSM backbone (Shen et al., AAAI 2025) of :class:`~snn_ssm.blocks.SpikingS4D` layers.

    Args:
        d_input (int): input features per step (vocabulary size with ``encoder="embedding"``).
        d_output (int): classes.
        d_model (int): channels H. Default: ``256``.
        n_layers (int): blocks. Default: ``4``.
        dropout (float): time-tied dropout inside each layer (on the spikes) and after it. Default: ``0.0``.
        norm (str or None): ``"layer"``, ``"batch"`` or ``None``. Default: ``"layer"``.
        prenorm (bool): normalise before the layer (else after the residual sum). Default: ``False``.
        encoder (str): ``"linear"`` or ``"embedding"``. Default: ``"linear"``.
        **layer_options: :class:`~snn_ssm.blocks.SpikingS4D` options: the S4D's (``d_state`` = 64,
            ``bidirectional``, dt range, ...; :class:`~snn_ssm.layers.dendrite.S4DOptions`) and the soma's.

    Examples::

        >>> model = SpikingSSM(d_input=1, d_output=10, d_model=64, n_layers=2)
        >>> model(torch.rand(784, 8, 1)).shape    # [T, B, d_input] -> [B, classes]
        torch.Size([8, 10])
    """

    layer_cls = SpikingS4D

    def __init__(self, d_input: int, d_output: int, *, d_model: int = 256, n_layers: int = 4, dropout: float = 0.0,
                 norm: str | None = "layer", prenorm: bool = False, encoder: str = "linear", device=None, dtype=None,
                 **layer_options):
        fk = {"device": device, "dtype": dtype}

        def make_layer():
            return self.layer_cls(d_model, dropout=dropout, **fk, **layer_options)

        super().__init__(make_layer, d_input=d_input, d_output=d_output, d_model=d_model, n_layers=n_layers,
                         encoder=encoder, norm=norm, prenorm=prenorm, dropout=dropout, **fk)


@register("s4d", kind="model")
class S4D(SpikingSSM):
    """The non-spiking baseline: the same backbone with :class:`~snn_ssm.blocks.S4DLayer` (GELU) layers.

    Examples::

        >>> S4D(1, 10, d_model=32, n_layers=2)(torch.rand(100, 4, 1)).shape
        torch.Size([4, 10])
    """

    layer_cls = S4DLayer
