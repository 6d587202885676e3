"""A minimal SpikingSSM, in one file with only torch: read it to see the whole model, run it as an oracle.

Glossary (time-first, as the package):
    T  time steps        B  batch        H  channels (d_model)        N  S4D state size (N/2 complex modes)

The model (Shen et al., "SpikingSSMs", AAAI 2025), per layer:
    1. S4D kernel: K[l] = 2 Re sum_n C_n (exp(dt A_n) - 1)/A_n exp(dt A_n l)   (ZOH, B = 1, S4D-Lin A_n = -1/2 + i pi n)
    2. y = causal convolution of x with K (FFT, zero-padded to 2T) + D x
    3. LIF soma on y / v_th: u' = beta u + y/v_th, s = 1[u' >= 1], u = (1 - s) u'  (hard reset), triangle surrogate
    4. dropout on spikes, then Linear(H, 2H) + GLU, residual add, LayerNorm after the sum (post-norm)
Package equivalents: snn_ssm.functional.s4d (1, 2), snn_ssm.functional.lif_seq (3), snn_ssm.SpikingS4D and
snn_ssm.SpikingSSM (4). tests/test_minimal_example.py checks that this file and the package agree.
"""
import math

import torch
from torch import nn


class SpikeFn(torch.autograd.Function):
    """Heaviside forward, triangle surrogate max(0, 1 - |x|) backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (1 - x.abs()).clamp_min(0)


class MinimalSpikingS4D(nn.Module):
    def __init__(self, H, N=64, beta=0.125, dt_min=1e-3, dt_max=1e-1):
        super().__init__()
        self.beta = beta
        self.log_dt = nn.Parameter(torch.rand(H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.log_A_real = nn.Parameter(torch.full((H, N // 2), math.log(0.5)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(N // 2).float().expand(H, -1).clone())
        self.C = nn.Parameter(torch.randn(1, H, N // 2, 2) * math.sqrt(0.5))  # complex, as a real view
        self.D = nn.Parameter(torch.randn(H))
        self.ln_vth = nn.Parameter(torch.zeros(H))
        self.out = nn.Linear(H, 2 * H)

    def kernel(self, T):
        A = torch.complex(-torch.exp(self.log_A_real), self.A_imag)  # (H N/2)
        dtA = torch.exp(self.log_dt)[:, None] * A  # (H N/2)
        C = torch.view_as_complex(self.C)[0] * (torch.exp(dtA) - 1) / A  # (H N/2)
        powers = torch.exp(dtA[..., None] * torch.arange(T))  # (H N/2 T)
        return 2 * torch.einsum("hn,hnt->th", C, powers).real  # (T H)

    def forward(self, x):  # x: (T B H)
        T = x.shape[0]
        K = self.kernel(T)
        y = torch.fft.irfft(torch.fft.rfft(x, n=2 * T, dim=0) * torch.fft.rfft(K, n=2 * T, dim=0)[:, None],
                            n=2 * T, dim=0)[:T]  # (T B H)
        y = (y + self.D * x) / torch.exp(self.ln_vth)
        u, spikes = torch.zeros_like(y[0]), []
        for t in range(T):
            u = self.beta * u + y[t]
            s = SpikeFn.apply(u - 1)
            u = u - s * u  # hard reset to 0
            spikes.append(s)
        return nn.functional.glu(self.out(torch.stack(spikes)), dim=-1)  # (T B H)


class MinimalSpikingSSM(nn.Module):
    def __init__(self, d_input, d_output, H=64, n_layers=2, N=64):
        super().__init__()
        self.encoder = nn.Linear(d_input, H)
        self.layers = nn.ModuleList(MinimalSpikingS4D(H, N) for _ in range(n_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(H) for _ in range(n_layers))
        self.decoder = nn.Linear(H, d_output)

    def forward(self, x):  # x: (T B d_input) -> (B d_output)
        z = self.encoder(x)
        for layer, norm in zip(self.layers, self.norms):
            z = norm(z + layer(z))
        return self.decoder(z.mean(0))


if __name__ == "__main__":
    model = MinimalSpikingSSM(d_input=1, d_output=10)
    print(model(torch.rand(784, 4, 1)).shape)
