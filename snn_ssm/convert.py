"""Convert models: the LIF-family neurons of an snnTorch or SpikingJelly model to snn_ssm neurons
(:func:`swap_neurons`, one table for both frameworks), and SDN-mode somas to the exact neuron (:func:`to_exact`)."""
from __future__ import annotations

import inspect
import logging
import sys
import warnings

import torch
from torch import nn

from .functional.surrogate import DEFAULT_ALPHA
from .layers.neurons import LIF as NeutralLIF
from .layers.soma import LIFSoma
from .ops.lif_scan import KERNEL_SURROGATES
from .registry import create, lookup

__all__ = ["swap_neurons", "to_exact", "named_surrogate", "MODULE_MAP"]

log = logging.getLogger(__name__)


def _scalar(value, name: str) -> float:
    t = torch.as_tensor(value).detach()
    if t.numel() != 1:
        raise ValueError(f"cannot carry over a per-neuron {name} of shape {tuple(t.shape)}; "
                         f"pass {name} explicitly to swap_neurons")
    return float(t)


# Host surrogates that are ours under another name, with the name of their sharpness. All three frameworks define
# these with the same gradient (atan: (α/2)/(1 + (πα x/2)²); sigmoid: α σ(αx)(1 − σ(αx)); fast_sigmoid:
# 1/(1 + α|x|)²); snnTorch fires on x > 0, we and SpikingJelly on x >= 0, which differs only at equality.
_SNNTORCH_SURROGATES = {"atan": ("atan", "alpha"), "sigmoid": ("sigmoid", "slope"),
                        "fast_sigmoid": ("fast_sigmoid", "slope")}
_SPIKINGJELLY_SURROGATES = {"ATan": "atan", "Sigmoid": "sigmoid"}
_SURROGATE_KEYS = {"surrogate", "alpha", "spike_grad", "surrogate_function"}


def named_surrogate(fn) -> tuple[str, float] | None:
    """``(name, alpha)`` of our surrogate that equals the host surrogate ``fn`` (an snnTorch ``atan``/``sigmoid``/
    ``fast_sigmoid`` closure or a SpikingJelly ``ATan``/``Sigmoid`` module), else ``None``.

    Examples::

        >>> from spikingjelly.activation_based import surrogate
        >>> named_surrogate(surrogate.ATan(alpha=3.0)), named_surrogate(lambda x: x > 0)
        (('atan', 3.0), None)
    """
    if fn is None:
        return None
    module = getattr(fn, "__module__", "") or type(fn).__module__
    if module.startswith("snntorch.") and getattr(fn, "__name__", "") == "inner":
        factory = fn.__qualname__.split(".")[0]
        if factory in _SNNTORCH_SURROGATES:
            name, arg = _SNNTORCH_SURROGATES[factory]
            value = inspect.getclosurevars(fn).nonlocals.get(arg)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return name, float(value)
    if type(fn).__module__.startswith("spikingjelly.") and type(fn).__name__ in _SPIKINGJELLY_SURROGATES:
        if getattr(fn, "spiking", True) and isinstance(getattr(fn, "alpha", None), (int, float)):
            return _SPIKINGJELLY_SURROGATES[type(fn).__name__], float(fn.alpha)
    return None


def _surrogate_options(fn, host_key: str) -> dict:
    """The keyword arguments that give the new neuron ``fn``'s surrogate: ours by name when it is one of ours (the
    kernels then run it), else the callable itself under ``host_key``."""
    if fn is None:
        return {}
    named = named_surrogate(fn)
    if named is not None:
        name, alpha = named
        return {"surrogate": name, "alpha": None if alpha == DEFAULT_ALPHA[name] else alpha}
    return {host_key: fn}


