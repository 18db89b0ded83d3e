"""One derivative explained by the chain rule, factor by factor, as the seed blog writes it.

A parameter ``p`` feeds one node ``j`` of layer ``l`` (a weight ``w`` from node ``i``, or the
bias of ``j``). Every path ``j = j_l -> j_{l+1} -> ... -> j_L`` (one unit in each later layer,
ending at an output node) contributes the product of its factors, written from the loss back::

    dE/dout_{j_L} * dout_{j_L}/dnet_{j_L} * dnet_{j_L}/dout_{j_{L-1}} * ... * dnet_{j_l}/dp

with ``dnet_k/dout_m = w_mk`` (the weight from ``m`` to ``k``), ``dout_m/dnet_m = f'(net_m)``,
``dnet_j/dw = out_i`` (``x_i`` for an input) and ``dnet_j/db = 1``; ``dE/dp`` is the sum of the
products over all paths. For the seed's ``w7``: ``dE/dout_n9 * dout_n9/dnet_n9 * dnet_n9/dout_n6
* dout_n6/dnet_n6 * dnet_n6/dw7``, one path; for ``w1`` three paths, through n6, n7 and n8.

At the output, a loss and an activation that are differentiated together give one fused factor
``dE/dnet_k`` in place of ``dE/dout_k * dout_k/dnet_k``, as the core computes them:

- sigmoid with ``binary_cross_entropy``: ``(out_k - target_k) / K``; the split factors would
  divide by ``out_k (1 - out_k)``, which is 0 once the sigmoid saturates;
- softmax, with any loss: ``out_k`` depends on every ``net_m``, so no path runs through a single
  ``dout_k/dnet_k``; ``dE/dnet_k = out_k (g_k - sum_m g_m out_m)`` with ``g = dE/dout``, which
  for ``cross_entropy`` is ``out_k - target_k``.

The number of paths is the product of the units of the later layers. Above ``max_paths`` the
explanation takes the delta form ``dE/dw = delta_j * out_i``, ``delta_j = f'(net_j) sum_k w_jk
delta_k``: the same sum over paths, factored layer by layer (backpropagation).

Explanations are of one sample, the seed's setting: its loss is the per-sample loss. Factor
values are computed here from the forward trace, independently of the backward pass, in float64
(from float32 values for a float32 network); ``gradient`` is the core's backpropagated value.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from numpy.typing import ArrayLike

from service.core.errors import CoreError, ShapeMismatch
from service.core.named import Location, locations, node_names
from service.core.network import Layer, Network
from service.core.parameters import Params, check_batch, check_targets
from service.core.propagation import GradientResult, gradient

MAX_PATHS = 256
# The delta form writes the recursion's terms out in full up to this many, then summarises.
MAX_WRITTEN_TERMS = 8

Form = Literal["paths", "delta"]
FormChoice = Literal["auto", "paths", "delta"]


class UnknownParameter(CoreError):
    """The parameter name is not one of the network's ``w1..wN``, ``b1..bM``."""


class TooManyPaths(CoreError):
    """The paths form was asked for where there are more paths than are listed."""


@dataclass(frozen=True)
class Factor:
    """One local derivative: ``symbol`` (``dout_n9/dnet_n9``), its ``formula``
    (``sigmoid(net_n9) * (1 - sigmoid(net_n9))``), both also in LaTeX, and its ``value``."""

    symbol: str
    formula: str
    value: float
    symbol_latex: str
    formula_latex: str


@dataclass(frozen=True)
class ChainPath:
    """One path from the node the parameter feeds to an output node (``nodes`` in that order),
    its ``factors`` from the loss backwards, and ``product``, their product left to right."""

    nodes: tuple[str, ...]
    factors: tuple[Factor, ...]
    product: float


@dataclass(frozen=True)
class DeltaTerm:
    """One term ``w_jk * delta_k`` of ``delta_j = f'(net_j) sum_k w_jk delta_k``."""

    weight: str
    weight_value: float
    node: str
    delta: float


@dataclass(frozen=True)
class DeltaForm:
    """``dE/dp = delta_j * dnet_j/dp``: ``delta`` is ``dE/dnet_j`` (backpropagated), ``input``
    is ``dnet_j/dp`` (``out_i``, ``x_i`` or 1); for a hidden node ``derivative`` is
    ``f'(net_j)`` and ``terms`` the ``w_jk delta_k`` of the next layer."""

    node: str
    delta: Factor
    input: Factor
    derivative: Factor | None
    terms: tuple[DeltaTerm, ...]
    product: float
    recursion: str
    recursion_latex: str


