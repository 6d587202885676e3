"""Model → ``nir.NIRGraph`` (see :mod:`snn_ssm.nir` for the reading the graph is exact under)."""
from __future__ import annotations

import copy
import operator

import nir
import numpy as np
import torch
from torch import nn

from .. import __version__
from ..layers.dendrite import S4DDendrite
from ..layers.neurons import SSMDendriteLIF, reset_states
from ..layers.s4 import S4DPLR
from ..layers.sampler import SpikeSampler
from ..layers.soma import LIFSoma
from ._common import check_dt, fire_below, to_numpy

__all__ = ["export"]

_STATELESS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Flatten, nn.AvgPool2d)
_PASS_THROUGH = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def _why_not(m: nn.Module) -> str | None:
    """Why ``m`` cannot be exported (``None``: it can, or it is a container to look inside)."""
    from .. import blocks
    from ..layers.norm import ChannelNorm
    if isinstance(m, LIFSoma):
        if m.reset_mode == "sdn":
            return ("the SDN reset mode is an approximate parallel network, not a neuron; call "
                    "snn_ssm.to_exact(model) first")
        if m.reset_kind == "soft":
            return ("a soft (subtractive) reset: NIR's LIF resets to v_reset, and a soft reset is never written as "
                    "a hard one")
        beta = m.beta.detach()
        if bool((beta == 1).any()) and not bool((beta == 1).all()):
            return "beta is 1 for some channels and below 1 for others (NIR has IF or LIF nodes, not a mix)"
        return None
    if isinstance(m, S4DDendrite):
        if m.bidirectional:
            return "a bidirectional (non-causal) kernel has no step-by-step form"
        return "a bare S4D dendrite (export it inside an SSMDendriteLIF neuron)"
    if isinstance(m, SpikeSampler):
        return "the SpikeSampler draws random spikes; NIR has no stochastic node"
    if isinstance(m, (blocks.SpikingS4D, blocks.S4DLayer, blocks.BinaryS4D)):
        return "an S4D layer with a GLU mixer (NIR has no gating or normalisation node)"
    if isinstance(m, (blocks.GatedSpikingUnit, blocks.S4DGSU)):
        return "the Gated Spiking Unit multiplies two signals (NIR has no gating node)"
    if isinstance(m, (blocks.SpikeMixer, blocks.ClampFuse, blocks.PSpikeSSMBlock)):
        return "P-SpikeSSM's mixer/fuse/sampling block (stochastic sampling and clamping have no NIR node)"
    if isinstance(m, S4DPLR):
        return "the S4 DPLR kernel is not diagonal and has no NIR form"
    if isinstance(m, _NORMS + (ChannelNorm,)):
        return "normalisation has no NIR node (fold an eval-mode BatchNorm into the layer before it first)"
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
        return "NIR has no max pooling"
    if isinstance(m, (nn.GLU, nn.GELU, nn.ReLU, nn.SiLU, nn.Tanh, nn.Sigmoid)):
        return "a non-spiking activation has no NIR node"
    if _is_host_neuron(m):
        return "a host framework neuron: call snn_ssm.swap_neurons(model) first (its reset and leak are then ours)"
    if isinstance(m, (nn.Conv1d, nn.Conv2d)) and m.padding_mode != "zeros":
        return f"padding_mode={m.padding_mode!r} (NIR convolutions pad with zeros)"
    if isinstance(m, nn.AvgPool2d) and (m.ceil_mode or m.divisor_override is not None or not m.count_include_pad):
        return "AvgPool2d with ceil_mode, divisor_override or count_include_pad=False has no NIR form"
    return None


def _is_host_neuron(m: nn.Module) -> bool:
    if isinstance(m, LIFSoma):
        return False
    return any(c.__module__.startswith(("snntorch", "spikingjelly.activation_based.neuron")) and
               c.__name__ in ("SpikingNeuron", "BaseNode") for c in type(m).__mro__)


def _pass_through(m: nn.Module) -> bool:
    """Identity and dropout (the identity at inference; SpikingJelly's time-tied dropout too)."""
    return isinstance(m, _PASS_THROUGH) or (type(m).__module__.startswith("spikingjelly.") and
                                            type(m).__name__ in ("Dropout", "Dropout2d"))


