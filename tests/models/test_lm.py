"""The language models: the parallel form, the carried-state form and the recurrent step agree; generation by the
recurrence gives what the parallel forward over the growing prefix gives; adaptive input/softmax are tied."""
import pytest
import torch

from snn_ssm.models import LM_SIZES, S4DLM, SpikingSSMLM
from snn_ssm.registry import create

MODELS = {"spikingssm_lm": SpikingSSMLM, "s4d_lm": S4DLM}


def _lm(name, **kw):
    torch.manual_seed(0)
    return MODELS[name](61, d_model=24, n_layers=2, d_state=8, dropout=0.0, dtype=torch.float64, **kw).eval()


@pytest.mark.parametrize("name", list(MODELS))
def test_parallel_chunked_and_recurrent_forms_agree(name):
    """float64, so that no spike sits within rounding of its threshold: the three forms give the same spikes and
    logits within 1e-10."""
    lm = _lm(name)
    x = torch.randint(0, 61, (50, 3))
    with torch.no_grad():
        full = lm(x)
        a, state = lm(x[:17], state=None, return_state=True)
        b, state = lm(x[17:], state=state, return_state=True)
        chunked = torch.cat([a, b])
        state, steps = None, []
        for t in range(50):
            out, state = lm.step(x[t], state)
            steps.append(out)
    torch.testing.assert_close(chunked, full, rtol=0, atol=1e-10)
    torch.testing.assert_close(torch.stack(steps), full, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", list(MODELS))
def test_greedy_generation_equals_the_parallel_forward_over_the_prefix(name):
    lm = _lm(name)
    prompt = torch.randint(0, 61, (12,))
    new = lm.generate(prompt, 20, temperature=0)
    seq = prompt.tolist()
    with torch.no_grad():
        for _ in range(20):
            seq.append(int(lm(torch.tensor(seq)[:, None])[-1, 0].argmax()))
    assert new.tolist() == seq[12:]


def test_sampling_is_reproducible_and_top_k_restricts():
    lm = _lm("spikingssm_lm")
    prompt = torch.randint(0, 61, (4, 2))
    a = lm.generate(prompt, 15, temperature=1.0, top_k=3, generator=torch.Generator().manual_seed(1))
    b = lm.generate(prompt, 15, temperature=1.0, top_k=3, generator=torch.Generator().manual_seed(1))
    assert a.shape == (15, 2) and torch.equal(a, b)
    with torch.no_grad():
        first = lm(prompt)[-1].topk(3, -1).indices
    assert all(int(a[0, j]) in first[j].tolist() for j in range(2))


def test_targets_give_the_token_nll_and_the_output_is_tied():
    lm = _lm("spikingssm_lm")
    x, y = torch.randint(0, 61, (30, 2)), torch.randint(0, 61, (30, 2))
    nll = lm(x, y)
    logits = lm(x)
    torch.testing.assert_close(nll, torch.nn.functional.cross_entropy(logits.reshape(-1, 61), y.reshape(-1),
                                                                        reduction="none").reshape(30, 2).float())
    names = [n for n, _ in lm.named_parameters()]
    assert "embedding.weight" in names and not any("decoder" in n for n in names)


def test_adaptive_input_and_softmax_share_their_weights():
    torch.manual_seed(0)
    lm = SpikingSSMLM(500, d_model=16, n_layers=1, d_state=8, dropout=0.0,
                      adaptive={"cutoffs": [50, 200], "div_value": 2.0})
    x, y = torch.randint(0, 500, (20, 2)), torch.randint(0, 500, (20, 2))
    log_p = lm(x)
    assert log_p.shape == (20, 2, 500)
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(20, 2))
    nll = lm(x, y)
    torch.testing.assert_close(nll, -log_p.gather(-1, y[..., None])[..., 0])
    nll.mean().backward()
    tail = lm.softmax.tail[0][1].weight  # a rare cluster's output weights, used by the input embedding too
    assert tail.grad is not None
    n_params = sum(p.numel() for p in lm.parameters())
    assert n_params == sum(p.numel() for p in lm.blocks.parameters()) + sum(p.numel() for p in
                                                                              lm.final_norm.parameters()) + \
        sum(p.numel() for p in lm.softmax.parameters())  # the embedding owns nothing of its own