@dataclass(frozen=True)
class Explanation:
    """``dE/dp`` of one parameter for one sample, by the chain rule.

    ``source`` is the node a weight comes from (``None`` for a bias), ``node`` the node ``p``
    feeds; ``gradient`` is the backpropagated value, ``sum`` the sum of the path products (or
    the delta form's product), equal to it up to rounding; ``paths`` is empty in the delta form.
    """

    parameter: str
    kind: Literal["weight", "bias"]
    value: float
    source: str | None
    node: str
    loss: float
    gradient: float
    form: Form
    path_count: int
    paths: tuple[ChainPath, ...]
    delta: DeltaForm | None
    sum: float
    notes: tuple[str, ...]


def explain(
    network: Network,
    params: Params,
    X: ArrayLike,
    T: ArrayLike,
    parameter: str,
    *,
    form: FormChoice = "auto",
    max_paths: int = MAX_PATHS,
) -> Explanation:
    """``dE/dparameter`` for the one sample ``(X, T)`` as a sum over chain-rule paths.

    ``form``: ``auto`` lists the paths when there are at most ``max_paths`` of them, else gives
    the delta form; ``paths`` insists on the list (:class:`TooManyPaths` above the limit).
    Raises :class:`UnknownParameter` (pointer ``/parameter``), :class:`ShapeMismatch` for more
    than one row (``/inputs``), and what :func:`gradient` raises.
    """
    where = locations(network).get(parameter)
    if where is None:
        raise UnknownParameter(_unknown_message(network, parameter), "/parameter")
    return _Chain(network, params, X, T).explain(parameter, where, form, max_paths)


def explain_each(
    network: Network,
    params: Params,
    X: ArrayLike,
    T: ArrayLike,
    *,
    form: FormChoice = "auto",
    max_paths: int = MAX_PATHS,
) -> tuple[Explanation, ...]:
    """:func:`explain` for every parameter, ``w1..wN`` then ``b1..bM``, from one forward and one
    backward pass."""
    chain = _Chain(network, params, X, T)
    return tuple(
        chain.explain(name, where, form, max_paths) for name, where in locations(network).items()
    )


def path_count(network: Network, layer: int) -> int:
    """How many paths lead from a node of ``layer`` to the outputs: the product of the units of
    the later layers."""
    return math.prod(later.units for later in network.layers[layer + 1 :])


def _unknown_message(network: Network, parameter: str) -> str:
    names = list(locations(network))
    n_w = sum(1 for n in names if n.startswith("w"))
    n_b = len(names) - n_w
    return (
        f"unknown parameter {parameter!r}: this network's parameters are w1..w{n_w} and b1..b{n_b}"
    )


