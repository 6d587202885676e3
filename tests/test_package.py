import subprocess
import sys


def test_import_is_quiet_and_does_not_import_frameworks():
    code = ("import logging, sys; logging.basicConfig(level=logging.DEBUG); import snn_ssm; "
            "assert 'snntorch' not in sys.modules and 'spikingjelly' not in sys.modules, sys.modules.keys()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and "snn_ssm" not in out.stderr


def test_demo_learns_in_150_steps(capsys):
    from snn_ssm.demo import main

    result = main(["--steps", "150", "--d-model", "32"])
    out = capsys.readouterr().out
    assert "test accuracy" in out and "mean spike rate" in out and result["steps"] == 150
    assert result["accuracy"] > 0.5  # chance is 0.1
    assert 0 < result["spike_rate"] < 1


def test_cli_help_and_unknown_command():
    from snn_ssm.__main__ import main

    assert main(["--help"]) == 0
    assert main(["nope"]) == 2
