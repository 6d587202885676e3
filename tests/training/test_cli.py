"""The training CLI: a tiny run end to end, exact resumption, errors, eval, info, and DDP on two CPU processes."""
import contextlib
import json
import os
import subprocess
import sys

import pytest
import torch

from snn_ssm.__main__ import main
from snn_ssm.training.cli import eval_main, train_main

TINY = ["--set", "model.d_model=8", "model.n_layers=1", "model.d_state=4", "train.epochs=2", "train.batch=16",
        "--limit-train", "96", "--limit-eval", "64", "--quiet", "--no-plots", "--device", "cpu"]


def run(args):
    return train_main(args)


def final_state(folder):
    return torch.load(folder / "last.pt", weights_only=False)["model"]


@pytest.mark.parametrize("model, extra", [("spikingssm", ["model.dropout=0.1"]), ("pssm", ["model.dropout=0.1"])])
def test_killed_and_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path, model, extra, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    args = ["--model", model, "--task", "psmnist", *TINY[:6], *extra, *TINY[6:]]
    full = train_main([*args, "--out", str(a), "--val-every", "4"])
    stopped = train_main([*args, "--out", str(b), "--val-every", "4", "--max-steps", "7"])  # mid-epoch 2
    assert stopped["stopped_at_step"] == 7
    with pytest.raises(SystemExit):  # a resume continues the run's own model and task, named or left out
        train_main(["--task", "smnist", "--resume", str(b), *TINY[6:]])
    assert "was trained on 'psmnist', not 'smnist'" in capsys.readouterr().err
    resumed = train_main(["--resume", str(b), "--val-every", "4", *TINY[6:]])
    assert resumed["test"]["accuracy"] == full["test"]["accuracy"] and resumed["steps"] == full["steps"] == 12
    sa, sb = final_state(a), final_state(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    logged = [json.loads(line) for line in (a / "metrics.jsonl").read_text().splitlines()]
    assert any("val_accuracy" in r for r in logged) and any("loss" in r for r in logged)
    report = json.loads((a / "report.json").read_text())
    assert {"spike_rates", "ops_per_example", "energy_uJ_per_example"} <= set(report["test"])


def test_a_time_limit_stops_after_a_step_and_the_training_time_adds_up_over_resumes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["--model", "s4d", "--task", "smnist", *TINY]
    stopped = train_main([*args, "--out", str(run_dir), "--max-minutes", "1e-9"])
    assert stopped["stopped_at_step"] == 1  # the limit is checked after each step, so one always runs
    before = torch.load(run_dir / "last.pt", weights_only=False)["train_seconds"]
    assert before > 0
    report = train_main(["--model", "s4d", "--task", "smnist", "--resume", str(run_dir), *TINY[6:]])
    assert report["steps"] == 12 and report["train_seconds"] >= before
    seconds = [r["seconds"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
               if "val_accuracy" in r]
    assert len(seconds) == 2 and round(before, 2) <= seconds[0] <= seconds[1] <= report["train_seconds"]
    with pytest.raises(SystemExit) as e:
        train_main([*args, "--out", str(tmp_path / "other"), "--max-minutes", "0"])
    assert e.value.code == 2 and "--max-minutes must be a finite number > 0" in capsys.readouterr().err


def test_report_plots_and_eval(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    report = train_main(["--model", "binary_s4d_gsu", "--task", "smnist", *[a for a in TINY if a != "--no-plots"],
                   "--out", str(out)])
    n_test = report["test"]["examples"]  # an accuracy is a count of correct examples over the test set
    assert round(report["test"]["accuracy"] * n_test, 6) % 1 == 0 and report["test"]["spike_rates"]
    assert {p.name for p in out.glob("*.png")} == {"curves.png", "spike_rates.png", "raster.png"}
    result = eval_main(["--checkpoint", str(out), "--limit-eval", "64", "--device", "cpu"])
    assert result["examples"] == 64 and "energy per example" in capsys.readouterr().out


def test_listops_trains_from_a_generated_cache(tmp_path):
    report = train_main(["--model", "s4d", "--task", "listops", *TINY, "--cache-dir", str(tmp_path / "cache"),
                   "--listops-sizes", "96", "16", "16", "--listops-lengths", "10", "80", "--out", str(tmp_path / "r")])
    assert report["test"]["examples"] == 16


def test_listops_batching_is_random_by_default_stored_and_a_run_before_it_keeps_buckets(tmp_path, capsys):
    """New runs batch ListOps as the official pipeline does (random batches padded to their longest text) and store
    it; a checkpoint from before the option (no ``listops_batching`` in its data) resumes with the length buckets
    it trained with; a resume cannot switch."""
    from snn_ssm.training import loop

    data = ["--cache-dir", str(tmp_path / "cache"), "--listops-sizes", "96", "16", "16",
            "--listops-lengths", "10", "80"]
    batched = []
    original = loop.epoch_batches
    def loop_batches(*a, lengths=None, **k):
        batched.append(lengths is not None)
        return original(*a, lengths=lengths, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "epoch_batches", loop_batches)
        train_main(["--model", "s4d", "--task", "listops", *TINY, *data, "--out", str(tmp_path / "r"),
                    "--max-steps", "3"])
        ckpt = torch.load(tmp_path / "r" / "last.pt", weights_only=False)
        assert ckpt["data"]["listops_batching"] == "random" and not any(batched)
        del ckpt["data"]["listops_batching"]  # as a run from before the option stored it
        torch.save(ckpt, tmp_path / "r" / "last.pt")
        batched.clear()
        train_main(["--resume", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "cache"), "--max-steps", "4"])
        assert batched and all(batched)  # buckets, as that run trained
    assert torch.load(tmp_path / "r" / "last.pt", weights_only=False)["data"]["listops_batching"] == "bucket"
    with pytest.raises(SystemExit) as e:
        train_main(["--resume", str(tmp_path / "r"), "--listops-batching", "random"])
    assert e.value.code == 2 and "--listops-batching (bucket -> random)" in capsys.readouterr().err
    with pytest.raises(ValueError, match="listops_batching must be 'random' or 'bucket'"):
        loop.build_task("listops", cache_dir=tmp_path / "cache", listops_sizes=(96, 16, 16), listops_lengths=(10, 80),
                        listops_batching="sorted")


def test_user_errors_are_one_line(tmp_path, capsys):
    for argv, message in (
            (["--model", "resnet"], "invalid choice"),
            (["--set", "train.momentum=0.9"], "unknown train key 'momentum'"),
            (["--set", "optimizer.lr=1"], "must be model.<name>=<value>"),
            (["--data-dir", str(tmp_path / "nowhere")], "no train-images-idx3-ubyte"),
            (["--resume", str(tmp_path / "nothing")], "no checkpoint at")):
        with pytest.raises(SystemExit) as e:
            train_main([*argv, *TINY])
        assert e.value.code == 2 and message in capsys.readouterr().err, message
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit):
        train_main(["--resume", str(bad), *TINY])
    assert "is not an snn_ssm checkpoint" in capsys.readouterr().err
    run(["--model", "s4d", "--task", "smnist", *TINY, "--out", str(tmp_path / "s4d"), "--max-steps", "1"])
    with pytest.raises(SystemExit):
        train_main(["--model", "pssm", "--resume", str(tmp_path / "s4d"), *TINY])
    assert "holds a 's4d' model, not 'pssm'" in capsys.readouterr().err


def test_cpu_threads_one_by_default_on_a_gpu_as_given_otherwise_checked_and_restored(tmp_path, capsys, monkeypatch):
    from snn_ssm.training import loop
    from snn_ssm.training._args import cpu_threads

    default = torch.get_num_threads()
    with cpu_threads(None, "cpu") as n:
        assert n == default  # the CPU's own runs keep PyTorch's pool
    with cpu_threads(None, "cuda:0") as n:
        assert n == torch.get_num_threads() == 1  # the CPU only feeds a GPU
    assert torch.get_num_threads() == default  # and the caller's setting comes back
    for bad in (0, -2):
        with pytest.raises(ValueError, match="--cpu-threads must be a positive integer"), contextlib.ExitStack() as s:
            s.enter_context(cpu_threads(bad, "cpu"))
    seen = []
    for name in ("train", "evaluate"):  # what the commands run inside, spied on
        real = getattr(loop, name)
        monkeypatch.setattr(loop, name, lambda *a, _real=real, **k: seen.append(torch.get_num_threads()) or
                            _real(*a, **k))
    run(["--model", "s4d", "--task", "smnist", *TINY, "--out", str(tmp_path / "s4d"), "--max-steps", "1",
         "--cpu-threads", "1"])
    eval_main(["--checkpoint", str(tmp_path / "s4d"), "--device", "cpu", "--limit-eval", "16", "--cpu-threads", "1"])
    assert seen[0] == 1 and seen[-1] == 1 and torch.get_num_threads() == default
    with pytest.raises(SystemExit) as e:
        train_main([*TINY, "--cpu-threads", "0"])
    assert e.value.code == 2 and "--cpu-threads must be a positive integer, got 0" in capsys.readouterr().err
    assert torch.get_num_threads() == default


def test_info_lists_backends(capsys):
    assert main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["auto_backend"]["cpu"] in ("numba", "torch") and "torch" in info["versions"]


def test_ddp_on_two_cpu_processes_and_its_exact_resume(tmp_path):
    """Two processes (gloo): the run trains and reports; stopped mid-epoch and resumed, it ends with the same weights
    as the uninterrupted run (dropout on, so the resumed random streams matter too)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")

    def torchrun(*args):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
               "snn_ssm", "train", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]

    tiny = [*TINY[:6], "model.dropout=0.1", *TINY[6:]]
    full, part = tmp_path / "ddp", tmp_path / "ddp-resumed"
    torchrun("--model", "spikingssm", "--task", "smnist", *tiny, "--out", str(full))
    report = json.loads((full / "report.json").read_text())
    assert report["steps"] == 2 * (96 // (16 * 2)) and report["test"]["examples"] == 64
    torchrun("--model", "spikingssm", "--task", "smnist", *tiny, "--out", str(part), "--max-steps", "4")
    assert torch.load(part / "last.pt", weights_only=False)["step"] == 4  # one step into the second epoch
    torchrun("--model", "spikingssm", "--task", "smnist", "--resume", str(part), *TINY[6:])
    sa, sb = final_state(full), final_state(part)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert json.loads((part / "report.json").read_text())["test"] == report["test"]