class _Chain:
    """The forward trace of one sample as plain floats, with the names of every node and
    weight: what the factors of any path are made of."""

    def __init__(self, network: Network, params: Params, X: ArrayLike, T: ArrayLike) -> None:
        x = check_batch(network, X)
        if x.shape[0] != 1:
            raise ShapeMismatch(
                f"an explanation is of one sample; inputs has {x.shape[0]} rows, give one "
                "row (and one row of targets)",
                "/inputs",
            )
        self.network = network
        self.result: GradientResult = gradient(network, params, x, T)
        # outs[0] are the inputs, outs[l + 1] and nets[l + 1] belong to layer l.
        self.outs: list[list[float]] = [x[0].tolist()]
        self.nets: list[list[float]] = [x[0].tolist()]
        for t in self.result.trace:
            self.outs.append(t.out[0].tolist())
            self.nets.append(t.net[0].tolist())
        # gradient() has checked the targets already; this only brings them in as floats.
        self.targets: list[float] = check_targets(network, T, 1)[0].tolist()
        self.W: list[list[list[float]]] = [p.W.tolist() for p in params]
        self.b: list[list[float]] = [p.b.tolist() for p in params]
        self.nodes = node_names(network)
        self.weight_names: list[list[list[str]]] = [
            [[""] * n_out for _ in range(n_in)] for n_in, n_out in network.shapes
        ]
        for name, loc in locations(network).items():
            if loc.kind == "W":
                self.weight_names[loc.layer][loc.row][loc.col] = name
        self.output = _Output(self)

    def node(self, layer: int, unit: int) -> str:
        """The name of unit ``unit`` of layer ``layer`` (0 is the first layer after the inputs)."""
        return self.nodes[layer + 1][unit]

    def explain(self, parameter: str, where: Location, form: FormChoice, limit: int) -> Explanation:
        l, j = where.layer, where.col
        count = path_count(self.network, l)
        notes: list[str] = []
        if self.output.fused:
            notes.append(self.output.note)
        if form == "paths" and count > limit:
            raise TooManyPaths(
                f"{parameter} reaches the outputs along {count} paths, more than the {limit} "
                "that are listed; ask for form 'delta' or 'auto'",
                "/form",
            )
        chosen: Form = "delta" if form == "delta" or (form == "auto" and count > limit) else "paths"
        if chosen == "delta" and form == "auto":
            notes.append(
                f"{count} paths lead from {self.node(l, j)} to the outputs, more than the {limit} "
                f"listed at most, so the gradient is given in the delta form: dE/d{parameter} = "
                f"delta_{self.node(l, j)} * dnet_{self.node(l, j)}/d{parameter}, with "
                "delta_j = f'(net_j) * sum_k w_jk * delta_k computed layer by layer from the "
                "output (backpropagation): the same sum over paths, factored."
            )
        grads = self.result.gradients[l]
        grad = float(grads.W[where.row, j] if where.kind == "W" else grads.b[j])
        value = self.W[l][where.row][j] if where.kind == "W" else self.b[l][j]
        paths: tuple[ChainPath, ...] = ()
        delta: DeltaForm | None = None
        if chosen == "paths":
            paths = tuple(self._paths(parameter, where))
            total = math.fsum(p.product for p in paths)
        else:
            delta = self._delta_form(parameter, where)
            total = delta.product
        return Explanation(
            parameter=parameter,
            kind="weight" if where.kind == "W" else "bias",
            value=value,
            source=self.nodes[l][where.row] if where.kind == "W" else None,
            node=self.node(l, j),
            loss=self.result.loss,
            gradient=grad,
            form=chosen,
            path_count=count,
            paths=paths,
            delta=delta,
            sum=total,
            notes=tuple(notes),
        )

    # -- the paths form --------------------------------------------------------------------

    def _paths(self, parameter: str, where: Location) -> list[ChainPath]:
        l, j = where.layer, where.col
        last = len(self.network.layers) - 1
        later = [range(layer.units) for layer in self.network.layers[l + 1 :]]
        ending = self._input_factor(parameter, where)
        paths: list[ChainPath] = []
        for tail in itertools.product(*later):
            units = (j, *tail)  # units[m - l] is the path's unit in layer m
            factors = list(self.output.factors[units[-1]])
            for m in range(last, l, -1):
                to, frm = units[m - l], units[m - 1 - l]
                factors.append(self._weight_factor(m, frm, to))
                factors.append(self._derivative(m - 1, frm))
            factors.append(ending)
            nodes = tuple(self.node(l + k, u) for k, u in enumerate(units))
            paths.append(ChainPath(nodes, tuple(factors), _product(factors)))
        return paths

    def _weight_factor(self, layer: int, frm: int, to: int) -> Factor:
        """``dnet_k/dout_m = w_mk`` for the weight of ``layer`` from unit ``frm`` of the layer
        before to unit ``to``."""
        name = self.weight_names[layer][frm][to]
        k, m = self.node(layer, to), self.node(layer - 1, frm)
        return Factor(
            f"dnet_{k}/dout_{m}",
            name,
            self.W[layer][frm][to],
            _frac(_tex_var("net", k), _tex_var("out", m)),
            _tex_param(name),
        )

    def _derivative(self, layer: int, unit: int) -> Factor:
        """``dout/dnet`` of a unit whose activation is element-wise."""
        return _activation_derivative(
            self.network.layers[layer],
            self.node(layer, unit),
            self.nets[layer + 1][unit],
            self.outs[layer + 1][unit],
        )

    def _input_factor(self, parameter: str, where: Location) -> Factor:
        """``dnet_j/dw = out_i`` (``x_i`` for an input node) or ``dnet_j/db = 1``."""
        j = self.node(where.layer, where.col)
        symbol = f"dnet_{j}/d{parameter}"
        symbol_latex = _frac(_tex_var("net", j), _tex_param(parameter))
        if where.kind == "b":
            return Factor(symbol, "1", 1.0, symbol_latex, "1")
        value = self.outs[where.layer][where.row]
        if where.layer == 0:
            return Factor(
                symbol, f"x{where.row + 1}", value, symbol_latex, f"x_{{{where.row + 1}}}"
            )
        i = self.nodes[where.layer][where.row]
        return Factor(symbol, f"out_{i}", value, symbol_latex, _tex_var("out", i))

    # -- the delta form --------------------------------------------------------------------

    def _delta_form(self, parameter: str, where: Location) -> DeltaForm:
        l, j = where.layer, where.col
        node = self.node(l, j)
        deltas = self.result.deltas
        delta_value = float(deltas[l][0, j])
        symbol, symbol_latex = f"delta_{node}", rf"\delta_{{{_tex_node(node)}}}"
        ending = self._input_factor(parameter, where)
        if l == len(self.network.layers) - 1:
            factors = self.output.factors[j]
            delta = Factor(
                symbol,
                " * ".join(f"({f.formula})" for f in factors),
                delta_value,
                symbol_latex,
                r" \cdot ".join(rf"\left({f.formula_latex}\right)" for f in factors),
            )
            return DeltaForm(
                node,
                delta,
                ending,
                None,
                (),
                _product([delta, ending]),
                "at the output, delta_k = dE/dnet_k",
                r"\delta_k = \frac{\partial E}{\partial net_k}",
            )
        derivative = self._derivative(l, j)
        terms = tuple(
            DeltaTerm(
                self.weight_names[l + 1][j][k],
                self.W[l + 1][j][k],
                self.node(l + 1, k),
                float(deltas[l + 1][0, k]),
            )
            for k in range(self.network.layers[l + 1].units)
        )
        if len(terms) <= MAX_WRITTEN_TERMS:
            total = " + ".join(f"{t.weight} * delta_{t.node}" for t in terms)
            total_latex = " + ".join(
                rf"{_tex_param(t.weight)} \, \delta_{{{_tex_node(t.node)}}}" for t in terms
            )
        else:
            first, end = terms[0].node, terms[-1].node
            total = f"sum over k in {first}..{end} of w_({node},k) * delta_k"
            total_latex = rf"\sum_{{k={_tex_node(first)}}}^{{{_tex_node(end)}}} w_{{jk}} \delta_k"
        delta = Factor(
            symbol,
            f"({derivative.formula}) * ({total})",
            delta_value,
            symbol_latex,
            rf"\left({derivative.formula_latex}\right) \cdot \left({total_latex}\right)",
        )
        return DeltaForm(
            node,
            delta,
            ending,
            derivative,
            terms,
            _product([delta, ending]),
            "delta_j = f'(net_j) * sum_k w_jk * delta_k, from delta_k = dE/dnet_k at the output",
            r"\delta_j = f'(net_j) \sum_k w_{jk} \, \delta_k",
        )


