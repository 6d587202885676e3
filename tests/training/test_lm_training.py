"""Training, evaluating and sampling a language model with the CLI: the report, an exact resume with the state
carried between chunks, the spike-rate regulariser, and the text tasks' data."""
import json

import pytest
import torch

import snn_ssm
from snn_ssm.training.cli import eval_main, generate_main, train_main
from snn_ssm.training.lm import RateRegulariser, build_lm_task

TINY = ["--model", "spikingssm_lm", "--task", "kjv", "--set", "model.size=tiny", "train.epochs=2", "train.batch=4",
        "train.seq_len=32", "--limit-train", "24", "--limit-eval", "8", "--quiet", "--no-plots"]


def test_train_report_eval_and_generate(tmp_path, capsys):
    report = train_main([*TINY, "--out", str(tmp_path / "run")])
    test = report["test"]
    assert set(test) >= {"loss", "perplexity", "bits_per_byte", "tokens", "spike_rates", "ops_per_token",
                         "energy_uJ_per_token"}
    assert test["perplexity"] < 256 and 0 < test["mean_spike_rate"] < 1  # learnt something over uniform bytes
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("spike_rates" in e for e in lines) and any("val_perplexity" in e for e in lines)
    again = eval_main(["--checkpoint", str(tmp_path / "run")])
    assert again["perplexity"] == pytest.approx(test["perplexity"])
    capsys.readouterr()
    text = generate_main(["--checkpoint", str(tmp_path / "run"), "--prompt", "And God said", "--max-tokens", "20",
                          "--temperature", "0"])
    assert isinstance(text, str) and capsys.readouterr().out.startswith("And God said")
    with pytest.raises(SystemExit):
        generate_main(["--checkpoint", str(tmp_path / "run"), "--max-tokens", "0"])


def test_resume_with_carried_state_is_the_same_run(tmp_path):
    args = [*TINY, "--set", "train.carry_state=true", "train.rate_weight=1.0"]
    train_main([*args, "--out", str(tmp_path / "whole")])
    train_main([*args, "--out", str(tmp_path / "split"), "--max-steps", "9"])
    ckpt = torch.load(tmp_path / "split" / "last.pt", weights_only=False)
    assert ckpt["lm_state"] is not None and ckpt["batch_in_epoch"] > 0  # stopped mid-epoch, state kept
    train_main(["--model", "spikingssm_lm", "--task", "kjv", "--resume", str(tmp_path / "split"), "--quiet",
                "--no-plots", "--limit-train", "24", "--limit-eval", "8"])
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_rate_regulariser_penalises_only_above_the_target():
    torch.manual_seed(0)
    lm = snn_ssm.models.SpikingSSMLM(256, size="tiny")
    x, y = torch.randint(0, 256, (32, 2)), torch.randint(0, 256, (32, 2))
    with torch.no_grad(), RateRegulariser(lm, target=0.0, weight=2.0) as reg:
        lm(x, y)
        rates = reg.rates()
        assert float(reg.penalty()) == pytest.approx(2.0 * sum(r ** 2 for r in rates.values()), rel=1e-5)
    with torch.no_grad(), RateRegulariser(lm, target=1.0, weight=2.0) as reg:
        lm(x, y)
        assert float(reg.penalty()) == 0.0
    with RateRegulariser(lm, target=0.0, weight=1.0) as reg:
        lm(x, y)
        reg.penalty().backward()
    ln_vth = lm.blocks[0].layer.soma.ln_vth.grad
    assert ln_vth is not None and float(ln_vth.sum()) < 0  # the penalty asks for higher thresholds: fewer spikes


def test_wikitext_folder_gives_a_word_level_task(tmp_path):
    words = "the quick brown fox jumps over the lazy dog".split()
    for split, n in (("train", 300), ("valid", 40), ("test", 40)):
        lines = [" ".join(words[(i + j) % len(words)] for j in range(7)) for i in range(n)]
        (tmp_path / f"wiki.{split}.tokens").write_text("\n".join(lines) + "\n")
    task = build_lm_task("wikitext103", data_dir=tmp_path, seq_len=16, batch=4)
    assert task.d_input == len(set(words)) + 2  # the words, <eos>, <unk>
    x, y = task.collate([task.datasets["train"][i] for i in range(4)])
    assert x.shape == (16, 4) and task.tokenizer.decode(x[:8, 0]).startswith("the quick brown")
    with pytest.raises(FileNotFoundError, match="wiki.train.tokens"):
        build_lm_task("wikitext103", data_dir=tmp_path / "nowhere", seq_len=16, batch=4)
    with pytest.raises(SystemExit):
        train_main(["--model", "spikingssm", "--task", "kjv", "--quiet"])  # a classifier has no text config


def test_lm_loss_checks_the_batch_on_the_cpu_and_the_model_trusts_it(monkeypatch):
    from snn_ssm import _checks
    from snn_ssm.models import SpikingSSMLM
    from snn_ssm.training.lm import lm_loss

    lm = SpikingSSMLM(256, size="tiny")
    x, y = torch.randint(0, 256, (16, 2)), torch.randint(0, 256, (16, 2))
    torch.testing.assert_close(lm_loss(lm, (x, y), "cpu")[0], lm(x, y).mean())
    with pytest.raises(ValueError, match="targets holds token ids outside"):
        lm_loss(lm, (x, y.clone().fill_(256)), "cpu")
    with pytest.raises(ValueError, match="x holds token ids outside"):
        lm_loss(lm, (x.clone().fill_(-1), y), "cpu")
    seen = []
    check = SpikingSSMLM.check_values
    monkeypatch.setattr(SpikingSSMLM, "check_values",
                        lambda self, t, name="x": seen.append(name) or check(self, t, name))
    lm_loss(lm, (x, y), "cpu")
    assert seen == ["x", "targets"] and not _checks.trusted(x)  # once each, by the loss; none inside the model