def _exportable_leaf(m: nn.Module) -> bool:
    return isinstance(m, (LIFSoma,) + _STATELESS) or _pass_through(m)


def _problems(model: nn.Module) -> list[str]:
    """Every module that cannot be exported, as ``'path' (Class): why``, outermost first."""
    found = []

    def visit(m: nn.Module, path: str) -> None:
        why = _why_not(m)
        if why is not None:
            found.append(f"{path or '<model>'!r} ({type(m).__name__}): {why}")
        elif _exportable_leaf(m):
            return
        elif not any(True for _ in m.children()):
            found.append(f"{path or '<model>'!r} ({type(m).__name__}): no NIR mapping for this module type")
        else:
            for name, child in m.named_children():
                visit(child, f"{path}.{name}" if path else name)

    visit(model, "")
    return found


class _Tracer(torch.fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return _exportable_leaf(m) or super().is_leaf_module(m, qualname)


def _run_sample(model: nn.Module, sample: torch.Tensor, leading_dims: int):
    """``(copy, shapes, output shape)``: a copy of ``model`` (in eval mode, at rest) that has run on ``sample``, so
    that lazily built modules have their parameters, and the per-sample input and output shapes (the leading
    time/batch dims dropped) of every exportable leaf, by path."""
    shadow = copy.deepcopy(model).eval()
    shapes: dict[str, tuple] = {}

    def hook(path):
        def record(_module, args, out):
            out = out[0] if isinstance(out, (tuple, list)) else out
            if path not in shapes and args and isinstance(args[0], torch.Tensor):
                shapes[path] = (tuple(args[0].shape[leading_dims:]), tuple(out.shape[leading_dims:]))
        return record

    handles = [m.register_forward_hook(hook(p)) for p, m in shadow.named_modules() if _exportable_leaf(m)]
    try:
        reset_states(shadow)
        with torch.no_grad():
            out = shadow(sample)
    except Exception as e:
        raise ValueError(f"sample_input does not run through the model ({type(e).__name__}: {e}); give one input "
                         f"as the model takes it") from e
    finally:
        for h in handles:
            h.remove()
    _reset_all(shadow)
    out = out[0] if isinstance(out, (tuple, list)) else out
    return shadow, shapes, tuple(out.shape[leading_dims:])


def _reset_all(model: nn.Module) -> None:
    reset_states(model)
    for m in model.modules():  # host containers that keep state of their own (SpikingJelly's memory modules)
        if m is not model and hasattr(m, "reset") and callable(m.reset) and not isinstance(m, LIFSoma) and \
                type(m).__module__.startswith("spikingjelly"):
            m.reset()


# -- one module → NIR nodes ----------------------------------------------------------------------------------------
# A converter returns an ordered chain [(suffix, node), ...]; the first receives the module's input, the last gives its
# output (suffix "" keeps the module's own name).

def _linear(m: nn.Linear, shape_in, shape_out):
    if len(shape_in) != 1:
        raise ValueError(f"NIR's Linear acts on vectors; this Linear gets per-sample inputs of shape {shape_in}")
    w = to_numpy(m.weight)
    node = nir.Linear(w) if m.bias is None else nir.Affine(w, to_numpy(m.bias))
    return [("", node)]


def _conv(m, shape_in, shape_out):
    w = to_numpy(m.weight)
    bias = to_numpy(m.bias) if m.bias is not None else np.zeros(w.shape[0], dtype=w.dtype)
    padding = m.padding if isinstance(m.padding, str) else (m.padding[0] if isinstance(m, nn.Conv1d) else m.padding)
    if isinstance(m, nn.Conv1d):
        return [("", nir.Conv1d(input_shape=shape_in[1], weight=w, stride=m.stride[0], padding=padding,
                                dilation=m.dilation[0], groups=m.groups, bias=bias))]
    return [("", nir.Conv2d(input_shape=tuple(shape_in[1:]), weight=w, stride=m.stride, padding=padding,
                            dilation=m.dilation, groups=m.groups, bias=bias))]


def _flatten(m: nn.Flatten, shape_in, shape_out):
    if shape_in == shape_out:
        return []
    start = next(i for i, (a, b) in enumerate(zip(shape_in, shape_out + (None,))) if a != b)
    end = start + len(shape_in) - len(shape_out)
    return [("", nir.Flatten(input_type={"input": np.array(shape_in)}, start_dim=start, end_dim=end))]


def _avgpool(m: nn.AvgPool2d, shape_in, shape_out):
    pair = (lambda v: np.array(v if isinstance(v, (tuple, list)) else (v, v)))
    return [("", nir.AvgPool2d(kernel_size=pair(m.kernel_size), stride=pair(m.stride), padding=pair(m.padding)))]


def _per_neuron(p: torch.Tensor, shape: tuple, dtype=torch.float64) -> np.ndarray:
    """A scalar or per-channel ``[C]`` parameter as one value per neuron of a per-sample ``shape`` ``(C, *)``."""
    a = to_numpy(p, dtype).reshape(-1)
    if a.size == 1:
        return np.full(shape, a[0], dtype=a.dtype)
    if not shape or shape[0] != a.size:
        raise ValueError(f"a per-channel parameter of {a.size} values does not fit per-sample inputs {shape}")
    return np.broadcast_to(a.reshape((a.size,) + (1,) * (len(shape) - 1)), shape).copy()


def _soma_nodes(soma: LIFSoma, shape: tuple, dt: float):
    """The soma as ``[Scale(1/v_th)] → LIF | IF`` (hard reset) or ``→ LI | I → Threshold`` (no reset)."""
    inv_vth = 1.0 / soma.v_th  # the factor the soma multiplies its input by, in its dtype
    chain = []
    if not bool((inv_vth == 1).all()):
        chain.append(("threshold", nir.Scale(_per_neuron(inv_vth, shape, inv_vth.dtype))))
    theta = np.full(shape, fire_below(soma._anchor.dtype))
    v_reset = np.full(shape, soma.v_reset)
    fires = soma.reset_kind != "none"
    if bool((soma.beta == 1).all()):
        r = np.full(shape, 1.0 / dt)
        if fires:
            return chain + [("", nir.IF(r=r, v_threshold=theta, v_reset=v_reset))]
        return chain + [("", nir.I(r=r)), ("fire", nir.Threshold(theta))]
    tau = dt / (1.0 - _per_neuron(soma.beta, shape))
    if fires:
        return chain + [("", nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(shape), v_threshold=theta,
                                     v_reset=v_reset))]
    return chain + [("", nir.LI(tau=tau, r=tau / dt, v_leak=np.zeros(shape))), ("fire", nir.Threshold(theta))]