def _from_spikingjelly(m) -> dict | None:
    """Keyword arguments for our SpikingJelly neuron reproducing ``m``, or ``None`` if ``m`` is not swappable."""
    if "spikingjelly" not in sys.modules:
        return None
    from spikingjelly.activation_based import neuron as sjn

    learn_beta = isinstance(m, sjn.ParametricLIFNode)  # PLIF's leak is learned: so is the new neuron's
    if learn_beta:
        tau = 1.0 / float(torch.sigmoid(m.w.detach()))
    elif isinstance(m, sjn.LIFNode):
        tau = float(m.tau)
    elif isinstance(m, sjn.IFNode):
        tau = None
    else:
        return None
    theta = float(m.v_threshold)
    # LIFNode: v <- v + (v_reset - v + x)/tau (decay_input) or v + (v_reset - v)/tau + x. In threshold units
    # u = v/theta (v_reset = 0 or soft reset) this is u <- beta*u + x/v_th with beta = 1 - 1/tau and
    # v_th = theta*tau (decay_input) or theta.
    beta = 1.0 if tau is None else 1.0 - 1.0 / tau
    v_th = theta * (tau if tau is not None and getattr(m, "decay_input", False) else 1.0)
    kw = dict(beta=beta, v_th=v_th, detach_reset=bool(m.detach_reset), step_mode=m.step_mode,
              learn_beta=learn_beta, **_surrogate_options(m.surrogate_function, "surrogate_function"))
    if m.v_reset is None:
        kw["reset"] = "soft"
    else:
        kw.update(reset="hard", v_reset=float(m.v_reset) / theta)
    return kw


def _from_snntorch(m) -> dict | None:
    if "snntorch" not in sys.modules:
        return None
    import snntorch as snn

    if not isinstance(m, snn.Leaky) or isinstance(m, NeutralLIF):
        return None
    if m.inhibition or m.state_quant:
        raise ValueError("cannot swap an snnTorch Leaky with inhibition or state_quant: no equivalent here")
    if _scalar(m.graded_spikes_factor, "graded_spikes_factor") != 1.0:
        raise ValueError("cannot swap an snnTorch Leaky with graded spikes (graded_spikes_factor != 1)")
    if m.reset_mechanism == "subtract" and m.reset_delay:
        log.warning("snnTorch Leaky(reset_mechanism='subtract', reset_delay=True) subtracts the threshold after "
                    "the leak of the next step; the swapped neuron subtracts in the same step (reset_delay=False)")
    return dict(beta=min(max(_scalar(m.beta, "beta"), 0.0), 1.0), threshold=_scalar(m.threshold, "threshold"),
                **_surrogate_options(m.spike_grad, "spike_grad"), init_hidden=m.init_hidden, output=m.output,
                learn_beta=isinstance(m.beta, nn.Parameter), learn_threshold=isinstance(m.threshold, nn.Parameter),
                reset_mechanism=m.reset_mechanism)


def _scalar_parameters(m, host: str) -> tuple[float, float]:
    """``(β, v_th)`` of our neuron ``m`` as the host's scalars; a ``ValueError`` when the host cannot hold them."""
    if m.beta.numel() != 1:
        raise ValueError(f"cannot convert {type(m).__name__} with a per-channel beta to {host}: its leak is one "
                         f"number")
    v_th = m.v_th.detach()
    if not bool((v_th == v_th.reshape(-1)[0]).all()):
        raise ValueError(f"cannot convert {type(m).__name__} with per-channel thresholds to {host}: its threshold "
                         f"is one number (they differ after training; keep the snn_ssm neuron)")
    return float(m.beta.reshape(-1)[0]), float(v_th.reshape(-1)[0])


def _host_surrogate(m, library: str):
    """The host's own surrogate object when it equals ours, else our (picklable, same-function) spike function."""
    fire = m.fire
    name = getattr(fire, "name", None)
    if library == "snntorch":
        from snntorch import surrogate

        makers = {"atan": lambda a: surrogate.atan(alpha=a), "sigmoid": lambda a: surrogate.sigmoid(slope=a),
                  "fast_sigmoid": lambda a: surrogate.fast_sigmoid(slope=a)}
    else:
        from spikingjelly.activation_based import surrogate

        makers = {"atan": lambda a: surrogate.ATan(alpha=a), "sigmoid": lambda a: surrogate.Sigmoid(alpha=a)}
    return makers[name](fire.alpha) if name in makers else fire


