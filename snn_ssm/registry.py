"""One place to register neurons and models by name, for every framework.

``register(name, kind=..., framework=...)`` decorates a class or factory. ``create(name, framework=..., **kw)``
builds one. Framework adapters are imported on first use, so ``import snn_ssm`` never imports snnTorch or
SpikingJelly. Third-party packages add entries through the ``snn_ssm.plugins`` entry-point group: each entry point
names a module (or an object inside one); loading it runs its ``@register`` decorators.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
from importlib import metadata

__all__ = ["register", "create", "lookup", "list_plugins", "FRAMEWORKS"]

log = logging.getLogger(__name__)

FRAMEWORKS = (None, "snntorch", "spikingjelly")
KINDS = ("neuron", "model")
_ADAPTERS = {"snntorch": "snn_ssm.snntorch", "spikingjelly": "snn_ssm.spikingjelly"}
ENTRY_POINT_GROUP = "snn_ssm.plugins"

# name -> {"kind": str, "impl": {framework: factory}}
_REGISTRY: dict[str, dict] = {}
_entry_points_loaded = False


def _check_framework(framework):
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, got {framework!r}")


def register(name: str, *, kind: str = "neuron", framework: str | None = None):
    """Decorator: register a class or factory as ``name`` for ``framework`` (``None`` = framework-neutral).

    Examples::

        >>> from spikingjelly.activation_based.neuron import BaseNode
        >>> @register("my_lif", framework="spikingjelly")
        ... class MyLIF(BaseNode): ...
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    _check_framework(framework)

    def deco(obj):
        entry = _REGISTRY.setdefault(name, {"kind": kind, "impl": {}})
        if entry["kind"] != kind:
            raise ValueError(f"{name!r} is already registered as a {entry['kind']}, not a {kind}")
        previous = entry["impl"].get(framework)
        if previous is not None and previous is not obj:
            raise ValueError(f"{name!r} is already registered for framework={framework!r} by {previous!r}")
        entry["impl"][framework] = obj
        return obj

    return deco


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken third-party plugin must not break snn_ssm; say which one and why
            log.warning("could not load snn_ssm plugin %r (%s): %s", ep.name, ep.value, exc)


def _load_adapter(framework: str) -> None:
    try:
        importlib.import_module(_ADAPTERS[framework])
    except ImportError as exc:
        raise ImportError(f"framework={framework!r} needs {framework} installed: "
                          f"pip install 'snn_ssm[{framework}]' ({exc})") from exc


def lookup(name: str, framework: str | None = None):
    """The class or factory registered as ``name`` for ``framework`` (what :func:`create` calls).

    Examples::

        >>> lookup("lif").__name__, lookup("lif", framework="snntorch").__module__
        ('LIF', 'snn_ssm.snntorch')
    """
    _check_framework(framework)
    _load_entry_points()
    if framework is not None:
        _load_adapter(framework)
    if name not in _REGISTRY:
        raise ValueError(f"unknown name {name!r}; registered: {sorted(_REGISTRY)}")
    impl = _REGISTRY[name]["impl"]
    if framework not in impl:
        have = sorted("neutral" if f is None else f for f in impl)
        raise ValueError(f"{name!r} is not available for framework={framework!r}; it is registered for {have}")
    return impl[framework]


def create(name: str, framework: str | None = None, **kwargs):
    """Build the neuron or model registered as ``name`` for ``framework`` with ``kwargs``.

    Examples::

        >>> neuron = create("ssm_dendrite_lif", channels=64)
        >>> sj_neuron = create("lif", framework="spikingjelly", step_mode="m")
    """
    return lookup(name, framework)(**kwargs)


def list_plugins(kind: str | None = None) -> dict[str, list[str]]:
    """Registered names (optionally of one ``kind``) with the frameworks each is available for.

    Adapters whose framework is installed are loaded first, so their entries are listed too.

    Examples::

        >>> sorted(list_plugins(kind="model"))[:3]
        ['binary_s4d', 'binary_s4d_gsu', 'pssm']
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
    _load_entry_points()
    for framework in _ADAPTERS:
        with contextlib.suppress(ImportError):  # a framework that is not installed has no entries to list
            _load_adapter(framework)
    return {name: sorted("neutral" if f is None else f for f in e["impl"])
            for name, e in sorted(_REGISTRY.items()) if kind is None or e["kind"] == kind}
