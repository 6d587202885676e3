"""What keeps a run honest: atomic checkpoints, a resume that applies nothing silently and rebuilds the run's own
data, run folders that never mix two runs, a best checkpoint that records its own score, and one-line errors
(exit 2) for every command-line mistake a user makes."""
import json

import pytest
import torch

from snn_ssm.demo import main as demo_main
from snn_ssm.training import loop
from snn_ssm.training.cli import eval_main, train_main

TINY = ["--set", "model.d_model=8", "model.n_layers=1", "model.d_state=4", "train.epochs=1", "train.batch=16",
        "--limit-train", "48", "--limit-eval", "32", "--quiet", "--no-plots", "--device", "cpu"]


def error_of(fn, argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        fn(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    loop.atomic_save({"step": 1}, path)

    def dies_halfway(obj, f):
        f.write(b"partial")
        raise KeyboardInterrupt  # the kill lands inside the write

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        loop.atomic_save({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path)["step"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_resume_refuses_overrides_and_other_data_but_rebuilds_its_own(tmp_path, capsys):
    run = tmp_path / "run"
    train_main([*TINY, "--out", str(run), "--max-steps", "2"])
    ckpt = torch.load(run / "last.pt", weights_only=False)
    assert ckpt["data"]["limit_train"] == 48 and ckpt["data"]["limit_eval"] == 32
    err = error_of(train_main, ["--resume", str(run), "--set", "model.d_model=64", "train.lr=0.5", "--quiet",
                                "--no-plots", "--device", "cpu"], capsys)
    assert "model.d_model (8 -> 64)" in err and "train.lr" in err
    err = error_of(train_main, ["--resume", str(run), "--limit-train", "16", "--quiet", "--device", "cpu"], capsys)
    assert "--limit-train (48 -> 16)" in err
    # no data flags: the run's own data (48 training examples: 3 steps of 16 in its one epoch)
    report = train_main(["--resume", str(run), "--quiet", "--no-plots", "--device", "cpu"])
    assert report["steps"] == 3 and report["test"]["examples"] == 32
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)  # nothing logged twice


def test_a_run_folder_holds_one_run(tmp_path, capsys):
    run = tmp_path / "run"
    first = train_main([*TINY, "--out", str(run)])
    err = error_of(train_main, ["--model", "s4d", *TINY, "--out", str(run)], capsys)
    assert "already holds a run" in err and "--overwrite" in err
    best = torch.load(run / "best.pt", weights_only=False)
    assert best["best_val"] == first["best_val_accuracy"] >= 0  # the score of the checkpoint it is stored in
    train_main(["--model", "s4d", *TINY, "--out", str(run), "--overwrite"])
    assert torch.load(run / "best.pt", weights_only=False)["model_name"] == "s4d"
    assert all(json.loads(line)["step"] <= 3 for line in (run / "metrics.jsonl").read_text().splitlines())


def test_broken_checkpoints_are_named_errors(tmp_path, capsys):
    run = tmp_path / "run"
    train_main([*TINY, "--out", str(run)])
    ckpt = torch.load(run / "best.pt", weights_only=False)
    broken = {"nokeys.pt": {"model_name": "spikingssm"},
              "missing_param.pt": {**ckpt, "model": {k: v for k, v in ckpt["model"].items() if "encoder" not in k}},
              "truncated.pt": None}
    for name, obj in broken.items():
        if obj is None:
            (tmp_path / name).write_bytes((run / "best.pt").read_bytes()[:100])
        else:
            torch.save(obj, tmp_path / name)
        err = error_of(eval_main, ["--checkpoint", str(tmp_path / name), "--device", "cpu"], capsys)
        assert name in err
    err = error_of(train_main, ["--resume", str(tmp_path / "missing_param.pt"), "--quiet", "--device", "cpu",
                                "--out", str(tmp_path / "r")], capsys)
    assert "do not fit" in err


@pytest.mark.parametrize("argv, expected", [
    (["--set", "model.bogus=1"], "model.bogus is not an option"),
    (["--set", "foo"], "must be KEY=VALUE"),
    (["--set", "train.batch=0"], "train.batch must be a positive int"),
    (["--set", "train.lr=-1"], "train.lr must be a finite number > 0"),
    (["--set", "train.lr=abc"], "train.lr must be a finite number > 0"),
    (["--set", "train.seed=1.5"], "train.seed must be an int"),
    (["--set", "train.epochs=0"], "train.epochs must be a positive int"),
    (["--set", "train.warmup=-5"], "train.warmup must be an int >= 0"),
    (["--limit-train", "0"], "--limit-train must be a positive number"),
    (["--limit-eval", "-5"], "--limit-eval must be a positive number"),
    (["--max-steps", "0"], "--max-steps must be a positive integer"),
    (["--ckpt-every", "-1"], "--ckpt-every must be a positive integer"),
    (["--device", "bogus"], "is not a device"),
])
def test_train_mistakes_are_one_line_errors(tmp_path, capsys, argv, expected):
    assert expected in error_of(train_main, [*TINY, *argv, "--out", str(tmp_path / "r")], capsys)


def test_devices_data_and_demo_values(tmp_path, capsys):
    if not torch.cuda.is_available():
        assert "no CUDA GPU" in error_of(train_main, [*TINY, "--device", "cuda", "--out", str(tmp_path / "r")],
                                         capsys)
    (tmp_path / "afile").write_text("x")
    assert "is a file" in error_of(train_main, [*TINY, "--out", str(tmp_path / "afile")], capsys)
    data = tmp_path / "mnist"
    data.mkdir()
    (data / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 20)  # a truncated .gz
    (data / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    assert "download it again" in error_of(train_main, [*TINY, "--data-dir", str(data), "--out",
                                                        str(tmp_path / "r2")], capsys)
    for argv, expected in ((["--d-model", "0"], "--d-model"), (["--batch", "0"], "--batch"),
                           (["--lr", "nan"], "--lr"), (["--lr", "-1"], "--lr"), (["--seconds", "nan"], "--seconds"),
                           (["--data-dir", str(tmp_path / "none")], "no train-images")):
        assert expected in error_of(demo_main, ["--steps", "1", *argv], capsys)


def test_precision_is_stored_applied_and_kept_on_resume(tmp_path, capsys):
    run = tmp_path / "bf16"
    train_main([*TINY, "--precision", "bf16-mixed", "--out", str(run), "--max-steps", "1"])
    ckpt = torch.load(run / "last.pt", weights_only=False)
    assert ckpt["config"]["train"]["precision"] == "bf16-mixed"
    err = error_of(train_main, ["--resume", str(run), "--precision", "32", "--quiet", "--device", "cpu"], capsys)
    assert "train.precision ('bf16-mixed' -> '32')" in err
    report = train_main(["--resume", str(run), "--quiet", "--no-plots", "--device", "cpu"])
    assert report["steps"] == 3 and report["test"]["examples"] == 32
    assert "needs a CUDA device" in error_of(train_main, [*TINY, "--precision", "16-mixed", "--out",
                                                          str(tmp_path / "fp16")], capsys)
    full = train_main([*TINY, "--out", str(tmp_path / "fp32")])  # the default on a CPU: float32
    assert full["config"]["train"]["precision"] == "32"
    from snn_ssm.training.configs import default_precision
    assert default_precision("cuda") == default_precision(torch.device("cuda:0"), "pssm") == "bf16-mixed"
    assert default_precision("cuda", "binary_s4d_gsu") == "32"  # faster in float32 on a GPU (measured)


def test_compile_is_stored_applied_to_the_training_steps_and_kept_on_resume(tmp_path, capsys, monkeypatch):
    """``train.compile`` runs the training steps through torch.compile with the named backend (``--compile``:
    inductor). aot_eager traces and runs the same operations, so its run equals the eager run exactly, resumed or
    not; a resume refuses to switch compilation on or off (that would not be the same run)."""
    eager = train_main([*TINY, "--out", str(tmp_path / "eager")])
    assert eager["config"]["train"]["compile"] is False
    traced = tmp_path / "aot"
    args = [*TINY[:6], "train.compile=aot_eager", *TINY[6:]]
    train_main([*args, "--out", str(traced), "--max-steps", "2"])
    assert "train.compile (False -> True)" in error_of(
        train_main, ["--resume", str(tmp_path / "eager"), "--compile", "--quiet", "--device", "cpu"], capsys)
    resumed = train_main(["--resume", str(traced), "--quiet", "--no-plots", "--device", "cpu"])
    assert resumed["config"]["train"]["compile"] == "aot_eager" and resumed["steps"] == eager["steps"] == 3
    a = torch.load(tmp_path / "eager" / "last.pt", weights_only=False)["model"]
    b = torch.load(traced / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    backends = []
    monkeypatch.setattr(loop.torch, "compile", lambda model, backend: backends.append(backend) or model)
    flagged = train_main([*TINY, "--compile", "--out", str(tmp_path / "flag"), "--max-steps", "1"])
    assert backends == ["inductor"]
    assert torch.load(tmp_path / "flag" / "last.pt", weights_only=False)["config"]["train"]["compile"] is True
    assert flagged["stopped_at_step"] == 1
    assert "train.compile must be true, false or a torch.compile backend" in error_of(
        train_main, [*TINY[:6], "train.compile=fast", *TINY[6:], "--out", str(tmp_path / "bad")], capsys)


def test_precision_scope_autocasts_and_restores_tf32():
    with loop.precision_scope("bf16-mixed", "cpu"):
        assert torch.nn.Linear(2, 2)(torch.rand(1, 2)).dtype == torch.bfloat16
    before = torch.backends.cuda.matmul.allow_tf32
    with loop.precision_scope("tf32", "cpu"):
        assert torch.backends.cuda.matmul.allow_tf32
    assert torch.backends.cuda.matmul.allow_tf32 == before


def test_the_loop_checks_a_batch_on_the_cpu_then_trusts_it_inside_the_model(monkeypatch):
    """``_forward`` runs the classifier's value checks on the batch where it was collated (the CPU), then calls the
    model inside ``checked()``, so the model does not check (and, on a GPU, wait) again; bad values still fail."""
    import snn_ssm
    from snn_ssm import _checks

    tokens = snn_ssm.SpikingSSM(18, 10, d_model=8, n_layers=1, encoder="embedding")
    floats = snn_ssm.SpikingSSM(1, 10, d_model=8, n_layers=1)
    ids, lengths = torch.randint(0, 18, (12, 3)), torch.tensor([12, 5, 1])
    out, y = loop._forward(tokens, (ids, torch.arange(3), lengths), "cpu")
    assert out.shape == (3, 10) and torch.equal(y, torch.arange(3))
    torch.testing.assert_close(out, tokens(ids, lengths))  # the same model output as a direct call
    with pytest.raises(ValueError, match="outside the vocabulary"):
        loop._forward(tokens, (ids.clone().fill_(18), torch.arange(3), lengths), "cpu")
    with pytest.raises(ValueError, match="outside the vocabulary"):  # a direct call checks for itself
        tokens(ids.clone().fill_(-1))
    with pytest.raises(ValueError, match=r"lengths must be \[B=3\] with values in \[1, T=12\]"):
        loop._forward(tokens, (ids, torch.arange(3), torch.tensor([13, 1, 1])), "cpu")
    bad = torch.rand(20, 2, 1)
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        loop._forward(floats, (bad, torch.arange(2)), "cpu")
    with pytest.raises(ValueError, match="NaN or Inf"):
        floats(bad)
    calls = []
    check = snn_ssm.models.backbone.SequenceClassifier.check_values
    monkeypatch.setattr(snn_ssm.models.backbone.SequenceClassifier, "check_values",
                        lambda self, x: calls.append(x.device.type) or check(self, x))
    loop._forward(tokens, (ids, torch.arange(3), lengths), "cpu")
    tokens(ids)
    assert calls == ["cpu", "cpu"]  # once from the loop, once from the direct call: never twice for one batch
    finite = []  # the trust of every finite check of a tensor named x (the model's and its layers')
    monkeypatch.setattr(_checks, "check_finite",
                        lambda x, name: finite.append(_checks.trusted(x)) if name == "x" else None)
    loop._forward(floats, (torch.rand(20, 2, 1), torch.arange(2)), "cpu")
    under_loop, finite[:] = list(finite), []
    floats(torch.rand(20, 2, 1))
    assert under_loop and all(under_loop)  # the loop checked on the CPU: no check in the model reduces again
    assert finite.count(False) == 1  # a direct call: the model's entry check, once


def test_evaluating_restores_the_training_flag_and_monitors_only_when_asked():
    import snn_ssm

    model = snn_ssm.SpikingSSM(1, 10, d_model=8, n_layers=1).train()
    with pytest.raises(RuntimeError, match="mid-evaluation"):
        with loop.evaluating(model, monitor=False) as monitored:
            assert not model.training
            raise RuntimeError("mid-evaluation")
    assert model.training  # restored on the error too
    with loop.evaluating(model, monitor=False) as monitored:
        model(torch.randn(2, 20, 1))
    assert monitored(2, "example") == {}
    with loop.evaluating(model.eval(), monitor=True) as monitored:
        model(torch.randn(2, 20, 1))
    fields = monitored(2, "example")
    assert not model.training and set(fields["spike_rates"]) and "energy_uJ_per_example" in fields
