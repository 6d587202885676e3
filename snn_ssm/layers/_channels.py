"""``ChannelModule``: per-channel parameters, created at construction or from the first input (or a state dict)."""
from __future__ import annotations

import torch
from torch import nn

from .. import _checks


class ChannelModule(nn.Module):
    """Base for modules whose parameters have a leading channel dimension.

    ``channels=None`` defers creation to the first call (the channel count is read from the input) or to
    ``load_state_dict``; ``shared=True`` keeps a single row for all channels. A zero-size buffer ``_anchor``
    follows ``.to()``, so lazily created parameters land on the device and dtype the module was moved to.
    Subclasses implement ``_build(rows)``, which creates every per-channel parameter with ``rows`` rows.
    """

    _channel_key: str  # name of one parameter whose first dim is the channel count (for state_dict loading)

    def __init__(self, channels: int | None, shared: bool, device=None, dtype=None):
        super().__init__()
        _checks.positive_int(channels, "channels", allow_none=True)
        self.shared = bool(shared)
        self.channels = channels
        self.register_buffer("_anchor", torch.empty(0, device=device, dtype=dtype or torch.get_default_dtype()),
                             persistent=False)
        self._built = False

    def _maybe_build(self) -> None:
        if self.shared:
            self._build(1)
            self._built = True
        elif self.channels is not None:
            self._build(self.channels)
            self._built = True

    @property
    def built(self) -> bool:
        """Whether the per-channel parameters exist (a lazy module builds them at its first input)."""
        return self._built

    @property
    def factory(self) -> dict:
        return {"device": self._anchor.device, "dtype": self._anchor.dtype}

    def ensure_channels(self, channels: int, name: str = "x") -> None:
        """Create the parameters for ``channels`` channels if still lazy, else check the count matches."""
        if self.shared:
            return
        if self.channels is None:
            self.channels = channels
            self._build(channels)
            self._built = True
        elif channels != self.channels:
            raise ValueError(f"{name} has {channels} channels (dim 2 of [T, B, C, ...], dim 1 of a single step "
                             f"[B, C, ...]) but {type(self).__name__} was built for {self.channels}")

    @property
    def rows(self) -> int:
        return 1 if self.shared else self.channels

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + self._channel_key
        if not self._built and key in state_dict:
            self.ensure_channels(state_dict[key].shape[0])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
