"""The surrogate dynamic network (SDN): a tiny causal CNN predicting the decayed after-reset membrane β·v_{t−1}.

SpikingSSM's SDN reads the soma's input sequence ``x`` (``y / v_th``) and predicts, for every step at once,
``m̂_t ≈ β·v_{t−1}``, the membrane the exact neuron carries into step ``t`` (after its reset); spikes are then
``s_t = H(m̂_t + x_t − 1)`` for the whole sequence in one parallel pass.

Architecture (the published one is ``SDN()``): a 1×1 encoder (no bias) → depthwise causal conv of width
``kernel_size`` that sees ``x_{t−k} … x_{t−1}`` but not ``x_t`` (+ BatchNorm, ReLU) → a 1×1 conv + BatchNorm added
residually (ReLU) → ``dilated_layers`` further blocks, each a depthwise causal conv with dilation ``k^i`` (which may
see the current step) + BatchNorm + ReLU and a residual 1×1 conv + BatchNorm → a 1×1 decoder to one channel.

With ``scan=True`` (our variant, see :mod:`snn_ssm.sdn`) the same network predicts ``p̂_t ≈ β·u_{t−1}``, the
membrane the neuron would carry into step ``t`` had it not fired at ``t − 1``, and the reset itself is computed
exactly by a parallel scan over the two-state automaton "fired at the previous step or not"
(:func:`reset_scan`).

:meth:`SDN.reduce` is the "model reduction" of the paper's code: the encoder is multiplied into the first conv and
every BatchNorm folded into the conv before it, giving the same function with fewer parameters (153 for the
published size, from 193).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["SDN", "reset_scan"]


def reset_scan(x: torch.Tensor, p_hat: torch.Tensor) -> torch.Tensor:
    """Spikes ``[T, N]`` of ``s_t = H((1 − s_{t−1})·p̂_t + x_t − 1)`` from ``s_0 = 1`` (rest: ``v_0 = 0``), in
    ``⌈log₂ T⌉`` parallel steps.

    Step ``t`` maps the previous spike to the next one: ``g_t(1) = H(x_t − 1)`` (after a hard reset the carried
    membrane is exactly 0) and ``g_t(0) = H(p̂_t + x_t − 1)``. Maps of {0, 1} to itself compose associatively, so
    the prefix compositions ``G_t = g_t ∘ … ∘ g_1`` come from a Hillis–Steele scan, and ``s_t = G_t(1)``.

    Examples::

        >>> x = torch.full((6, 1), 0.9)                       # a constant just below threshold, beta = 0.125
        >>> reset_scan(x, torch.full((6, 1), 0.125 * 0.9)).flatten().tolist()
        [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    """
    if p_hat.shape != x.shape:
        raise ValueError(f"p_hat must have x's shape {tuple(x.shape)}, got {tuple(p_hat.shape)}")
    f1 = (x - 1 >= 0)  # G(1) and G(0) of each prefix, as booleans
    f0 = (p_hat + x - 1 >= 0)
    d = 1
    while d < x.shape[0]:
        # G_t <- G_t o G_{t-d}: evaluate G_t at the value G_{t-d} produced
        e0 = torch.where(f0[:-d], f1[d:], f0[d:])
        e1 = torch.where(f1[:-d], f1[d:], f0[d:])
        f0 = torch.cat([f0[:d], e0])
        f1 = torch.cat([f1[:d], e1])
        d *= 2
    return f1.to(x.dtype)


class _CausalConv(nn.Module):
    """Conv1d over time, left-padded so output ``t`` sees inputs up to ``t`` (or up to ``t − 1`` with
    ``exclude_current``)."""

    def __init__(self, conv: nn.Conv1d, exclude_current: bool = False):
        super().__init__()
        self.conv, self.exclude_current = conv, exclude_current

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        span = self.conv.dilation[0] * (self.conv.kernel_size[0] - 1)
        if self.exclude_current:  # pad one more and drop the last output: output t ends at input t - 1
            return self.conv(nn.functional.pad(x, (span + 1, 0)))[..., :-1]
        return self.conv(nn.functional.pad(x, (span, 0)))


class SDN(nn.Module):
    """Causal CNN ``[N, 1, T] → [N, 1, T]`` predicting β·v_{t−1} from the soma input (see the module docstring).

    Args:
        d_model (int): hidden channels. Default: ``8`` (published).
        kernel_size (int): width of the causal convolutions. Default: ``8`` (published).
        dilated_layers (int): extra blocks with dilations ``k, k², …`` that widen the receptive field to
            ``k + Σ (k − 1)·k^i``. Default: ``0`` (published).
        scan (bool): predict the membrane carried had the neuron not fired (``p̂``) and compute the reset by
            :func:`reset_scan`. Default: ``False`` (published: predict the carried membrane ``m̂`` directly).

    After :meth:`reduce` the BatchNorms are folded away (``reduced`` is ``True``); the module is then inference-only.

    Examples::

        >>> net = SDN()
        >>> net(torch.randn(3, 1, 100)).shape, sum(p.numel() for p in net.reduce().parameters())
        (torch.Size([3, 1, 100]), 153)
    """

    def __init__(self, d_model: int = 8, kernel_size: int = 8, dilated_layers: int = 0, scan: bool = False):
        super().__init__()
        for name, value, low in (("d_model", d_model, 1), ("kernel_size", kernel_size, 1),
                                 ("dilated_layers", dilated_layers, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        self.d_model, self.kernel_size, self.dilated_layers, self.scan = d_model, kernel_size, dilated_layers, scan
        self.reduced = False
        d, k = d_model, kernel_size
        self.encoder = nn.Conv1d(1, d, 1, bias=False)
        self.spatial = _CausalConv(nn.Conv1d(d, d, k, groups=d), exclude_current=True)
        self.spatial_norm = nn.BatchNorm1d(d)
        self.feature = nn.Conv1d(d, d, 1)
        self.feature_norm = nn.BatchNorm1d(d)
        self.dilated = nn.ModuleList(_CausalConv(nn.Conv1d(d, d, k, groups=d, dilation=k ** (i + 1)))
                                     for i in range(dilated_layers))
        self.dilated_norm = nn.ModuleList(nn.BatchNorm1d(d) for _ in range(dilated_layers))
        self.mix = nn.ModuleList(nn.Conv1d(d, d, 1) for _ in range(dilated_layers))
        self.mix_norm = nn.ModuleList(nn.BatchNorm1d(d) for _ in range(dilated_layers))
        self.decoder = nn.Conv1d(d, 1, 1)

    @property
    def receptive_field(self) -> int:
        """How many past steps ``m̂_t`` can depend on."""
        k = self.kernel_size
        return k + sum((k - 1) * k ** (i + 1) for i in range(self.dilated_layers))

    def config(self) -> dict:
        return dict(d_model=self.d_model, kernel_size=self.kernel_size, dilated_layers=self.dilated_layers,
                    scan=self.scan)

    def carried(self, x: torch.Tensor) -> torch.Tensor:
        """The membrane carried into each step, ``m̂_t ≈ β·v_{t−1}``, for soma inputs ``x`` ``[T, N]`` → ``[T, N]``:
        the network's output, or with ``scan`` ``(1 − s_{t−1})·p̂_t`` with the spikes of :func:`reset_scan`."""
        out = self(x.T.unsqueeze(1)).squeeze(1).T
        if not self.scan:
            return out
        s = reset_scan(x, out)
        s_prev = torch.cat([torch.ones_like(s[:1]), s[:-1]])
        return (1 - s_prev) * out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network: ``x`` ``[N, 1, T]`` (the soma input, ``y / v_th``) → ``[N, 1, T]`` (``m̂``, or ``p̂`` with
        ``scan``)."""
        if x.ndim != 3 or x.shape[1] != 1:
            raise ValueError(f"x must have shape [N, 1, T], got {tuple(x.shape)}")
        relu = nn.functional.relu
        if self.reduced:  # encoder folded into the first conv, norms into their convs
            h = relu(self.spatial(x))
            h = relu(self.feature(h) + h)
            for conv, mix in zip(self.dilated, self.mix):
                h = relu(conv(h))
                h = relu(mix(h) + h)
            return self.decoder(h)
        h = relu(self.spatial_norm(self.spatial(self.encoder(x))))
        h = relu(self.feature_norm(self.feature(h)) + h)
        for conv, norm, mix, mix_norm in zip(self.dilated, self.dilated_norm, self.mix, self.mix_norm):
            h = relu(norm(conv(h)))
            h = relu(mix_norm(mix(h)) + h)
        return self.decoder(h)

    def reduce(self) -> "SDN":
        """The same function (eval-mode BatchNorm statistics) with the encoder and the norms folded into the convs."""
        if self.reduced:
            return copy.deepcopy(self)
        src = copy.deepcopy(self).eval()
        out = copy.deepcopy(src)
        out.reduced = True
        with torch.no_grad():
            # encoder (d <- c, 1x1) then depthwise (d, 1, k): one full conv (d <- c, k)
            dw = src.spatial.conv
            first = nn.Conv1d(src.encoder.in_channels, src.d_model, src.kernel_size, device=dw.weight.device,
                              dtype=dw.weight.dtype).eval()
            first.weight.copy_(dw.weight * src.encoder.weight)  # (d,1,k) * (d,c,1) -> (d,c,k)
            first.bias.copy_(dw.bias)
            out.spatial = _CausalConv(fuse_conv_bn_eval(first, src.spatial_norm), exclude_current=True)
            out.feature = fuse_conv_bn_eval(src.feature, src.feature_norm)
            for i in range(src.dilated_layers):
                out.dilated[i] = _CausalConv(fuse_conv_bn_eval(src.dilated[i].conv, src.dilated_norm[i]))
                out.mix[i] = fuse_conv_bn_eval(src.mix[i], src.mix_norm[i])
        del out.encoder, out.spatial_norm, out.feature_norm, out.dilated_norm, out.mix_norm
        return out.eval().requires_grad_(False)

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, kernel_size={self.kernel_size}, dilated_layers={self.dilated_layers}, "
                f"scan={self.scan}, receptive_field={self.receptive_field}, reduced={self.reduced}")
