"""Sequence layers on ``[T, B, H]``: SpikingSSM's spiking S4D layer and its non-spiking S4D twin."""
from __future__ import annotations

import torch
from torch import nn

from .. import _checks
from ..layers.dendrite import S4DDendrite
from ..layers.soma import LIFSoma

__all__ = ["TimeTiedDropout", "SpikingS4D", "S4DLayer"]


class TimeTiedDropout(nn.Module):
    """Dropout with one mask per (batch, channel), shared over time (S4's ``DropoutNd``) for ``[T, B, H]``.

    Examples::

        >>> drop = TimeTiedDropout(0.5)
        >>> y = drop(torch.ones(10, 2, 4))
        >>> bool((y == y[0]).all())      # one mask per (batch, channel), the same at every step
        True
    """

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout must be in [0, 1), got {p!r}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        mask = torch.rand(x.shape[1:], device=x.device) >= self.p  # (B H)
        return x * mask / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _S4DLayerBase(nn.Module):
    """S4D convolution + D skip → activation → dropout → 1×1 Linear(H → 2H) + GLU.

    Subclasses define ``activation(x)``, the S4D convolution with its skip and the nonlinearity: the spiking soma
    or GELU.
    """

    def __init__(self, d_model: int, *, d_state: int = 64, bidirectional: bool = False, dropout: float = 0.0,
                 init: str = "lin", disc: str = "zoh", dt_min: float = 1e-3, dt_max: float = 1e-1,
                 trainable_B: bool = False, device=None, dtype=None):
        super().__init__()
        if isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 1:
            raise ValueError(f"d_model must be a positive int, got {d_model!r}")
        fk = {"device": device, "dtype": dtype}
        self.d_model = d_model
        self.dendrite = S4DDendrite(d_model, d_state=d_state, init=init, disc=disc, dt_min=dt_min, dt_max=dt_max,
                                    trainable_B=trainable_B, bidirectional=bidirectional, **fk)
        self.dropout = TimeTiedDropout(dropout)
        self.output_linear = nn.Linear(d_model, 2 * d_model, **fk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[T, B, H]`` → ``[T, B, H]``."""
        _checks.check_tensor(x, "x", min_ndim=3, layout="[T, B, H]", device_of=self.output_linear.weight)
        if x.ndim != 3 or x.shape[2] != self.d_model:
            raise ValueError(f"x must have layout [T, B, H={self.d_model}], got shape {tuple(x.shape)}")
        z = self.dropout(self.activation(x))
        return nn.functional.glu(self.output_linear(z), dim=-1)


class SpikingS4D(_S4DLayerBase):
    """The SpikingSSM layer: ``x → S4D(x) + D·x → /v_th → LIF → dropout → Linear(H, 2H) → GLU``.

    Only the input of the GLU projection is binary, so that matrix product needs accumulates only. The soma is
    a child module (``layer.soma``) whose output is the spike tensor, so forward hooks can count spikes.

    Args:
        d_model (int): channels H.
        d_state (int): S4D state size N. Default: ``64``.
        bidirectional (bool): two-sided S4D kernel (non-causal). Default: ``False``.
        dropout (float): time-tied dropout on the spikes, as the official code places it (spikes become
            {0, 1/(1-p)} in training). Default: ``0.0``.
        init, disc, dt_min, dt_max, trainable_B: S4D options (:class:`~snn_ssm.layers.dendrite.S4DDendrite`).
        shared_threshold (bool): one threshold for all channels. Default: ``False``.
        **soma_kwargs: soma options (``beta``, ``v_th``, ``learn_threshold``, ``reset``, ``grad_mode``,
            ``surrogate``, ...), see :class:`~snn_ssm.layers.soma.LIFSoma`.

    Examples::

        >>> layer = SpikingS4D(64)
        >>> layer(torch.randn(784, 8, 64)).shape
        torch.Size([784, 8, 64])
    """

    def __init__(self, d_model: int, *, d_state: int = 64, bidirectional: bool = False, dropout: float = 0.0,
                 init: str = "lin", disc: str = "zoh", dt_min: float = 1e-3, dt_max: float = 1e-1,
                 trainable_B: bool = False, shared_threshold: bool = False, device=None, dtype=None, **soma_kwargs):
        super().__init__(d_model, d_state=d_state, bidirectional=bidirectional, dropout=dropout, init=init,
                         disc=disc, dt_min=dt_min, dt_max=dt_max, trainable_B=trainable_B, device=device,
                         dtype=dtype)
        self.soma = LIFSoma(d_model, shared=shared_threshold, device=device, dtype=dtype, **soma_kwargs)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dendrite(x.unsqueeze(-1), skip=False).squeeze(-1)  # (T B H), K * x
        return self.soma(y, x, self.dendrite.D)  # + D·x, scaled by 1/v_th and fired in one kernel pass


class S4DLayer(_S4DLayerBase):
    """The non-spiking twin of :class:`SpikingS4D` (S4's minimal S4D layer): GELU instead of the neuron.

    Examples::

        >>> S4DLayer(32)(torch.randn(100, 4, 32)).shape
        torch.Size([100, 4, 32])
    """

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(self.dendrite(x.unsqueeze(-1)).squeeze(-1))
