"""Where P-SpikeSSM's official code and ours differed (issue: reproduce the papers), pinned to the official
behaviour: the S4 init's Im(B) clip, the kernel fitted once at l_max, the tiling of shared S4 copies over channels,
and the sampler's inclusive straight-through gradient."""
import pytest
import torch

from snn_ssm.functional import s4, s4d
from snn_ssm.functional.sampler import sample_spikes
from snn_ssm.layers import S4DPLR
from snn_ssm.models import PSSM_CONFIGS


def test_b_clip_bounds_the_imaginary_part_of_the_legs_b():
    _, _, B = s4.nplr_legs(64)
    assert B.imag.abs().max() > 2  # the exact LegS B has larger imaginary parts...
    clipped = torch.view_as_complex(S4DPLR(4, d_state=64).B.detach())
    assert clipped.imag.abs().max() <= 2 + 1e-6  # ...which the official init clips to ±2
    torch.testing.assert_close(clipped.real, B.real.to(clipped.real.dtype).expand_as(clipped.real))
    exact = torch.view_as_complex(S4DPLR(4, d_state=64, b_clip=None).B.detach())
    torch.testing.assert_close(exact, B.to(exact.dtype).expand_as(exact))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_kernel_fitted_at_l_max_is_truncated_for_shorter_inputs(bidirectional):
    torch.manual_seed(0)
    ssm = S4DPLR(3, d_state=8, bidirectional=bidirectional, l_max=64, dtype=torch.float64)
    x = torch.randn(20, 2, 3, 1, dtype=torch.float64)
    K = ssm.kernel(64)
    K_T = torch.cat([K[:20], K[-20:]]) if bidirectional else K[:20]
    torch.testing.assert_close(ssm(x), s4d.fft_conv(x, K_T) + ssm.D[:, None] * x)
    free = S4DPLR(3, d_state=8, bidirectional=bidirectional, dtype=torch.float64)
    free.load_state_dict(ssm.state_dict())
    assert not torch.allclose(free(x), ssm(x))  # built at T = 20 it is another SSM
    y_long = ssm(torch.cat([x, torch.zeros(30, 2, 3, 1, dtype=torch.float64)]))  # padding does not change it
    if not bidirectional:
        torch.testing.assert_close(y_long[:20], ssm(x))
    with pytest.raises(ValueError, match="l_max"):
        ssm(torch.randn(65, 2, 3, 1, dtype=torch.float64))


def test_token_task_configs_fit_their_kernels_at_the_dataset_length():
    assert {t: PSSM_CONFIGS[t]["model"]["l_max"] for t in ("listops", "text", "retrieval")} == \
        {"listops": 2048, "text": 4096, "retrieval": 4000}


def test_shared_copies_tile_the_channels():
    ssm = S4DPLR(6, d_state=4, n_ssm=2)
    rows = ssm._rows(torch.arange(2.0)[:, None])
    assert rows.flatten().tolist() == [0, 1, 0, 1, 0, 1]  # channel h uses copy h mod n_ssm


def test_sampler_gradient_passes_at_the_clamp_ends():
    u = torch.tensor([-0.1, 0.0, 0.5, 1.0, 1.1], requires_grad=True)
    sample_spikes(u, torch.full_like(u, 0.5)).sum().backward()
    assert u.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # torch.clamp's gradient: inclusive at 0 and 1


def test_bidirectional_block_resamples_both_outputs_with_the_input_draw():
    from snn_ssm.blocks import PSpikeSSMBlock

    torch.manual_seed(0)
    block = PSpikeSSMBlock(4, d_state=8, block_bidirectional=True, norm=None)
    assert list(block.out_sampler_rev.parameters()) == []  # no affine before the second output sampling
    drawn, ssm_out, mixed = [], {}, []
    noise = block.in_sampler.noise
    block.in_sampler.noise = lambda like: drawn.append(noise(like)) or drawn[-1]
    block.out_sampler.noise = block.out_sampler_rev.noise = None  # must not draw
    block.ssm.register_forward_hook(lambda m, a, out: ssm_out.__setitem__("for", out))
    block.ssm_rev.register_forward_hook(lambda m, a, out: ssm_out.__setitem__("rev", out))
    block.mixer.register_forward_pre_hook(lambda m, args: mixed.append(args[0]))
    block(torch.randn(30, 2, 4))
    (xi,), s = drawn, mixed[0]
    gelu = torch.nn.functional.gelu
    assert torch.equal(s[..., :4], (gelu(ssm_out["for"].squeeze(-1)) > xi).float())
    assert torch.equal(s[..., 4:], (gelu(ssm_out["rev"].squeeze(-1)) > xi).float())
    legacy = PSpikeSSMBlock(4, d_state=8, block_bidirectional=True, reverse_affine=True)
    assert {n for n, _ in legacy.out_sampler_rev.named_parameters()} == {"a", "b"}