def test_spiking_layer_step_reads_only_the_weights_of_channels_that_fired():
    """Generation on the CPU: the GLU projection of one step's spikes accumulates the weight rows of the channels
    that fired. Poisoning the weights of silent channels with NaN proves it: the dense product turns NaN, the
    accumulation does not, and over the channels that fired the two agree to rounding."""
    from snn_ssm.blocks import SpikingS4D
    torch.manual_seed(0)
    layer = SpikingS4D(16, d_state=4).eval()
    s = (torch.rand(3, 16) < 0.3).float()
    s[0] = 0  # a step with no spike at all
    with torch.no_grad():
        torch.testing.assert_close(layer.mix_step(s), layer.mix(s), rtol=1e-6, atol=1e-6)
        silent = s[1:].sum(0) == 0
        layer.output_linear.weight[:, silent] = float("nan")  # bumps the version: the cached copy is rebuilt
        assert layer.mix(s[1:]).isnan().any()
        out = layer.mix_step(s[1:])
    assert torch.isfinite(out).all()


def test_numba_step_equals_the_torch_step(monkeypatch):
    """Generation's one-call numba step of a spiking layer (dendrite and soma) against the torch ops it replaces:
    float64, so equal spikes and states within 1e-12 over 30 steps; the kernel really ran."""
    pytest.importorskip("numba")
    import snn_ssm
    from snn_ssm.blocks import SpikingS4D
    from snn_ssm.ops.ssm_lif import numba as kernels
    calls = []
    launch = kernels.launch_step
    monkeypatch.setattr(kernels, "launch_step", lambda *a: calls.append(1) or launch(*a))
    torch.manual_seed(0)
    layer = SpikingS4D(12, d_state=8, dtype=torch.float64, beta=0.5, v_th=0.7).eval()
    x = torch.randn(30, 3, 12, dtype=torch.float64) * 3
    with torch.no_grad():
        a = b = None
        for t in range(30):
            sa, a = layer.activation_step(x[t], a)
            with snn_ssm.ops.use_backend("torch"):
                sb, b = layer.activation_step(x[t], b)
            assert torch.equal(sa, sb)
            torch.testing.assert_close(a[0], b[0], rtol=0, atol=1e-12)
            torch.testing.assert_close(a[1], b[1], rtol=0, atol=1e-12)
    assert len(calls) == 30 and 0 < float(sa.mean()) < 1


def test_half_precision_products_in_generation():
    """``matmul_dtype`` rounds the output layer's product to bfloat16 and nothing else: the logits stay within
    bfloat16's rounding of the float32 ones, the weights are cast once, and a weight update is seen."""
    torch.manual_seed(0)
    lm = S4DLM(61, d_model=24, n_layers=2, d_state=8, dropout=0.0).eval()
    x = torch.randint(0, 61, (6,))
    with torch.no_grad():
        exact, _ = lm.step(x, None)
        half, _ = lm.step(x, None, matmul_dtype=torch.bfloat16)
        torch.testing.assert_close(half, exact, rtol=0, atol=3e-2 * exact.abs().max().item())
        assert not torch.equal(half, exact)
        copy = lm.__dict__["_inference_copies"]
        first = next(iter(copy.values()))[1]
        lm.step(x, None, matmul_dtype=torch.bfloat16)
        assert next(iter(copy.values()))[1] is first  # cast once
        lm.embedding.weight.mul_(2)
        again, _ = lm.step(x, None, matmul_dtype=torch.bfloat16)
    assert not torch.allclose(again, half)
    out = lm.generate(x[:3], 5, temperature=0, matmul_dtype=torch.float16)
    assert out.shape == (5,) and int(out.max()) < 61
    with pytest.raises(ValueError, match="matmul_dtype"):
        lm.generate(x[:3], 5, matmul_dtype=torch.int8)


def test_named_sizes_and_registry():
    small = create("spikingssm_lm", vocab_size=8192, size="small")
    assert 9e6 < sum(p.numel() for p in small.parameters()) < 11e6  # ~10M at an 8k BPE vocabulary
    assert LM_SIZES["wt103"]["n_layers"] == 16 and LM_SIZES["wt103"]["d_model"] == 1024
    assert isinstance(create("s4d_lm", vocab_size=256, size="tiny"), S4DLM)


def test_bad_inputs_are_named():
    lm = _lm("spikingssm_lm")
    with pytest.raises(ValueError, match="causal"):
        SpikingSSMLM(10, d_model=8, n_layers=1, bidirectional=True)
    with pytest.raises(TypeError, match="token ids"):
        lm(torch.rand(5, 2))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        lm(torch.full((5, 2), 61))
    with pytest.raises(ValueError, match="targets"):
        lm(torch.zeros(5, 2, dtype=torch.long), torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        lm.generate(torch.zeros(3, dtype=torch.long), 2, temperature=-1)
    with pytest.raises(ValueError, match="max_tokens"):
        lm.generate(torch.zeros(3, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="size"):
        SpikingSSMLM(10, size="huge")
    with pytest.raises(ValueError, match="cutoffs"):
        SpikingSSMLM(100, d_model=8, n_layers=1, adaptive={"cutoffs": [200]})