def _lif(m: LIFSoma, shape_in, shape_out, dt: float):
    if isinstance(m, SSMDendriteLIF):
        return _ssm_lif(m, shape_in, dt)
    return _soma_nodes(m, shape_in, dt)


def _real_mode(p, d_state: int) -> bool:
    return d_state == 2 and bool((p.dA.imag == 0).all()) and bool((p.dB.imag == 0).all()) and \
        bool((p.D == 0).all())


def _ssm_lif(m: SSMDendriteLIF, shape, dt: float):
    """The SSM-dendrite neuron: a subgraph (node ``""``), or ``Scale → CubaLIF`` for one real mode and no skip."""
    if len(shape) != 1:
        raise ValueError(f"an SSM-dendrite neuron is exported on per-sample inputs [C] (NIR's Linear acts on vectors), "
                         f"this one gets {shape}")
    C = shape[0]
    with torch.no_grad():
        p = m.dendrite.discrete(C)
    if _real_mode(p, m.dendrite.d_state) and m.reset_kind == "hard" and not bool((m.beta == 1).any()):
        return _cuba_lif(m, p, C, dt)
    modes = p.dA.shape[1]
    dA, dB, Cc = p.dA.detach(), p.dB.detach(), p.C[0].detach()
    n = C * modes
    rows = torch.arange(n)
    B_w = torch.zeros(2 * n, C, dtype=dA.real.dtype)
    owner = rows // modes  # the channel of each mode
    B_w[2 * rows, owner], B_w[2 * rows + 1, owner] = dB.real.reshape(-1), dB.imag.reshape(-1)
    A_w = torch.zeros(2 * n, 2 * n, dtype=dA.real.dtype)
    a, b = dA.real.reshape(-1) - 1, dA.imag.reshape(-1)
    A_w[2 * rows, 2 * rows], A_w[2 * rows, 2 * rows + 1] = a, -b
    A_w[2 * rows + 1, 2 * rows], A_w[2 * rows + 1, 2 * rows + 1] = b, a
    C_w = torch.zeros(C, 2 * n, dtype=dA.real.dtype)
    C_w[owner, 2 * rows], C_w[owner, 2 * rows + 1] = 2 * Cc.real.reshape(-1), -2 * Cc.imag.reshape(-1)
    nodes = {"input": nir.Input(input_type={"input": np.array([C])}),
             "B": nir.Linear(to_numpy(B_w)), "state": nir.I(r=np.full(2 * n, 1.0 / dt)),
             "A": nir.Linear(to_numpy(A_w)), "C": nir.Linear(to_numpy(C_w)), "D": nir.Scale(to_numpy(p.D))}
    edges = [("input", "B"), ("B", "state"), ("state", "A"), ("A", "state"), ("state", "C"), ("input", "D")]
    soma = _soma_nodes(m, (C,), dt)
    prev = ["C", "D"]
    for suffix, node in soma:
        key = suffix or "soma"
        nodes[key] = node
        edges += [(s, key) for s in prev]
        prev = [key]
    nodes["output"] = nir.Output(output_type={"output": np.array([C])})
    edges.append((prev[0], "output"))
    return [("", nir.NIRGraph(nodes=nodes, edges=edges, metadata=_neuron_metadata(m), type_check=True))]