def _to_snntorch(m):
    """``snntorch.Leaky`` reproducing our snnTorch ``LIF`` ``m`` (same spikes; its ``mem`` is ours times v_th)."""
    import snntorch as snn

    from .snntorch import LIF as FaceLIF

    if type(m) is not FaceLIF:
        return None
    if m.reset_kind == "hard" and m.v_reset != 0:
        raise ValueError("cannot convert a LIF with v_reset != 0 to snntorch.Leaky: it resets to 0")
    beta, v_th = _scalar_parameters(m, "snntorch.Leaky")
    return snn.Leaky(beta=beta, threshold=v_th, spike_grad=_host_surrogate(m, "snntorch"),
                     init_hidden=m.init_hidden, output=m.output, learn_beta=isinstance(m.beta, nn.Parameter),
                     learn_threshold=m.learn_threshold, reset_mechanism=m.reset_mechanism, reset_delay=False)


def _to_spikingjelly(m):
    """SpikingJelly's ``LIFNode`` (``IFNode`` for β = 1) reproducing our SpikingJelly ``LIF`` ``m``."""
    from spikingjelly.activation_based import neuron as sjn

    from .spikingjelly import LIF as FaceLIF

    if type(m) is not FaceLIF:
        return None
    if m.reset_kind == "none" or (m.reset_kind == "hard" and m.v_reset != 0):
        raise ValueError("SpikingJelly's LIFNode resets (hard to v_reset = 0 with its decay towards 0, or soft): "
                         f"cannot convert reset={m.reset_kind!r}, v_reset={m.v_reset:g}")
    if isinstance(m.beta, nn.Parameter):
        raise ValueError("cannot convert a LIF with a learnable beta to LIFNode (ParametricLIFNode learns the leak "
                         "through a sigmoid, not the same parameter)")
    beta, v_th = _scalar_parameters(m, "LIFNode")
    kw = dict(v_threshold=v_th, v_reset=None if m.reset_kind == "soft" else 0.0, detach_reset=m.detach_reset,
              surrogate_function=_host_surrogate(m, "spikingjelly"), step_mode=m.step_mode)
    if beta == 1.0:
        return sjn.IFNode(**kw)
    return sjn.LIFNode(tau=1.0 / (1.0 - beta), decay_input=False, **kw)


#: The conversion table, for each host framework: the function that reads one of its modules and returns the keyword
#: arguments of the snn_ssm neuron that reproduces it (``None``: not a neuron we replace), and the function that
#: turns one of our neurons back into the host's own (``to="host"``).
MODULE_MAP = {"spikingjelly": (_from_spikingjelly, _to_spikingjelly), "snntorch": (_from_snntorch, _to_snntorch)}