class _Output:
    """The first factors of every path, at each output unit: ``dE/dout_k`` and
    ``dout_k/dnet_k``, or the fused ``dE/dnet_k``."""

    def __init__(self, chain: _Chain) -> None:
        network = chain.network
        last = len(network.layers) - 1
        layer = network.layers[last]
        out, t = chain.outs[-1], chain.targets
        K = len(out)
        names = [chain.node(last, k) for k in range(K)]
        self.fused = layer.activation == "softmax" or network.loss == "binary_cross_entropy"
        self.note = ""
        self.factors: list[tuple[Factor, ...]] = []
        if not self.fused:
            for k, node in enumerate(names):
                d_out = _loss_derivative(network, node, out[k], t[k], K)
                d_net = chain._derivative(last, k)
                self.factors.append((d_out, d_net))
            return
        for k, node in enumerate(names):
            symbol = f"dE/dnet_{node}"
            symbol_latex = _frac("E", _tex_var("net", node))
            o, y = f"out_{node}", _target(node, K)
            o_tex, y_tex = _tex_var("out", node), _tex_target(node, K)
            if network.loss == "binary_cross_entropy":
                value = (out[k] - t[k]) / K
                formula, latex = f"{o} - {y}", f"{o_tex} - {y_tex}"
                if K > 1:
                    formula, latex = f"({formula}) / {K}", rf"\frac{{{latex}}}{{{K}}}"
            elif network.loss == "cross_entropy":
                value = out[k] - t[k]
                formula, latex = f"{o} - {y}", f"{o_tex} - {y_tex}"
            else:
                g = [_loss_derivative(network, m, out[i], t[i], K) for i, m in enumerate(names)]
                value = out[k] * (
                    g[k].value - math.fsum(gi.value * oi for gi, oi in zip(g, out, strict=True))
                )
                formula = (
                    f"{o} * (g_{node} - sum_m g_m * out_m) with g_m = dE/dout_m; "
                    f"g_{node} = {g[k].formula}"
                )
                latex = (
                    rf"{o_tex} \left(g_{{{_tex_node(node)}}} - \sum_m g_m \, out_m\right), \;"
                    rf" g_m = \frac{{\partial E}}{{\partial out_m}}"
                )
            self.factors.append((Factor(symbol, formula, value, symbol_latex, latex),))
        if network.loss == "binary_cross_entropy":
            self.note = (
                "The loss and the sigmoid at the output are differentiated together: "
                "dE/dnet_k = (out_k - target_k) / K is dE/dout_k * dout_k/dnet_k simplified; "
                "the two factors apart would divide by out_k * (1 - out_k), which is 0 once the "
                "sigmoid saturates."
            )
        elif network.loss == "cross_entropy":
            self.note = (
                "Softmax and cross_entropy are differentiated together: every out_k depends on "
                "every net_m, and dE/dnet_k = sum_m dE/dout_m * dout_m/dnet_k simplifies to "
                "out_k - target_k (the targets sum to 1), one fused factor at the output."
            )
        else:
            self.note = (
                "Every softmax output depends on every net input of its layer, so the output "
                "factor is the fused dE/dnet_k = sum_m dE/dout_m * dout_m/dnet_k = out_k * "
                "(g_k - sum_m g_m * out_m) with g = dE/dout; the paths end at net_k."
            )


