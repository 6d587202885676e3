"""Every public class and function has an example in its docstring, and every example gives the output it shows
(run as a doctest; lines marked ``# doctest: +SKIP`` need files a test machine does not have)."""
import doctest
import importlib
import inspect
import io

import pytest
import torch

import snn_ssm

MODULES = ["snn_ssm", "snn_ssm.layers", "snn_ssm.blocks", "snn_ssm.models", "snn_ssm.metrics", "snn_ssm.data",
           "snn_ssm.sdn", "snn_ssm.ops", "snn_ssm.training", "snn_ssm.functional.lif", "snn_ssm.functional.s4d",
           "snn_ssm.functional.s4", "snn_ssm.functional.surrogate", "snn_ssm.nir"]


def public_objects():
    seen, out = set(), []
    for name in MODULES:
        mod = importlib.import_module(name)
        for attr in getattr(mod, "__all__", []):
            obj = getattr(mod, attr)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and id(obj) not in seen:
                seen.add(id(obj))
                out.append(pytest.param(obj, id=f"{name}.{attr}"))
    return out


@pytest.mark.parametrize("obj", public_objects())
def test_public_object_has_a_running_example(obj, tmp_path, monkeypatch):
    pytest.importorskip("spikingjelly.activation_based")
    doc = inspect.getdoc(obj) or ""
    assert ">>>" in doc, f"{obj.__qualname__} has no example"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SNN_SSM_DATA", raising=False)
    globs = dict(vars(importlib.import_module(obj.__module__)), torch=torch, snn_ssm=snn_ssm)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    for test in doctest.DocTestFinder(recurse=False).find(obj, obj.__qualname__, globs=globs):
        report = io.StringIO()
        assert not runner.run(test, out=report.write).failed, report.getvalue()
