"""Every command-line case the 2026-12 reliability probe found ending in a traceback, an unhelpful message or a
silently wrong run (``reliability_probe.md``: the tr./ev./rs./dm./st./sr. rows), replayed in process: each is now a
one-line ``error: ...`` naming what is wrong, exit status 2."""
import gzip
import struct

import numpy as np
import pytest
import torch

from snn_ssm.data import load_embedded
from snn_ssm.demo import main as demo
from snn_ssm.training.cli import eval_main, train_main
from snn_ssm.training.sdn_report import main as sdn_report
from snn_ssm.training.sdn_train import main as sdn_train

TINY = ["--set", "model.d_model=8", "model.n_layers=1", "model.d_state=8", "train.batch=16", "train.epochs=1",
        "--limit-train", "32", "--limit-eval", "16", "--device", "cpu", "--no-plots", "--quiet"]
SDN = ["--beta", "0.5", "--steps", "1", "--sequences", "16", "--length", "8", "--quiet"]


def _idx(path, array, code):
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny finished run, broken checkpoints made from it, and broken MNIST folders."""
    root = tmp_path_factory.mktemp("probe")
    train_main([*TINY, "--out", str(root / "run0")])
    good = torch.load(root / "run0" / "best.pt", weights_only=False)
    ckpts = root / "ckpts"
    ckpts.mkdir()
    torch.save({"model_name": "spikingssm"}, ckpts / "nokeys.pt")
    torch.save({**good, "model": {k: v for k, v in good["model"].items() if not k.startswith("encoder")}},
               ckpts / "missing_param.pt")
    torch.save({**good, "model": {**good["model"], "decoder.weight": torch.zeros(10, 16)}},
               ckpts / "shape_mismatch.pt")
    torch.save({**good, "model_name": "s4d"}, ckpts / "other_model.pt")
    (root / "run_norng").mkdir()
    torch.save({k: v for k, v in good.items() if k != "rng"}, root / "run_norng" / "last.pt")
    images, labels = load_embedded()
    images, labels = images[:200].numpy(), labels[:200].numpy().astype(np.uint8)
    for name in ("trunc_gz", "garbage_gz", "labels_oob", "float_images"):
        d = root / "data" / name
        d.mkdir(parents=True)
        for split in ("train", "t10k"):
            _idx(d / f"{split}-images-idx3-ubyte.gz", images, 0x08)
            _idx(d / f"{split}-labels-idx1-ubyte.gz", labels, 0x08)
    blob = (root / "data/trunc_gz/train-images-idx3-ubyte.gz").read_bytes()
    (root / "data/trunc_gz/train-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 3])
    (root / "data/garbage_gz/train-images-idx3-ubyte.gz").write_bytes(b"\x10\xda" + blob[2:200])
    _idx(root / "data/labels_oob/train-labels-idx1-ubyte.gz", np.full(200, 11, np.uint8), 0x08)
    _idx(root / "data/float_images/train-images-idx3-ubyte.gz", (images / 255).astype(">f4"), 0x0D)
    (root / "afile").write_text("x")
    return root


CASES = {  # id: (command, argv with R = the fixture's folder, words the message must contain)
    "tr.ep0": (train_main, TINY + ["--set", "train.epochs=0"], "train.epochs"),
    "tr.lrneg": (train_main, TINY + ["--set", "train.lr=-1"], "train.lr"),
    "tr.wdneg": (train_main, TINY + ["--set", "train.weight_decay=-1"], "train.weight_decay"),
    "tr.warm": (train_main, TINY + ["--set", "train.warmup=-5"], "train.warmup"),
    "tr.lt0": (train_main, TINY + ["--limit-train", "0"], "--limit-train"),
    "tr.ltneg": (train_main, TINY + ["--limit-train", "-5"], "--limit-train"),
    "tr.le0": (train_main, TINY + ["--limit-eval", "0"], "--limit-eval"),
    "tr.ckneg": (train_main, TINY + ["--ckpt-every", "-1"], "--ckpt-every"),
    "tr.ms0": (train_main, TINY + ["--max-steps", "0"], "--max-steps"),
    "tr.msneg": (train_main, TINY + ["--max-steps", "-3"], "--max-steps"),
    "tr.veneg": (train_main, TINY + ["--val-every", "-1"], "--val-every"),
    "rs.set": (train_main, ["--resume", "R/run0", "--set", "model.d_model=64", "train.lr=0.5", "--device", "cpu"],
               "model.d_model"),
    "tr.setk": (train_main, TINY + ["--set", "model.bogus=1"], "model.bogus"),
    "tr.setnoeq": (train_main, TINY + ["--set", "foo"], "KEY=VALUE"),
    "tr.b0": (train_main, TINY + ["--set", "train.batch=0"], "train.batch"),
    "tr.bneg": (train_main, TINY + ["--set", "train.batch=-4"], "train.batch"),
    "tr.lrstr": (train_main, TINY + ["--set", "train.lr=abc"], "train.lr"),
    "tr.seed": (train_main, TINY + ["--set", "train.seed=abc"], "train.seed"),
    "tr.seedf": (train_main, TINY + ["--set", "train.seed=1.5"], "train.seed"),
    "tr.dev": (train_main, TINY + ["--device", "bogus"], "--device"),
    "tr.outfile": (train_main, TINY + ["--out", "R/afile"], "is a file"),
    "tr.dtrunc": (train_main, TINY + ["--data-dir", "R/data/trunc_gz"], "train-images"),
    "tr.dgarb": (train_main, TINY + ["--data-dir", "R/data/garbage_gz"], "train-images"),
    "tr.dlab": (train_main, TINY + ["--data-dir", "R/data/labels_oob"], "labels"),
    "tr.dfloat": (train_main, TINY + ["--data-dir", "R/data/float_images"], "uint8"),
    "tr.limp": (train_main, ["--task", "listops", *TINY, "--listops-lengths", "1", "3", "--listops-sizes", "20",
                             "5", "5", "--cache-dir", "R/cache"], "--listops-lengths"),
    "ev.nokeys": (eval_main, ["--checkpoint", "R/ckpts/nokeys.pt", "--device", "cpu"], "nokeys.pt"),
    "ev.missing_param": (eval_main, ["--checkpoint", "R/ckpts/missing_param.pt", "--device", "cpu"], "do not fit"),
    "ev.shape_mismatch": (eval_main, ["--checkpoint", "R/ckpts/shape_mismatch.pt", "--device", "cpu"],
                          "do not fit"),
    "ev.other_model": (eval_main, ["--checkpoint", "R/ckpts/other_model.pt", "--device", "cpu"], "do not fit"),
    "ev.dev": (eval_main, ["--checkpoint", "R/run0", "--device", "bogus"], "--device"),
    "rs.nokeys": (train_main, TINY + ["--resume", "R/ckpts/nokeys.pt"], "missing"),
    "rs.missing_param": (train_main, ["--resume", "R/ckpts/missing_param.pt", "--device", "cpu", "--out",
                                      "R/rs_missing"], "do not fit"),
    "rs.shape_mismatch": (train_main, ["--resume", "R/ckpts/shape_mismatch.pt", "--device", "cpu", "--out",
                                       "R/rs_shape"], "do not fit"),
    "rs.norng": (train_main, ["--resume", "R/run_norng", "--device", "cpu"], "rng"),
    "dm.lrneg": (demo, ["--steps", "2", "--d-model", "8", "--layers", "1", "--lr", "-1"], "--lr"),
    "dm.seednan": (demo, ["--seconds", "nan", "--d-model", "8", "--layers", "1"], "--seconds"),
    "dm.dm0": (demo, ["--steps", "1", "--d-model", "0"], "--d-model"),
    "dm.l0": (demo, ["--steps", "1", "--layers", "0"], "--layers"),
    "dm.b0": (demo, ["--steps", "2", "--d-model", "8", "--layers", "1", "--batch", "0"], "--batch"),
    "dm.lrnan": (demo, ["--steps", "2", "--d-model", "8", "--layers", "1", "--batch", "8", "--lr", "nan"], "--lr"),
    "dm.dmiss": (demo, ["--steps", "1", "--data-dir", "/nonexistent"], "/nonexistent"),
    "dm.dtrunc": (demo, ["--steps", "1", "--data-dir", "R/data/trunc_gz"], "download it again"),
    "st.out": (sdn_train, SDN + ["--out", "/proc/sdn"], "--out"),
    "st.dev": (sdn_train, SDN + ["--device", "bogus"], "--device"),
    "sr.out": (sdn_report, ["--ssm-steps", "0", "--beta", "0.125", "--out", "/proc/sdnrep"], "--out"),
    "sr.beta": (sdn_report, ["--ssm-steps", "0", "--beta", "0.3", "--out", "R/sr2"], "no shipped SDN"),
}
if not torch.cuda.is_available():
    CASES["tr.cuda"] = (train_main, TINY + ["--device", "cuda"], "no CUDA GPU")


@pytest.mark.parametrize("case", list(CASES))
def test_cli_case_is_a_one_line_error(case, run, capsys):
    command, argv, words = CASES[case]
    argv = [a.replace("R/", f"{run}/") for a in argv]
    if command is train_main and "--resume" not in argv and "--out" not in argv:
        argv += ["--out", str(run / f"out_{case}")]
    with pytest.raises(SystemExit) as e:
        command(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err
    assert err.startswith("error: ") and "\n" not in err and words in err, err