def _cuba_lif(m: SSMDendriteLIF, p, C: int, dt: float):
    """One real mode per channel: ``h = a h + b̄ x``, ``u' = β u + 2 Re(C) h / v_th``. With ``I = g h / b̄`` where
    ``g = 2 Re(C) b̄ / v_th`` the soma sees ``I`` directly: ``Scale(g)`` → ``CubaLIF(τ_syn = dt/(1-a),
    w_in = τ_syn/dt, τ_mem = dt/(1-β), r = τ_mem/dt)``."""
    a = p.dA.real.reshape(-1).detach().double()
    g = (2 * p.C[0].real.reshape(-1) * p.dB.real.reshape(-1) / m.v_th.expand(C)).detach()
    beta = _per_neuron(m.beta, (C,))
    tau_syn, tau_mem = dt / (1.0 - a.numpy()), dt / (1.0 - beta)
    node = nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=np.zeros(C),
                       v_threshold=np.full(C, fire_below(m._anchor.dtype)), v_reset=np.full(C, m.v_reset),
                       w_in=tau_syn / dt, metadata={"snn_ssm_module": "SSMDendriteLIF (one real mode)"})
    return [("gain", nir.Scale(to_numpy(g))), ("", node)]


def _neuron_metadata(m: SSMDendriteLIF) -> dict:
    """What rebuilds ``m`` exactly: its options and continuous parameters (flat keys, NIR files hold no nesting)."""
    meta = {"snn_ssm_module": "SSMDendriteLIF", "snn_ssm_version": __version__, "shared": m.shared,
            "learn_beta": isinstance(m.beta, nn.Parameter), "learn_threshold": m.learn_threshold}
    o = m.options
    meta.update({"soma_reset": o.reset, "soma_v_reset": o.v_reset, "soma_detach_reset": o.detach_reset,
                 "soma_grad_mode": o.grad_mode})
    if isinstance(o.surrogate, str):
        meta["soma_surrogate"] = o.surrogate
        if o.alpha is not None:
            meta["soma_alpha"] = o.alpha
    d = m.dendrite.options
    meta.update({"s4d_d_state": d.d_state, "s4d_init": d.init, "s4d_disc": d.disc, "s4d_dt_min": d.dt_min,
                 "s4d_dt_max": d.dt_max, "s4d_trainable_B": d.trainable_B})
    for name, t in list(m.named_parameters()) + list(m.named_buffers()):
        if not name.endswith("_anchor"):
            a = to_numpy(t)
            meta[f"param_{name}"] = a if a.ndim else a.item()  # NIR's writer compresses arrays, and 0-d ones fail
    return meta


