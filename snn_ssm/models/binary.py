"""Binary S4D and Binary S4D + GSU backbones (Stan & Rhodes, Sci. Rep. 2024) and named sizes."""
from __future__ import annotations

import copy

from ..blocks import BinaryS4D, S4DGSU
from ..registry import register
from .backbone import SequenceClassifier

__all__ = ["BinaryS4DNet", "BinaryS4DGSUNet", "BINARY_CONFIGS"]

#: Model sizes per task. The paper's per-task settings were not available (its code could not be inspected); these
#: are the S4 repository's S4D sizes for the same tasks, which the authors say their code builds on.
BINARY_CONFIGS = {
    "smnist": dict(n_layers=4, d_model=128, d_state=64, norm="layer", prenorm=True, dropout=0.1),
    "psmnist": dict(n_layers=4, d_model=128, d_state=64, norm="layer", prenorm=True, dropout=0.1),
    "listops": dict(n_layers=8, d_model=128, d_state=64, norm="batch", prenorm=False, dropout=0.0,
                    encoder="embedding"),
}


class _Configurable(SequenceClassifier):
    layer_cls: type

    def __init__(self, d_input: int, d_output: int, *, d_model: int = 128, n_layers: int = 4,
                 norm: str | None = "layer", prenorm: bool = True, dropout: float = 0.0, encoder: str = "linear",
                 device=None, dtype=None, **layer_kwargs):
        fk = {"device": device, "dtype": dtype}

        def make_layer():
            return self.layer_cls(d_model, dropout=dropout, **layer_kwargs, **fk)

        super().__init__(make_layer, d_input=d_input, d_output=d_output, d_model=d_model, n_layers=n_layers,
                         encoder=encoder, norm=norm, prenorm=prenorm, dropout=dropout, **fk)

    @classmethod
    def from_config(cls, task: str, d_input: int, d_output: int, **overrides):
        """The named size of ``task`` (a key of :data:`BINARY_CONFIGS`), with ``overrides``."""
        if task not in BINARY_CONFIGS:
            raise ValueError(f"task must be one of {tuple(BINARY_CONFIGS)}, got {task!r}")
        return cls(d_input, d_output, **{**copy.deepcopy(BINARY_CONFIGS[task]), **overrides})


@register("binary_s4d", kind="model")
class BinaryS4DNet(_Configurable):
    """Encoder → residual :class:`~snn_ssm.blocks.BinaryS4D` layers → mean over time → decoder.

    Args: as :class:`~snn_ssm.SpikingSSM` (``d_input``, ``d_output``, ``d_model`` = 128, ``n_layers`` = 4, ``norm``,
    ``prenorm`` = True, ``dropout``, ``encoder``), plus :class:`~snn_ssm.blocks.BinaryS4D` options (``d_state``,
    ``surrogate``, ``threshold``, ...).

    Examples::

        >>> model = BinaryS4DNet(1, 10, d_model=32, n_layers=2)
        >>> model(torch.rand(784, 8, 1)).shape
        torch.Size([8, 10])
    """

    layer_cls = BinaryS4D


@register("binary_s4d_gsu", kind="model")
class BinaryS4DGSUNet(_Configurable):
    """Encoder → residual :class:`~snn_ssm.blocks.S4DGSU` layers (S4D + Gated Spiking Unit) → mean → decoder.

    Args: as :class:`BinaryS4DNet`, with :class:`~snn_ssm.blocks.S4DGSU` options (``weight_threshold``,
    ``act_threshold``, ``gelu``, ...) instead of the Heaviside's.

    Examples::

        >>> BinaryS4DGSUNet(1, 10, d_model=32, n_layers=2)(torch.rand(784, 8, 1)).shape
        torch.Size([8, 10])
    """

    layer_cls = S4DGSU
