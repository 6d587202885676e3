"""P-SpikeSSM's SpikeSampler: a stochastic spiking neuron, ``s = 1[p > ξ]``, ``p = clamp(a·x + b, 0, 1)``."""
from __future__ import annotations

import torch
from torch import nn

from .. import _checks
from ..functional.sampler import clamped, sample_spikes
from ..registry import register
from ._channels import ChannelModule
from .emitter import SpikeEmitter
from .norm import NORMS, ChannelNorm

__all__ = ["SpikeSampler", "EVAL_MODES"]

EVAL_MODES = ("sample", "expectation", "threshold")
EVAL_THRESHOLD = 0.5  # eval_mode="threshold" fires where p > 1/2, the spike's most likely value


@register("spike_sampler")
class SpikeSampler(SpikeEmitter, ChannelModule):
    """Stochastic spikes with probability ``p = clamp(a⊙u + b, 0, 1)`` (P-SpikeSSM's SpikeSampler).

    ``u`` is the input, or its norm when ``norm`` is set (P-SpikeSSM's code normalises the affine output:
    ``p = clamp(Norm(a⊙x + b))``; ``norm_first=True`` normalises the input instead). Spikes are ``s = 1[p > ξ]`` with
    ``ξ ~ U(0, 1)`` per element, i.e. Bernoulli(p); the gradient reaches ``p``'s pre-clamp value where it lies in
    [0, 1] (straight-through on the clamp, inclusive as ``torch.clamp``'s). Stateless: a sequence ``[T, B, C, *]``
    and its steps ``[B, C, *]`` (:meth:`step`) give the same spikes for the same noise.

    Args:
        channels (int, optional): channel count C; ``None`` infers it at the first call. Default: ``None``.
        norm (str, optional): ``"batch"`` or ``"layer"`` over channels, or ``None``. Default: ``None``.
        norm_first (bool): normalise before the affine map instead of after it. Default: ``False``.
        eval_mode (str): what the sampler emits in eval mode: ``"sample"`` (stochastic, as the paper's code does),
            ``"expectation"`` (``p`` itself) or ``"threshold"`` (``1[p > 0.5]``). Training always samples.
            Default: ``"sample"``.
        seed (int, optional): seed of this sampler's own ``torch.Generator`` (one per device), so a run is
            reproducible; ``None`` draws from torch's global generator. :meth:`manual_seed` reseeds.

        affine (bool): learn the per-channel ``a`` (init 1) and ``b`` (init 0); ``False`` samples ``clamp(u)``
            itself (P-SpikeSSM's reverse-path output sampling). Default: ``True``.

    Examples::

        >>> sampler = SpikeSampler(8, seed=0)
        >>> s = sampler(torch.rand(100, 4, 8))      # [T, B, C] -> spikes in {0, 1}
    """

    _channel_key = "a"

    def __init__(self, channels: int | None = None, *, norm: str | None = None, norm_first: bool = False,
                 eval_mode: str = "sample", seed: int | None = None, affine: bool = True, device=None, dtype=None):
        super().__init__(channels, False, device, dtype)
        self.affine = bool(affine)
        _checks.one_of(norm, "norm", (*NORMS, None))
        _checks.one_of(eval_mode, "eval_mode", EVAL_MODES)
        self.norm_kind, self.norm_first, self.eval_mode = norm, norm_first, eval_mode
        self.manual_seed(seed)
        self._maybe_build()

    def _build(self, rows: int) -> None:
        if self.affine:
            self.a = nn.Parameter(torch.ones(rows, **self.factory))
            self.b = nn.Parameter(torch.zeros(rows, **self.factory))
        self.norm = ChannelNorm(rows, self.norm_kind, **self.factory) if self.norm_kind else None

    def manual_seed(self, seed: int | None) -> "SpikeSampler":
        """Reseed this sampler's generator (``None``: use torch's global generator); returns ``self``."""
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.seed, self._generators = seed, {}
        return self

    def rng_state(self) -> dict:
        """The states of this sampler's generators (``{device: ByteTensor}``), for exact resumption."""
        return {str(d): g.get_state() for d, g in self._generators.items()}

    def set_rng_state(self, state: dict) -> None:
        for device, s in state.items():
            g = torch.Generator(device)
            g.set_state(s)
            self._generators[torch.device(device)] = g

    def noise(self, like: torch.Tensor) -> torch.Tensor:
        """``ξ ~ U(0, 1)`` shaped like ``like``, from this sampler's generator."""
        if self.seed is None:
            return torch.rand(like.shape, device=like.device, dtype=like.dtype)
        gen = self._generators.get(like.device)
        if gen is None:
            gen = self._generators[like.device] = torch.Generator(like.device).manual_seed(self.seed)
        return torch.rand(like.shape, generator=gen, device=like.device, dtype=like.dtype)

    def probability_input(self, x: torch.Tensor, channel_dim: int = 2) -> torch.Tensor:
        """The pre-clamp value ``u`` (``p = clamp(u, 0, 1)``)."""
        if not self.affine:
            return x if self.norm is None else self.norm(x, channel_dim)
        shape = (-1,) + (1,) * (x.ndim - channel_dim - 1)
        a, b = self.a.reshape(shape), self.b.reshape(shape)
        if self.norm is None:
            return a * x + b
        if self.norm_first:
            return a * self.norm(x, channel_dim) + b
        return self.norm(a * x + b, channel_dim)

    def _fire(self, x: torch.Tensor, channel_dim: int, noise: torch.Tensor | None) -> torch.Tensor:
        layout = "[T, B, C, ...]" if channel_dim == 2 else "[B, C, ...]"
        _checks.check_tensor(x, "x", min_ndim=channel_dim + 1, layout=layout, allow_empty_time=channel_dim == 1,
                             device_of=self._anchor)
        self.ensure_channels(x.shape[channel_dim])
        u = self.probability_input(x, channel_dim)
        if not self.training and self.eval_mode != "sample":
            return clamped(u, None if self.eval_mode == "expectation" else EVAL_THRESHOLD)
        if noise is not None and noise.shape != u.shape:
            raise ValueError(f"noise must have the input's shape {tuple(u.shape)}, got {tuple(noise.shape)}")
        if noise is not None:
            _checks.check_finite(noise, "noise")
        return sample_spikes(u, self.noise(u) if noise is None else noise)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Spikes for a sequence ``x`` ``[T, B, C, *]``; ``noise`` (``ξ``, same shape) replaces the draw."""
        return self._fire(x, 2, noise)

    def step(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Spikes for one step ``x`` ``[B, C, *]``."""
        return self._fire(x, 1, noise)

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, affine={self.affine}, norm={self.norm_kind!r}, "
                f"norm_first={self.norm_first}, eval_mode={self.eval_mode!r}, seed={self.seed}")
