"""Language models side by side in one process: training tokens/s and generation tokens/s for the spiking LM
(``spikingssm_lm``), its S4D twin (``s4d_lm``) and a causal Transformer of about the same size built from torch's
own layers, on the same tokens (the kjv text, BPE 8k when the tokenizers library is installed, else bytes).

Training: forward, next-token cross-entropy, backward and an AdamW step on ``--batch`` x ``--seq-len`` tokens.
Generation at batch 1 after a 16-token prompt: ours by the recurrence (one S4D step and one LIF step per layer and
token, O(1)); the Transformer has no cache in torch's layers, so it re-reads its prefix at every token, as does the
"parallel over the prefix" row of our model (what generation costs without the recurrent form). The last column is
the time per token at a prefix of ``--prefix`` tokens.

    cd benchmarks && python bench_lm.py --device cpu --threads 2
    cd benchmarks && python bench_lm.py --device cuda --batch 16 --seq-len 1024
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import device_name, timed, write
from torch import nn

from snn_ssm.data.text import BPETokenizer, ByteTokenizer, load_kjv
from snn_ssm.models import S4DLM, SpikingSSMLM


class CausalTransformer(nn.Module):
    """Embedding + learned positions → ``nn.TransformerEncoder`` (pre-norm, causal mask) → tied output."""

    def __init__(self, vocab: int, d_model: int, n_layers: int, max_len: int, n_heads: int = 8):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_model)
        self.position = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, 4 * d_model, dropout=0.0, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x):  # [T, B] -> logits [T, B, V]
        T = x.shape[0]
        h = self.embedding(x) + self.position(torch.arange(T, device=x.device))[:, None]
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=x.device)
        return F.linear(self.norm(self.encoder(h, mask=mask, is_causal=True)), self.embedding.weight)

    @torch.no_grad()
    def generate(self, prompt, n):
        seq = prompt[:, None]
        for _ in range(n):
            nxt = self(seq)[-1].argmax(-1)
            seq = torch.cat([seq, nxt[None]])
        return seq[prompt.shape[0]:, 0]


def tokens_for(device):
    text = load_kjv()["train"]
    try:
        tok = BPETokenizer.train(text, 8192)
    except ImportError:
        tok = ByteTokenizer()
    return tok.encode(text).to(device), tok.vocab_size


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def train_rate(model, tokens, batch, seq_len, device, repeats):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    starts = torch.randint(0, tokens.numel() - seq_len - 1, (batch,), generator=g)
    chunk = torch.stack([tokens[s: s + seq_len + 1] for s in starts.tolist()], 1)
    x, y = chunk[:-1], chunk[1:]
    model.train()

    def step():
        out = model(x, y) if not isinstance(model, CausalTransformer) else \
            F.cross_entropy(model(x).reshape(-1, model.embedding.num_embeddings), y.reshape(-1), reduction="none")
        out.mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    ms, peak = timed(step, device, repeats)
    return batch * seq_len / (ms / 1e3), peak


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def generation_rate(fn, n, device, repeats=3):
    """Tokens per second of ``fn(n)``, the median of ``repeats`` runs (a shared CPU's timings scatter)."""
    fn(2)
    rates = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn(n)
        sync(device)
        rates.append(n / (time.perf_counter() - t0))
    return sorted(rates)[len(rates) // 2]


@torch.no_grad()
def per_token_at_prefix(model, tokens, prefix, device, parallel: bool):
    x = tokens[:prefix][:, None]
    model.eval()
    if isinstance(model, CausalTransformer) or parallel:
        run = (lambda: model(x))
    else:
        _, state = model(x[:-1], return_state=True)
        run = (lambda: model.step(x[-1], state))
    run()
    sync(device)
    reps = 5
    t0 = time.perf_counter()
    for _ in range(reps):
        run()
    sync(device)
    return 1e3 * (time.perf_counter() - t0) / reps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (the generation target is for 2)")
    p.add_argument("--size", default="small", help="named LM size (spikingssm_lm/s4d_lm)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--gen-tokens", type=int, default=200)
    p.add_argument("--prefix", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--matmul-dtypes", nargs="*", default=["float16", "bfloat16"],
                   help="also generate with these generate(matmul_dtype=...) settings")
    p.add_argument("--pretrained", action="store_true",
                   help="generation rows of the shipped spikingssm_lm-kjv too (its trained spike rates)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    tokens, vocab = tokens_for(device)
    torch.manual_seed(0)
    ours = {"spikingssm_lm": SpikingSSMLM(vocab, size=args.size).to(device),
            "s4d_lm": S4DLM(vocab, size=args.size).to(device)}
    ref = ours["spikingssm_lm"]
    d = ref.d_model
    per_layer = 12 * d * d + 13 * d  # attention 4d² + feed-forward 8d², biases and norms
    layers = max(1, round((n_params(ref) - vocab * d) / per_layer))
    max_len = max(args.seq_len, args.prefix) + 1
    models = {**ours, f"transformer ({layers} layers)": CausalTransformer(vocab, d, layers, max_len).to(device)}
    prompt = tokens[:16]
    rows = []
    for name, model in models.items():
        train_tps, peak = train_rate(model, tokens, args.batch, args.seq_len, device, args.repeats)
        model.eval()
        transformer = isinstance(model, CausalTransformer)
        kwargs = {} if transformer else {"temperature": 0}
        gen = generation_rate(lambda n, m=model, kw=kwargs: m.generate(prompt, n, **kw), args.gen_tokens, device)
        at_prefix = per_token_at_prefix(model, tokens, args.prefix, device, parallel=transformer)
        rows.append({"model": name, "params_M": n_params(model) / 1e6, "train_tokens_per_s": train_tps,
                     "train_peak_MiB": peak, "gen_tokens_per_s": gen, "ms_per_token_at_prefix": at_prefix})
        for dtype in ([] if transformer else args.matmul_dtypes):
            kw = {**kwargs, "matmul_dtype": getattr(torch, dtype)}
            rows.append({"model": f"{name}, {dtype} products", "params_M": n_params(model) / 1e6,
                         "train_tokens_per_s": math.nan, "train_peak_MiB": math.nan,
                         "gen_tokens_per_s": generation_rate(lambda n, m=model, kw=kw: m.generate(prompt, n, **kw),
                                                             args.gen_tokens, device),
                         "ms_per_token_at_prefix": math.nan})
            print(rows[-1], flush=True)
        if name == "spikingssm_lm":
            rows.append({"model": "spikingssm_lm, parallel over the prefix", "params_M": n_params(model) / 1e6,
                         "train_tokens_per_s": math.nan, "train_peak_MiB": math.nan, "gen_tokens_per_s": math.nan,
                         "ms_per_token_at_prefix": per_token_at_prefix(model, tokens, args.prefix, device, True)})
        print({k: (round(v, 3) if isinstance(v, float) and not math.isnan(v) else v) for k, v in rows[-1].items()},
              flush=True)
    if args.pretrained:
        from snn_ssm.models.pretrained import load_pretrained
        model, tok, _ = load_pretrained("spikingssm_lm-kjv", device=device)
        prompt = tok.encode("And God said").to(device)
        for dtype in [None, *args.matmul_dtypes]:
            kw = {"temperature": 0, "matmul_dtype": None if dtype is None else getattr(torch, dtype)}
            rows.append({"model": f"spikingssm_lm-kjv (shipped), {dtype or 'float32'} products",
                         "params_M": n_params(model) / 1e6, "train_tokens_per_s": math.nan,
                         "train_peak_MiB": math.nan, "ms_per_token_at_prefix": math.nan,
                         "gen_tokens_per_s": generation_rate(lambda n, kw=kw: model.generate(prompt, n, **kw),
                                                             args.gen_tokens, device)})
            print(rows[-1], flush=True)
    columns = {"model": ("model", "{}"), "params (M)": ("params_M", "{:.2f}"),
               "train tokens/s": ("train_tokens_per_s", "{:.0f}"), "train peak MiB": ("train_peak_MiB", "{:.0f}"),
               "generation tokens/s (batch 1)": ("gen_tokens_per_s", "{:.0f}"),
               f"ms/token at a {args.prefix}-token prefix": ("ms_per_token_at_prefix", "{:.2f}")}
    shape = (f"vocab {vocab}, size {args.size}, train batch {args.batch} x {args.seq_len}, threads "
             f"{torch.get_num_threads()}")
    write(args, "lm", shape, "Language models: training and generation", columns, rows)
    print(f"device: {device_name(device)}")
    return rows


if __name__ == "__main__":
    main()
