from importlib import metadata

import pytest

import snn_ssm
from snn_ssm import registry


MODELS = ("binary_s4d", "binary_s4d_gsu", "pssm", "s4d", "s4d_lm", "spikingssm", "spikingssm_lm")


def test_builtin_entries_and_create():
    plugins = snn_ssm.list_plugins()
    for name in ("ssm_dendrite_lif", "lif", "spike_sampler"):
        assert set(plugins[name]) >= {"neutral", "snntorch", "spikingjelly"}
    assert snn_ssm.list_plugins(kind="model") == {m: ["neutral"] for m in MODELS}
    n = snn_ssm.create("ssm_dendrite_lif", channels=4, d_state=8)
    assert isinstance(n, snn_ssm.SSMDendriteLIF) and n.dendrite.d_state == 8


def test_register_and_conflicts(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {})

    @snn_ssm.register("toy")
    def toy(**kw):
        return kw

    assert snn_ssm.create("toy", a=1) == {"a": 1}
    with pytest.raises(ValueError, match="already registered"):
        snn_ssm.register("toy")(lambda: None)
    with pytest.raises(ValueError, match="already registered as a neuron"):
        snn_ssm.register("toy", kind="model")(lambda: None)
    with pytest.raises(ValueError, match="unknown name"):
        snn_ssm.create("nope")
    with pytest.raises(ValueError, match="framework must be"):
        snn_ssm.create("toy", framework="norse")
    with pytest.raises(ValueError, match="kind must be"):
        snn_ssm.register("x", kind="layer")


def test_entry_point_plugins_are_loaded(monkeypatch, tmp_path):
    (tmp_path / "toy_plugin.py").write_text(
        "import snn_ssm\n@snn_ssm.register('toy_plugin_neuron')\ndef make(**kw):\n    return ('toy', kw)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = metadata.EntryPoint(name="toy", value="toy_plugin", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry.metadata, "entry_points",
                        lambda group: [ep] if group == registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    assert "toy_plugin_neuron" in snn_ssm.list_plugins()
    assert snn_ssm.create("toy_plugin_neuron", x=2) == ("toy", {"x": 2})