def _loss_derivative(network: Network, node: str, out: float, target: float, K: int) -> Factor:
    """``dE/dout_k`` of the squared-error losses (one sample)."""
    symbol, symbol_latex = f"dE/dout_{node}", _frac("E", _tex_var("out", node))
    diff = f"out_{node} - {_target(node, K)}"
    diff_latex = f"{_tex_var('out', node)} - {_tex_target(node, K)}"
    if network.loss == "mean_squared_error":
        value = 2 * (out - target) / K
        if K == 1:
            return Factor(
                symbol, f"2 * ({diff})", value, symbol_latex, rf"2 \left({diff_latex}\right)"
            )
        return Factor(
            symbol, f"2 * ({diff}) / {K}", value, symbol_latex, rf"\frac{{2 ({diff_latex})}}{{{K}}}"
        )
    return Factor(symbol, diff, out - target, symbol_latex, diff_latex)


def _activation_derivative(layer: Layer, node: str, net: float, out: float) -> Factor:
    """``dout/dnet`` of an element-wise activation, beside the activation's formula."""
    symbol = f"dout_{node}/dnet_{node}"
    symbol_latex = _frac(_tex_var("out", node), _tex_var("net", node))
    n, n_tex = f"net_{node}", _tex_var("net", node)
    match layer.activation:
        case "identity":
            return Factor(symbol, "1", 1.0, symbol_latex, "1")
        case "relu":
            # f'(0) = 0, as in the core (and PyTorch).
            return Factor(
                symbol,
                f"1 if {n} > 0 else 0",
                1.0 if net > 0 else 0.0,
                symbol_latex,
                rf"\begin{{cases}} 1 & \text{{if }} {n_tex} > 0 \\ 0 & \text{{otherwise}} "
                r"\end{cases}",
            )
        case "leaky_relu":
            slope = layer.negative_slope
            return Factor(
                symbol,
                f"1 if {n} > 0 else {slope!r}",
                1.0 if net > 0 else float(slope),
                symbol_latex,
                rf"\begin{{cases}} 1 & \text{{if }} {n_tex} > 0 \\ {slope!r} & "
                r"\text{otherwise} \end{cases}",
            )
        case "sigmoid":
            s, s_tex = f"sigmoid({n})", rf"\sigma({n_tex})"
            return Factor(
                symbol,
                f"{s} * (1 - {s})",
                out * (1 - out),
                symbol_latex,
                rf"{s_tex} \left(1 - {s_tex}\right)",
            )
        case "tanh":
            return Factor(
                symbol, f"1 - tanh({n})^2", 1 - out * out, symbol_latex, rf"1 - \tanh^2({n_tex})"
            )
        case "softmax":
            pass
    raise AssertionError(f"{layer.activation} has no element-wise derivative")  # fused instead


def _product(factors: Sequence[Factor]) -> float:
    return math.prod(f.value for f in factors)


def _target(node: str, K: int) -> str:
    return "target" if K == 1 else f"target_{node}"


def _tex_target(node: str, K: int) -> str:
    return "y" if K == 1 else f"y_{{{_tex_node(node)}}}"


def _tex_node(node: str) -> str:
    """``n9`` -> ``n_{9}``."""
    return f"n_{{{node[1:]}}}"


def _tex_var(var: str, node: str) -> str:
    """``out``, ``n9`` -> ``out_{n_{9}}``."""
    return f"{var}_{{{_tex_node(node)}}}"


def _tex_param(name: str) -> str:
    """``w16`` -> ``w_{16}``."""
    return f"{name[0]}_{{{name[1:]}}}"


def _frac(num: str, den: str) -> str:
    return rf"\frac{{\partial {num}}}{{\partial {den}}}"
