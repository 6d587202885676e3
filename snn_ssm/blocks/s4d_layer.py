"""Sequence layers on ``[T, B, H]`` built on an S4D: SpikingSSM's spiking layer, its non-spiking twin and Binary S4D.

Every layer here is ``x → activation(S4D(x)) → time-tied dropout → mix``: the activation is what differs (the LIF
soma, GELU, a Heaviside), the mix is a 1×1 ``Linear(H → 2H)`` + GLU unless a subclass gives another one (the GSU
layer, :mod:`snn_ssm.blocks.gsu`).
"""
from __future__ import annotations

import abc

import torch
from torch import nn

from .. import _checks
from .._weights import inference_copy
from ..ops.dispatch import available, requested_backend
from ..layers.dendrite import S4DDendrite, S4DOptions
from ..layers.soma import LIFSoma
from ..layers.spikes import HeavisideSpike
from .common import TimeTiedDropout

__all__ = ["S4DLayerBase", "SpikingS4D", "S4DLayer", "BinaryS4D"]


class S4DLayerBase(nn.Module, abc.ABC):
    """``x → activation(x) → dropout → mix`` on ``[T, B, H]``, with the S4D ``dendrite`` the activation reads.

    Subclasses define ``activation(x)`` (the S4D convolution with its skip and the nonlinearity) and ``mix(z)``;
    this class checks the input once and marks everything below as checked (:func:`snn_ssm._checks.checked`).

    Args:
        d_model (int): channels H.
        dropout (float): time-tied dropout after the activation. Default: ``0.0``.
        **s4d_options: :class:`~snn_ssm.layers.dendrite.S4DOptions` (``d_state``, ``bidirectional``, ``init``,
            ``disc``, ``dt_min``, ``dt_max``, ``trainable_B``).

    Examples::

        >>> S4DLayer(16, d_state=8).dendrite.d_state
        8
    """

    def __init__(self, d_model: int, *, dropout: float = 0.0, device=None, dtype=None, **s4d_options):
        super().__init__()
        self.d_model = _checks.positive_int(d_model, "d_model")
        self.dendrite = S4DDendrite(d_model, options=S4DOptions(**s4d_options), device=device, dtype=dtype)
        self.dropout = TimeTiedDropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[T, B, H]`` → ``[T, B, H]``."""
        x = _checks.check_sequence(x, "x", channels=self.d_model, like=self.dendrite.log_dt)
        with _checks.checked():
            return self.mix(self.dropout(self.activation(x)))

    def run(self, x: torch.Tensor, state=None):
        """``x`` ``[T, B, H]`` from ``state`` (``None``: rest) → ``(output [T, B, H], state after the last step)``:
        the stateful form (truncated BPTT over consecutive chunks, a prompt before generation). The caller has
        checked ``x``."""
        z, state = self.activation_run(x, state)
        return self.mix(self.dropout(z)), state

    def step(self, x: torch.Tensor, state=None, *, matmul_dtype: torch.dtype | None = None):
        """One step ``x`` ``[B, H]`` → ``(output [B, H], state)`` by the recurrence (O(1) per step; dropout off).

        ``matmul_dtype`` (``torch.bfloat16`` or ``torch.float16``; ``None``: the weights' own dtype) reads the mix's
        weights, without autograd, from a copy in that dtype made once (generation)."""
        z, state = self.activation_step(x, state)
        return self.mix_step(z, matmul_dtype), state

    def mix_step(self, z: torch.Tensor, matmul_dtype: torch.dtype | None = None) -> torch.Tensor:
        """:meth:`mix` of one step ``[B, H]``; a subclass with weight matrices honours ``matmul_dtype``."""
        return self.mix(z)

    @abc.abstractmethod
    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """The S4D convolution of ``x`` ``[T, B, H]`` and the nonlinearity."""

    def activation_run(self, x: torch.Tensor, state):
        """:meth:`activation` from a state: ``(z, state)``; layers with a stateful form override it."""
        raise TypeError(f"{type(self).__name__} has no stateful form")

    def activation_step(self, x: torch.Tensor, state):
        """:meth:`activation` for one step ``[B, H]``: ``(z, state)``."""
        raise TypeError(f"{type(self).__name__} has no step-by-step form")

    def _dendrite_run(self, x: torch.Tensor, h0, skip: bool):
        """The S4D of ``x`` ``[T, B, H]`` from ``h0`` and its state after the last step."""
        x4 = x.unsqueeze(-1)
        y = self.dendrite(x4, h0, skip=skip).squeeze(-1)
        return y, self.dendrite.final_state(x4, h0)

    @abc.abstractmethod
    def mix(self, z: torch.Tensor) -> torch.Tensor:
        """The channel mixer after the dropout."""


class _GLULayer(S4DLayerBase):
    """The S4 family's mix: a 1×1 ``Linear(H → 2H)`` and a GLU."""

    def __init__(self, d_model: int, *, device=None, dtype=None, **kwargs):
        super().__init__(d_model, device=device, dtype=dtype, **kwargs)
        self.output_linear = nn.Linear(d_model, 2 * d_model, device=device, dtype=dtype)

    def mix(self, z: torch.Tensor) -> torch.Tensor:
        return nn.functional.glu(self.output_linear(z), dim=-1)

    def mix_step(self, z: torch.Tensor, matmul_dtype: torch.dtype | None = None) -> torch.Tensor:
        linear = self.output_linear
        if torch.is_grad_enabled() or matmul_dtype in (None, linear.weight.dtype):
            return self.mix(z)
        w = inference_copy(self, linear.weight, matmul_dtype)
        out = nn.functional.linear(z.to(matmul_dtype), w).to(z.dtype)
        return nn.functional.glu(out if linear.bias is None else out + linear.bias, dim=-1)


class SpikingS4D(_GLULayer):
    """The SpikingSSM layer: ``x → S4D(x) + D·x → /v_th → LIF → dropout → Linear(H, 2H) → GLU``.

    Only the input of the GLU projection is binary, so that matrix product needs accumulates only. The soma is
    a child module (``layer.soma``) whose output is the spike tensor, so forward hooks can count spikes.

    Args:
        d_model (int): channels H.
        dropout (float): time-tied dropout on the spikes, as the official code places it (spikes become
            {0, 1/(1-p)} in training). Default: ``0.0``.
        shared_threshold (bool): one threshold for all channels. Default: ``False``.
        **options: S4D options (:class:`~snn_ssm.layers.dendrite.S4DOptions`: ``d_state`` (default 64),
            ``bidirectional``, ``init``, ``disc``, ``dt_min``, ``dt_max``, ``trainable_B``) and soma options
            (``beta``, ``v_th``, ``learn_threshold``, ``reset``, ``grad_mode``, ``surrogate``, ``backend``,
            ``reset_mode``, ...: :class:`~snn_ssm.layers.soma.LIFSoma`).

    Examples::

        >>> layer = SpikingS4D(64)
        >>> layer(torch.randn(784, 8, 64)).shape
        torch.Size([784, 8, 64])
    """

    def __init__(self, d_model: int, *, dropout: float = 0.0, shared_threshold: bool = False, device=None,
                 dtype=None, **options):
        s4d_options, soma_options = S4DOptions.split(options)
        super().__init__(d_model, dropout=dropout, device=device, dtype=dtype, **vars(s4d_options))
        self.soma = LIFSoma(d_model, shared=shared_threshold, device=device, dtype=dtype, **soma_options)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        # S4D(x) + D·x fired by the soma: one fused recurrence where it is faster (ops/ssm_lif), else the FFT
        # convolution with D·x, 1/v_th and the LIF fused in the soma's kernel
        return self.soma(x, dendrite=self.dendrite)

    def activation_run(self, x, state):
        """State ``(h [B, H, 1, N/2] complex, v [B, H])`` (dendrite and membrane)."""
        h0, v0 = state if state is not None else (None, None)
        y, h = self._dendrite_run(x, h0, skip=False)
        s, v = self.soma(y, x, self.dendrite.D, v0=v0, return_state=True)
        return s, (h, v)

    def activation_step(self, x, state):
        h, v = state if state is not None else (None, None)
        if self._numba_step_applies(x):
            return self._numba_step(x, h, v)
        y, h = self.dendrite.step(x.unsqueeze(-1), h)  # + D·x
        s, v = self.soma.run_step(y.squeeze(-1), v)
        return s, (h, v)

    def _numba_step_applies(self, x: torch.Tensor) -> bool:
        """Generation on the CPU: the dendrite and soma step in one numba call (the fused kernel's arithmetic)
        instead of a dozen torch ops, when no gradient is asked and the multi-step kernels would run too."""
        soma = self.soma
        return (not torch.is_grad_enabled() and x.device.type == "cpu" and x.ndim == 2
                and x.dtype in (torch.float32, torch.float64) and x.dtype == self.dendrite.log_dt.dtype
                and soma.reset_mode == "exact" and soma.options.kernel is not None
                and requested_backend(soma.backend) in ("auto", "numba") and available("numba"))

    def _numba_step(self, x, h, v):
        from ..ops.ssm_lif.numba import launch_step, step_params

        B, H = x.shape
        p = self.dendrite.discrete(H)  # kept while the parameters are unchanged, so are its kernel layouts:
        soma = self.soma
        key = (p, *((t.data_ptr(), t._version) for t in (soma.beta, soma.ln_vth)))
        cached = self.__dict__.get("_step_params")
        if cached is None or cached[0][0] is not p or cached[0][1:] != key[1:]:
            per_channel = (lambda t: t.to(x.dtype).expand(H))
            cached = self.__dict__["_step_params"] = (key, step_params(
                p.dA, p.dB, p.C[0], per_channel(p.D), per_channel(soma.beta), per_channel(1.0 / soma.v_th)))
        modes = p.dA.shape[-1]
        h = torch.zeros((B, H, modes), dtype=p.dA.dtype) if h is None else h.reshape(B, H, modes)
        s, h, v = launch_step(x, h, cached[1], torch.zeros_like(x) if v is None else v.to(x.dtype), soma.options.kernel)
        return s, (h.reshape(B, H, 1, modes), v)

    def mix_step(self, z: torch.Tensor, matmul_dtype: torch.dtype | None = None) -> torch.Tensor:
        """Without autograd on the CPU, the GLU projection of the binary spikes by accumulation: only the weight
        rows of the channels that fired are read and summed in float32 (from a copy of the weights in
        ``matmul_dtype`` when one is given). At SpikingSSM's rates of 10-25 % that reads a fraction of the matrix,
        which a dense product streams whole at every token; the sums equal the dense product's to float rounding.
        Elsewhere (autograd, CUDA, where selecting rows means a host synchronisation) as :class:`_GLULayer`."""
        if torch.is_grad_enabled() or z.device.type != "cpu" or z.ndim != 2:
            return super().mix_step(z, matmul_dtype)
        linear = self.output_linear
        w_t = inference_copy(self, linear.weight, matmul_dtype or linear.weight.dtype, transpose=True)
        batch, channel = z.nonzero(as_tuple=True)
        out = torch.zeros(z.shape[0], w_t.shape[1], dtype=torch.promote_types(z.dtype, torch.float32))
        out.index_add_(0, batch, w_t.index_select(0, channel).to(out.dtype))
        if linear.bias is not None:
            out = out + linear.bias
        return nn.functional.glu(out.to(z.dtype), dim=-1)


class S4DLayer(_GLULayer):
    """The non-spiking twin of :class:`SpikingS4D` (S4's minimal S4D layer): GELU instead of the neuron.

    Examples::

        >>> S4DLayer(32)(torch.randn(100, 4, 32)).shape
        torch.Size([100, 4, 32])
    """

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(self.dendrite(x.unsqueeze(-1)).squeeze(-1))

    def activation_run(self, x, state):
        y, h = self._dendrite_run(x, state, skip=True)
        return nn.functional.gelu(y), h

    def activation_step(self, x, state):
        y, h = self.dendrite.step(x.unsqueeze(-1), state)
        return nn.functional.gelu(y.squeeze(-1)), h


class BinaryS4D(_GLULayer):
    """Binary S4D (Stan & Rhodes, Sci. Rep. 2024): ``x → H(S4D(x) + D·x − θ) → dropout → Linear(H, 2H) → GLU``.

    A Heaviside on the S4D output, ``s_t = H(C h_t + D x_t − θ)``, trained with a surrogate gradient (arctan by
    default; the paper reports fast-sigmoid more than 10 points worse); the GLU's matrix products read binary
    spikes, so they need accumulates only.

    Args:
        d_model (int): channels H.
        threshold, learn_threshold, surrogate, alpha: the spike function (:class:`~snn_ssm.layers.HeavisideSpike`);
            default arctan.
        dropout, ``**s4d_options``: as :class:`S4DLayerBase`.

    The spike function is the child module ``layer.spike`` (hooked by :class:`~snn_ssm.metrics.SpikeRateMonitor`).

    Examples::

        >>> BinaryS4D(16, d_state=16)(torch.randn(100, 2, 16)).shape
        torch.Size([100, 2, 16])
    """

    def __init__(self, d_model: int, *, threshold: float = 0.0, learn_threshold: bool = False, surrogate="atan",
                 alpha: float | None = None, device=None, dtype=None, **kwargs):
        super().__init__(d_model, device=device, dtype=dtype, **kwargs)
        self.spike = HeavisideSpike(d_model, threshold=threshold, learn_threshold=learn_threshold,
                                    surrogate=surrogate, alpha=alpha, device=device, dtype=dtype)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return self.spike(self.dendrite(x.unsqueeze(-1)).squeeze(-1))