def _convert(m: nn.Module, shape_in, shape_out, dt: float):
    if isinstance(m, LIFSoma):
        return _lif(m, shape_in, shape_out, dt)
    if _pass_through(m):
        return []
    for kind, fn in ((nn.Linear, _linear), ((nn.Conv1d, nn.Conv2d), _conv), (nn.Flatten, _flatten),
                     (nn.AvgPool2d, _avgpool)):
        if isinstance(m, kind):
            return fn(m, shape_in, shape_out)
    raise AssertionError(f"no converter for {type(m).__name__}")  # _problems() refused it already


# -- the graph ------------------------------------------------------------------------------------------------------

def _is_add(node: torch.fx.Node) -> bool:
    return (node.op == "call_function" and node.target in (operator.add, torch.add)) or \
        (node.op == "call_method" and node.target == "add")


def _describe(node: torch.fx.Node) -> str:
    target = getattr(node.target, "__name__", node.target)
    return f"{node.op} {target!s} (at {node.name!r})"


def export(model: nn.Module, sample_input: torch.Tensor, dt: float = 1e-4, *, leading_dims: int = 2,
           fold_scales: bool = False) -> nir.NIRGraph:
    """The NIR graph of ``model``, exact under the Euler reading with step ``dt`` (see :mod:`snn_ssm.nir`).

    Args:
        model (torch.nn.Module): a composition of exportable modules (an ``nn.Sequential``, or a ``forward`` that
            torch.fx can trace: modules called in turn, outputs added): ``Linear``, ``Conv1d``/``Conv2d``,
            ``Flatten``, ``AvgPool2d``, ``Dropout``/``Identity`` (dropped), our ``LIF``/``LIFSoma`` and
            ``SSMDendriteLIF`` in any framework's face (what :func:`snn_ssm.swap_neurons` produced).
        sample_input (torch.Tensor): one input as the model takes it; it is run through a copy of the model to read
            every node's shape.
        dt (float): the simulation step the time constants refer to. Default: ``1e-4`` (snnTorch's and
            SpikingJelly's choice; snnTorch's importer assumes it).
        leading_dims (int): how many leading dims of ``sample_input`` (and of every tensor inside) are time and
            batch: ``2`` for ``[T, B, ...]`` (our layout, SpikingJelly's multi-step mode), ``1`` for a single-step
            ``[B, ...]`` model. Default: ``2``.
        fold_scales (bool): multiply each ``Scale`` node that follows a ``Linear``/``Affine``/``Conv`` into its
            weights (for importers without ``Scale``, such as snnTorch's). The rounding then changes unless the
            scales are powers of two. Default: ``False``.

    Returns:
        ``nir.NIRGraph`` with shapes on every node and ``metadata`` holding ``dt`` and the producer.

    Raises:
        ValueError: naming every module NIR cannot express and why (before anything is built).

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), snn_ssm.SSMDendriteLIF(4, d_state=8))
        >>> graph = export(net, torch.rand(10, 1, 3))
        >>> type(graph.nodes["1"]).__name__, sorted(graph.nodes["1"].nodes)   # the neuron is a subgraph
        ('NIRGraph', ['A', 'B', 'C', 'D', 'input', 'output', 'soma', 'state'])
        >>> export(torch.nn.Sequential(snn_ssm.LIF(4, reset="soft")), torch.rand(10, 1, 4))
        Traceback (most recent call last):
        ...
        ValueError: cannot export to NIR (1 module(s)):
          '0' (LIF): a soft (subtractive) reset: NIR's LIF resets to v_reset, ...
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(sample_input, torch.Tensor) or not sample_input.is_floating_point():
        raise TypeError(f"sample_input must be a floating-point torch.Tensor, got {type(sample_input).__name__}")
    dt = check_dt(dt)
    if isinstance(leading_dims, bool) or leading_dims not in (1, 2):
        raise ValueError(f"leading_dims must be 1 ([B, ...]) or 2 ([T, B, ...]), got {leading_dims!r}")
    if sample_input.ndim <= leading_dims:
        raise ValueError(f"sample_input must have more than leading_dims={leading_dims} dims, got shape "
                         f"{tuple(sample_input.shape)}")
    problems = _problems(model)
    if problems:
        raise ValueError(f"cannot export to NIR ({len(problems)} module(s)):\n  " + "\n  ".join(problems))
    model, shapes, out_shape = _run_sample(model, sample_input, leading_dims)
    try:
        traced = _Tracer().trace(model)
    except Exception as e:
        raise ValueError(f"cannot trace the model's forward with torch.fx ({type(e).__name__}: {e}); export takes "
                         f"models whose forward calls modules in turn (nn.Sequential, additions allowed), without "
                         f"loops over time or data-dependent branches") from e
    root = dict(model.named_modules())
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(
        sample_input.shape[leading_dims:])})}
    edges: list[tuple[str, str]] = []
    sources: dict[torch.fx.Node, list[str]] = {}  # the NIR nodes whose sum an fx value is
    outputs = []
    used_names: set[str] = set()
    for node in traced.nodes:
        if node.op == "placeholder":
            if sources:
                raise ValueError(f"the model's forward takes more than one input ({node.name!r}); NIR graphs here "
                                 f"have one")
            sources[node] = ["input"]
        elif node.op == "call_module":
            m = root[node.target]
            if node.target not in shapes:
                raise ValueError(f"module {node.target!r} did not run on sample_input; it cannot be placed")
            chain = _convert(m, *shapes[node.target], dt)
            ins = [s for a in node.all_input_nodes for s in sources[a]]
            base = node.target.replace(".", "_") or "model"
            while base in used_names:
                base += "_"
            used_names.add(base)
            for suffix, nir_node in chain:
                key = f"{base}_{suffix}" if suffix else base
                nir_node.metadata = {**nir_node.metadata, "module": node.target}
                nodes[key] = nir_node
                edges += [(s, key) for s in ins]
                ins = [key]
            sources[node] = ins
        elif _is_add(node):
            sources[node] = [s for a in node.all_input_nodes for s in sources[a]]
        elif node.op == "call_function" and node.target is operator.getitem and node.args[1] == 0 and \
                node.args[0].op == "call_module" and isinstance(root[node.args[0].target], LIFSoma):
            sources[node] = sources[node.args[0]]  # (spikes, membrane)[0] of an snnTorch-style neuron
        elif node.op == "output":
            out = node.args[0]
            if not isinstance(out, torch.fx.Node):
                raise ValueError("the model's forward must return one tensor (spikes or currents) to export")
            outputs = sources[out]
        else:
            raise ValueError(f"the model's forward does {_describe(node)}, which NIR cannot express (only module "
                             f"calls and additions)")
    nodes["output"] = nir.Output(output_type={"output": np.array(out_shape)})
    edges += [(s, "output") for s in outputs]
    if fold_scales:
        _fold_scales(nodes, edges)
    meta = {"dt": dt, "producer": f"snn_ssm {__version__}", "leading_dims": leading_dims}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)


def _fold_scales(nodes: dict, edges: list) -> None:
    """Multiply each ``Scale`` fed only by a ``Linear``/``Affine``/``Conv`` (that feeds only it) into that node."""
    for key in [k for k, n in nodes.items() if isinstance(n, nir.Scale)]:
        ins = [a for a, b in edges if b == key]
        if len(ins) != 1 or not isinstance(nodes[ins[0]], (nir.Linear, nir.Affine, nir.Conv1d, nir.Conv2d)):
            continue
        src = nodes[ins[0]]
        if [b for a, b in edges if a == ins[0]] != [key]:
            continue
        scale = np.asarray(nodes[key].scale)
        per_out = scale.reshape(scale.shape[0], -1)
        if not np.all(per_out == per_out[:, :1]):
            continue  # a scale that varies within an output channel does not fold into a convolution
        s = per_out[:, 0].astype(src.weight.dtype)
        src.weight = src.weight * s.reshape((-1,) + (1,) * (src.weight.ndim - 1))
        if hasattr(src, "bias") and src.bias is not None:
            src.bias = src.bias * s
        edges[:] = [(ins[0], b) if a == key else (a, b) for a, b in edges if b != key]
        del nodes[key]