def swap_neurons(model: nn.Module, to: str = "ssm_dendrite_lif", **kwargs) -> nn.Module:
    """Replace every SpikingJelly ``LIFNode``/``IFNode``/``ParametricLIFNode`` and snnTorch ``Leaky`` in ``model``.

    Each replacement is our registered neuron ``to`` (a LIF-family neuron) for the same framework, with leak,
    threshold, reset, step mode and surrogate carried over where they map (see :mod:`snn_ssm.spikingjelly` and
    :mod:`snn_ssm.snntorch` for the mappings); a learnable leak (``ParametricLIFNode``, ``Leaky(learn_beta=True)``)
    stays learnable. A host surrogate that is one of ours (snnTorch's ``atan``/``sigmoid``/``fast_sigmoid``,
    SpikingJelly's ``ATan``/``Sigmoid``, any α) becomes ours by name, so the fused kernels run it; any other
    surrogate is kept as a callable, which runs the torch loop, and a ``UserWarning`` says so. ``kwargs`` are passed
    to every new neuron and win over carried-over values (a ``surrogate``/``alpha`` given here replaces the carried
    one). A model without a neuron to replace is returned unchanged with a ``UserWarning``. Nested
    containers are searched; a neuron passed as ``model`` itself is returned replaced. New neurons infer their
    channel count at the first call, so run one batch before building the optimizer. SpikingJelly's reset cache
    of ``model`` is invalidated.

    ``to="host"`` goes back: every snn_ssm ``LIF`` of the snnTorch or SpikingJelly face becomes the host's own
    ``snntorch.Leaky`` / ``LIFNode`` (``IFNode`` for β = 1) with the same spikes, where the host can hold it (one
    β and one threshold for all channels, a reset to 0 or a soft reset; else a ``ValueError`` naming what does not
    fit). SSM-dendrite neurons have no host counterpart and stay.

    Returns:
        The model (the same object, modified in place, unless ``model`` was itself a neuron).

    Examples::

        >>> from spikingjelly.activation_based import neuron
        >>> from spikingjelly.activation_based.model import parametric_lif_net
        >>> net = swap_neurons(parametric_lif_net.MNISTNet(8, spiking_neuron=neuron.LIFNode), d_state=8)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(to, str):
        raise TypeError(f"to must be a registered neuron name (str), got {type(to).__name__}")

    slow = set()

    def replacement(m):
        if to == "host":
            framework = type(m).__module__.rpartition(".")[2]  # our faces live in snn_ssm.<framework>
            new = MODULE_MAP[framework][1](m) if type(m).__module__ == f"snn_ssm.{framework}" and \
                framework in MODULE_MAP else None
            if new is None:
                return None
            ref = next(iter([*m.parameters(), *m.buffers()]), None)
            return new if ref is None else new.to(ref.device)
        for framework, (mapping, _) in MODULE_MAP.items():
            kw = mapping(m)
            if kw is not None:
                cls = lookup(to, framework)
                if not (isinstance(cls, type) and issubclass(cls, NeutralLIF)):
                    raise ValueError(f"to={to!r} is not a LIF-family neuron; swap_neurons replaces LIF neurons by "
                                     f"'lif', 'ssm_dendrite_lif' or another registered subclass of snn_ssm.LIF")
                if _SURROGATE_KEYS & kwargs.keys():  # the caller chose the surrogate: carry none over
                    kw = {k: v for k, v in kw.items() if k not in _SURROGATE_KEYS}
                new = create(to, framework=framework, **{**kw, **kwargs})
                if not (isinstance(new.options.surrogate, str) and new.options.surrogate in KERNEL_SURROGATES):
                    slow.add(new.surrogate_name)
                ref = next(iter([*m.parameters(), *m.buffers()]), None)  # place it where the old neuron lived
                return new if ref is None else new.to(ref.device)
        return None

    def warn_slow():
        if slow:
            warnings.warn(f"swap_neurons: the surrogate {', '.join(sorted(slow))} has no fused kernel, so these "
                          f"neurons run the pure-torch loop (6x slower on a CPU, over 100x on a GPU); pass "
                          f"surrogate='atan' (or 'triangle', 'sigmoid', with alpha=) to use the kernels",
                          UserWarning, stacklevel=3)

    root = replacement(model)
    if root is not None:
        log.info("swap_neurons: replaced 1 neuron by %r", to)
        warn_slow()
        return root
    count = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            new = replacement(child)
            if new is not None:
                setattr(parent, child_name, new)
                count += 1
    if "spikingjelly" in sys.modules:
        from spikingjelly.activation_based import functional

        invalidate = getattr(functional, "invalidate_reset_cache", None)  # SpikingJelly >= 2.0 caches reset lists
        if invalidate is not None:
            invalidate(model)
    log.info("swap_neurons: replaced %d neuron(s) by %r", count, to)
    if count == 0:
        what = ("no snn_ssm LIF of the snnTorch or SpikingJelly faces" if to == "host" else
                "no SpikingJelly LIFNode/IFNode/ParametricLIFNode and no snnTorch Leaky")
        warnings.warn(f"swap_neurons found {what} in the {type(model).__name__}; it is returned unchanged",
                      UserWarning, stacklevel=2)
    warn_slow()
    return model


def to_exact(model: nn.Module) -> nn.Module:
    """Switch every soma in ``model`` from the SDN to the exact neuron (in place); returns ``model``.

    Examples::

        >>> model = snn_ssm.SpikingSSM(1, 10, d_model=16, n_layers=1, reset_mode="sdn")
        >>> to_exact(model).blocks[0].layer.soma.reset_mode
        'exact'
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for m in model.modules():
        if isinstance(m, LIFSoma):
            m.reset_mode = "exact"
    return model
