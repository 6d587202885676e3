"""``nir.NIRGraph`` → a runnable network of our modules, stepped under the Euler reading of :mod:`snn_ssm.nir`."""
from __future__ import annotations

import math
import warnings

import nir
import numpy as np
import torch
from torch import nn

from .. import _checks
from ..layers.neurons import LIF, SSMDendriteLIF
from ._common import GAIN_TOL, as_gain, check_dt, decode, fire_below

__all__ = ["import_", "NIRNetwork"]


# -- one NIR node → one step module: forward(x [B, *]) -> y [B, *], reset() ----------------------------------------

class _Node(nn.Module):
    """A node run one step at a time; ``reset`` forgets its state (stateless nodes have none)."""

    def reset(self) -> None:
        """Forget the state (nothing, for a stateless node)."""


class _Stateless(_Node):
    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x)


class _Scale(_Node):
    def __init__(self, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", scale)

    def forward(self, x):
        return x * self.scale


class _Threshold(_Node):
    """NIR's ``z = [v > θ]`` (strict)."""

    def __init__(self, threshold: torch.Tensor):
        super().__init__()
        self.register_buffer("threshold", threshold)

    def forward(self, x):
        return (x > self.threshold).to(x.dtype)


class _Gain(nn.Module):
    def __init__(self, gain: np.ndarray | None, dtype):
        super().__init__()
        self.register_buffer("gain", None if gain is None else torch.as_tensor(gain, dtype=dtype))

    def forward(self, x):
        return x if self.gain is None else x * self.gain


class _Integrator(_Node):
    """``I`` (β = 1) and ``LI``: ``v_t = β v_{t-1} + g·x_t``; the output is ``v``."""

    def __init__(self, beta: torch.Tensor | None, gain: _Gain):
        super().__init__()
        self.register_buffer("beta", beta)
        self.gain = gain
        self.v = None

    def forward(self, x):
        x = self.gain(x)
        v = x if self.v is None else (self.v if self.beta is None else self.beta * self.v) + x
        self.v = v
        return v

    def reset(self):
        self.v = None


class _Soma(_Node):
    """``LIF``/``IF``: our LIF neuron on the flattened per-sample shape, after the input gain ``dt·r/τ``."""

    def __init__(self, neuron: LIF, gain: _Gain, shape: tuple):
        super().__init__()
        self.neuron, self.gain, self.shape = neuron, gain, shape

    def forward(self, x):
        s = self.neuron.step(self.gain(x).reshape(x.shape[0], -1))
        return s.reshape(x.shape)

    def reset(self):
        self.neuron.reset()


class _CubaLIF(_Node):
    """``CubaLIF``: ``I_t = α I_{t-1} + g_syn·x_t`` feeding the soma ``_Soma`` (``v_t = β v_{t-1} + g_mem·I_t``)."""

    def __init__(self, alpha: torch.Tensor, syn_gain: _Gain, soma: _Soma):
        super().__init__()
        self.synapse = _Integrator(alpha, syn_gain)
        self.soma = soma

    def forward(self, x):
        return self.soma(self.synapse(x))

    def reset(self):
        self.synapse.reset()
        self.soma.reset()


class _Neuron(_Node):
    """One of our neurons rebuilt whole from a subgraph's metadata (the exact round trip)."""

    def __init__(self, neuron: LIF):
        super().__init__()
        self.neuron = neuron

    def forward(self, x):
        return self.neuron.step(x)

    def reset(self):
        self.neuron.reset()


def _arr(a, dtype, device=None) -> torch.Tensor:
    return torch.as_tensor(np.array(a), dtype=dtype, device=device)


def _beta_and_gain(tau, r, dt: float):
    """``(β = 1 - dt/τ, input gain dt·r/τ)`` from NIR's time constant and resistance, in float64."""
    tau, r = np.asarray(tau, np.float64), np.asarray(r, np.float64)
    if np.any(tau < dt):
        raise ValueError(f"a time constant below dt={dt:g} gives a leak factor 1 - dt/τ < 0 under the Euler reading")
    return 1.0 - dt / tau, dt * r / tau


def _soma(node, dt: float, dtype, beta, gain) -> _Soma:
    """Our LIF for a NIR ``LIF``/``IF`` (or the soma of ``CubaLIF``)."""
    shape = tuple(np.asarray(node.v_threshold).shape)
    theta = np.asarray(node.v_threshold, np.float64).reshape(-1)
    v_reset = np.asarray(node.v_reset, np.float64).reshape(-1)
    if np.any(theta <= 0):
        raise ValueError("v_threshold must be positive for our LIF (it fires on u ≥ v_th > 0)")
    # θ = 1⁻ of our dtype is our own export's convention: [v > 1⁻] = [v ≥ 1] exactly, so v_th = 1. Another θ becomes
    # v_th = θ, which fires at v = θ where NIR's strict rule does not (only then).
    v_th = np.where(theta == fire_below(dtype), 1.0, theta)
    reset_units = v_reset / v_th
    if not np.all(reset_units == reset_units[0]):
        raise ValueError("v_reset / v_threshold differs between neurons; our LIF has one reset value (in threshold "
                         "units)")
    n = theta.size
    beta = np.broadcast_to(np.asarray(beta, np.float64), shape).reshape(-1)
    if np.any((beta < 0) | (beta > 1)):
        raise ValueError("the leak factor 1 - dt/τ must lie in [0, 1]")
    neuron = LIF(n, beta=_arr(beta, dtype), learn_threshold=False, v_reset=float(reset_units[0]), reset="hard",
                 backend="torch", dtype=dtype)
    with torch.no_grad():  # exp(log 1) = 1 exactly; another θ may come back one rounding off
        neuron.ln_vth.copy_(torch.log(_arr(v_th, torch.float64)).to(dtype))
    return _Soma(neuron, _Gain(as_gain(np.broadcast_to(gain, shape).reshape(-1)), dtype), shape)


def _check_leak(node, name: str) -> None:
    if not np.allclose(np.asarray(node.v_leak, np.float64), 0.0):
        raise ValueError(f"node {name!r}: v_leak != 0 has no counterpart in our neurons (shift the input instead)")


def _node_module(name: str, node, dt: float, dtype) -> _Node:
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = np.asarray(node.weight)
        lin = nn.Linear(w.shape[1], w.shape[0], bias=isinstance(node, nir.Affine), dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(_arr(w, dtype))
            if isinstance(node, nir.Affine):
                lin.bias.copy_(_arr(node.bias, dtype))
        return _Stateless(lin)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        w = np.asarray(node.weight)
        cls = nn.Conv1d if isinstance(node, nir.Conv1d) else nn.Conv2d
        padding = decode(node.padding)
        padding = padding if isinstance(padding, str) else (tuple(int(p) for p in np.atleast_1d(padding)))
        conv = cls(w.shape[1] * int(node.groups), w.shape[0], w.shape[2:], stride=_ints(node.stride),
                   padding=padding, dilation=_ints(node.dilation), groups=int(node.groups), dtype=dtype)
        with torch.no_grad():
            conv.weight.copy_(_arr(w, dtype))
            conv.bias.copy_(_arr(node.bias, dtype))
        return _Stateless(conv)
    if isinstance(node, nir.Flatten):
        end = int(node.end_dim)
        return _Stateless(nn.Flatten(int(node.start_dim) + 1, end + 1 if end >= 0 else end))
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        pool = nn.AvgPool2d(_ints(node.kernel_size), _ints(node.stride), _ints(node.padding),
                            divisor_override=1 if isinstance(node, nir.SumPool2d) else None)
        return _Stateless(pool)
    if isinstance(node, nir.Scale):
        return _Scale(_arr(node.scale, dtype))
    if isinstance(node, nir.Threshold):
        return _Threshold(_arr(node.threshold, dtype))
    if isinstance(node, nir.I):
        return _Integrator(None, _Gain(as_gain(dt * np.asarray(node.r, np.float64)), dtype))
    if isinstance(node, nir.LI):
        _check_leak(node, name)
        beta, gain = _beta_and_gain(node.tau, node.r, dt)
        return _Integrator(_arr(beta, dtype), _Gain(as_gain(gain), dtype))
    if isinstance(node, nir.LIF):
        _check_leak(node, name)
        return _soma(node, dt, dtype, *_beta_and_gain(node.tau, node.r, dt))
    if isinstance(node, nir.IF):
        return _soma(node, dt, dtype, 1.0, dt * np.asarray(node.r, np.float64))
    if isinstance(node, nir.CubaLIF):
        _check_leak(node, name)
        alpha, syn_gain = _beta_and_gain(node.tau_syn, node.w_in, dt)  # I_t = (1 - dt/τ_syn) I + (dt/τ_syn) w_in x
        beta, mem_gain = _beta_and_gain(node.tau_mem, node.r, dt)
        return _CubaLIF(_arr(alpha, dtype), _Gain(as_gain(syn_gain), dtype), _soma(node, dt, dtype, beta, mem_gain))
    raise ValueError(f"node {name!r}: NIR {type(node).__name__} is not supported by snn_ssm.nir.import_ (supported: "
                     f"Affine, Linear, Conv1d, Conv2d, Flatten, AvgPool2d, SumPool2d, Scale, Threshold, I, LI, IF, "
                     f"LIF, CubaLIF and subgraphs)")


def _ints(v):
    v = np.atleast_1d(np.asarray(v)).astype(int)
    return int(v[0]) if v.size == 1 else tuple(int(i) for i in v)


# -- our neuron back from its metadata ------------------------------------------------------------------------------

def _rebuild_neuron(graph: nir.NIRGraph, dt: float, dtype) -> _Neuron | None:
    """The SSMDendriteLIF an snn_ssm export wrote as ``graph``, if its metadata says so and re-exporting the
    rebuilt neuron gives exactly the graph's nodes (else ``None``: the nodes were edited, or another tool wrote
    them; they are then run as nodes)."""
    meta = {k: decode(v) for k, v in (graph.metadata or {}).items()}
    if meta.get("snn_ssm_module") != "SSMDendriteLIF":
        return None
    params = {k[len("param_"):]: torch.as_tensor(np.asarray(v)) for k, v in meta.items() if k.startswith("param_")}
    options = {k[len("soma_"):]: v for k, v in meta.items() if k.startswith("soma_")}
    options.update({k[len("s4d_"):]: v for k, v in meta.items() if k.startswith("s4d_")})
    C = int(np.asarray(graph.nodes["input"].output_type["output"]).reshape(-1)[0])
    try:
        neuron = SSMDendriteLIF(C, shared=bool(meta["shared"]), learn_beta=bool(meta["learn_beta"]),
                                learn_threshold=bool(meta["learn_threshold"]), backend="torch", dtype=dtype, **options)
        neuron.load_state_dict({k: v.to(dtype) for k, v in params.items()}, strict=False)
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        warnings.warn(f"an snn_ssm neuron's metadata could not be read ({e}); running its NIR nodes instead",
                      stacklevel=3)
        return None
    from ._export import _ssm_lif
    again = _ssm_lif(neuron, (C,), dt)[0][1]
    if not isinstance(again, nir.NIRGraph) or not _same_nodes(again, graph):
        warnings.warn("an snn_ssm neuron's NIR nodes differ from its metadata (edited after export?); running the "
                      "nodes", stacklevel=3)
        return None
    return _Neuron(neuron)


def _same_nodes(a: nir.NIRGraph, b: nir.NIRGraph) -> bool:
    if set(a.nodes) != set(b.nodes) or sorted(map(tuple, a.edges)) != sorted(map(tuple, b.edges)):
        return False
    for k, na in a.nodes.items():
        nb = b.nodes[k]
        if type(na) is not type(nb):
            return False
        for field in ("weight", "bias", "scale", "r", "tau", "v_threshold", "v_reset", "threshold"):
            if hasattr(na, field) and not np.array_equal(np.asarray(getattr(na, field)),
                                                         np.asarray(getattr(nb, field))):
                return False
    return True


# -- the network ----------------------------------------------------------------------------------------------------

def _flatten_graph(graph: nir.NIRGraph, dt: float, dtype, prefix: str = ""):
    """``(modules, edges, input key, output key)`` with every subgraph inlined (or rebuilt whole as our neuron)."""
    modules: dict[str, _Node] = {}
    edges: list[tuple[str, str]] = []
    ends: dict[str, tuple[str, str]] = {}  # a subgraph's key -> (its input key, its output key)
    inp = out = None
    for key, node in graph.nodes.items():
        full = f"{prefix}{key}"
        if isinstance(node, nir.NIRGraph):
            neuron = _rebuild_neuron(node, dt, dtype)
            if neuron is not None:
                modules[full] = neuron
                continue
            sub_modules, sub_edges, sub_in, sub_out = _flatten_graph(node, dt, dtype, f"{full}.")
            modules.update(sub_modules)
            edges += sub_edges
            ends[key] = (sub_in, sub_out)
        elif isinstance(node, nir.Input):
            if inp is not None:
                raise ValueError("graphs with more than one Input node are not supported")
            inp = full
            modules[full] = _Stateless(nn.Identity())
        elif isinstance(node, nir.Output):
            if out is not None:
                raise ValueError("graphs with more than one Output node are not supported")
            out = full
            modules[full] = _Stateless(nn.Identity())
        else:
            modules[full] = _node_module(full, node, dt, dtype)
    if inp is None or out is None:
        raise ValueError(f"graph {prefix.rstrip('.') or '<top>'} needs an Input and an Output node")
    for a, b in graph.edges:
        a = ends[a][1] if a in ends else f"{prefix}{a}"
        b = ends[b][0] if b in ends else f"{prefix}{b}"
        edges.append((a, b))
    return modules, edges, inp, out


def _schedule(keys, edges, source: str):
    """An evaluation order and the edges that close cycles (they carry the previous step's value): depth-first
    from ``source``, an edge into a node still on the stack is a back edge."""
    succ: dict[str, list[str]] = {k: [] for k in keys}
    for a, b in edges:
        succ[a].append(b)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    back, post = set(), []
    stack = [(source, iter(succ[source]))]
    state[source] = 1
    while stack:
        node, it = stack[-1]
        nxt = next(it, None)
        if nxt is None:
            stack.pop()
            state[node] = 2
            post.append(node)
        elif state.get(nxt) == 1:
            back.add((node, nxt))
        elif nxt not in state:
            state[nxt] = 1
            stack.append((nxt, iter(succ[nxt])))
    unreached = [k for k in keys if k not in state]
    if unreached:
        raise ValueError(f"nodes {unreached} cannot be reached from the graph's input")
    return post[::-1], back


class NIRNetwork(nn.Module):
    """A NIR graph run step by step with our modules (from :func:`import_`).

    ``forward(x)`` takes ``[T, B, *]`` and returns the Output node's ``[T, B, *]``; ``step(x)`` takes one ``[B, *]``.
    Like our neurons it keeps its state between calls until :meth:`reset` (also reached by
    :func:`snn_ssm.reset_states`). ``nodes`` holds one module per NIR node (keys: the node names, ``.`` → ``__``).

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), snn_ssm.LIF(4))
        >>> copy = import_(snn_ssm.nir.export(net, torch.rand(10, 1, 3)))
        >>> s = copy(torch.rand(20, 2, 3)); s.shape      # [T, B, 4]
        torch.Size([20, 2, 4])
        >>> s_next = copy.step(torch.rand(2, 3)); copy.reset()
    """

    _snn_ssm_stateful = True  # reset by snn_ssm.reset_states

    def __init__(self, modules: dict, edges: list, inp: str, out: str, dt: float):
        super().__init__()
        order, back = _schedule(list(modules), edges, inp)
        if out not in order:
            raise ValueError("the graph's Output node cannot be reached from its Input node")
        self._key = {k: k.replace(".", "__") for k in modules}
        self.nodes = nn.ModuleDict({self._key[k]: m for k, m in modules.items()})
        self.dt = dt
        self._order = order
        self._inputs = {k: [(a, (a, k) in back) for a, b in edges if b == k] for k in modules}
        self._recurrent = {a for a, _ in back}
        self._input, self._output = inp, out
        self._previous: dict[str, torch.Tensor] = {}

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One step ``[B, *]`` → the Output node's value ``[B, *]``."""
        values: dict[str, torch.Tensor] = {}
        for k in self._order:
            if k == self._input:
                values[k] = x
                continue
            parts = [self._previous.get(a) if is_back else values[a] for a, is_back in self._inputs[k]]
            parts = [p for p in parts if p is not None]  # a cycle's first step: its feedback is still zero
            total = parts[0]
            for p in parts[1:]:
                total = total + p
            values[k] = self.nodes[self._key[k]](total)
        self._previous = {k: values[k] for k in self._recurrent}
        return values[self._output]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The sequence ``x`` ``[T, B, *]`` → ``[T, B, *]``, continuing from the held state."""
        _checks.check_tensor(x, "x", min_ndim=2, layout="[T, B, ...]")
        return torch.stack([self.step(x_t) for x_t in x.unbind(0)])

    def reset(self) -> None:
        """Forget every node's state and the values in flight on cycles."""
        self._previous = {}
        for m in self.nodes.values():
            m.reset()


def import_(graph: nir.NIRGraph, *, dt: float | None = None, dtype: torch.dtype = torch.float32,
            device=None) -> NIRNetwork:
    """A :class:`NIRNetwork` running ``graph`` (from :func:`snn_ssm.nir.export` or any NIR tool).

    Args:
        graph (nir.NIRGraph): the graph (``from_file(path)`` reads one).
        dt (float, optional): the simulation step; ``None`` takes the one our export wrote in the graph's metadata
            (an error for graphs without it). Default: ``None``.
        dtype (torch.dtype): parameters and state. Default: ``torch.float32``.
        device: where to build the network. Default: CPU.

    Subgraphs our export wrote for an ``SSMDendriteLIF`` come back as that neuron (same parameters, options and
    trainability); every other node becomes a module of ours: ``LIF``/``IF`` our LIF neuron, ``CubaLIF`` a synapse
    feeding it, ``LI``/``I`` integrators, ``Threshold`` NIR's strict ``[v > θ]``, the stateless nodes torch layers.

    Examples::

        >>> import nir, numpy as np
        >>> graph = nir.NIRGraph.from_list(nir.Affine(np.ones((2, 3)), np.zeros(2)), nir.LIF(
        ...     tau=np.full(2, 2e-4), r=np.full(2, 2.0), v_leak=np.zeros(2), v_threshold=np.ones(2)))
        >>> net = import_(graph, dt=1e-4)          # β = 1 - dt/τ = 0.5, input gain dt·r/τ = 1
        >>> net(torch.full((4, 1, 3), 0.2))[:, 0, 0].tolist()   # u' = 0.6, 0.9, 1.05 → fires, resets
        [0.0, 0.0, 1.0, 0.0]
    """
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"graph must be a nir.NIRGraph, got {type(graph).__name__}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    meta = {k: decode(v) for k, v in (graph.metadata or {}).items()}
    if dt is None:
        if "dt" not in meta:
            raise ValueError("the graph does not record its time step; pass dt= (snnTorch and SpikingJelly export "
                             "with dt=1e-4)")
        dt = meta["dt"]
    dt = check_dt(dt)
    if "dt" in meta and not math.isclose(meta["dt"], dt, rel_tol=GAIN_TOL):
        raise ValueError(f"dt={dt:g} differs from the dt={meta['dt']:g} the graph was exported with")
    modules, edges, inp, out = _flatten_graph(graph, dt, dtype)
    net = NIRNetwork(modules, edges, inp, out, dt)
    return net.to(device) if device is not None else net
