"""One derivative explained by the chain rule, factor by factor, as the seed blog writes it: the
values. (Their symbols, formulas and words are :mod:`service.learn.explained`'s.)

A parameter ``p`` feeds one node ``j`` of layer ``l`` (a weight ``w`` from node ``i``, or the
bias of ``j``). Every path ``j = j_l -> j_{l+1} -> ... -> j_L`` (one unit in each later layer,
ending at an output node) contributes the product of its factors, from the loss back::

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
from typing import Generic, Literal, TypeVar

from numpy.typing import ArrayLike

from service.core.errors import CoreError, ShapeMismatch
from service.core.named import Location, locations, node_names
from service.core.network import Layer, Network
from service.core.parameters import Params, check_batch, check_targets
from service.core.propagation import GradientResult, gradient

MAX_PATHS = 256

Form = Literal["paths", "delta"]
FormChoice = Literal["auto", "paths", "delta"]
FactorKind = Literal["loss", "activation", "fused", "weight", "parameter"]


class UnknownParameter(CoreError):
    """The parameter name is not one of the network's ``w1..wN``, ``b1..bM``."""


class TooManyPaths(CoreError):
    """The paths form was asked for where there are more paths than are listed."""


@dataclass(frozen=True)
class Factor:
    """One local derivative on a path, and its ``value``. ``node`` belongs to layer ``layer``
    (0 is the first layer after the inputs); ``kind`` says which derivative:

    - ``loss``: ``dE/dout_node`` (the squared-error losses);
    - ``activation``: ``dout_node/dnet_node`` of the layer's element-wise activation;
    - ``fused``: ``dE/dnet_node`` at an output whose loss and activation are differentiated
      together;
    - ``weight``: ``dnet_node/dout_source``, the weight ``name`` from ``source`` to ``node``;
    - ``parameter``: ``dnet_node/dname`` for the parameter ``name``: ``out_source`` (an input's
      value when ``layer`` is 0), or 1 for a bias (``source`` None).
    """

    kind: FactorKind
    node: str
    layer: int
    value: float
    source: str | None = None
    name: str | None = None


#: What a path's factors and an explanation's delta form are: the values here
#: (:class:`Factor`, :class:`DeltaForm`), or the worded ones of :mod:`service.learn.explained`.
F = TypeVar("F")
D = TypeVar("D")


@dataclass(frozen=True)
class ChainPath(Generic[F]):
    """One path from the node the parameter feeds to an output node (``nodes`` in that order),
    its ``factors`` from the loss backwards, and ``product``, their product left to right."""

    nodes: tuple[str, ...]
    factors: tuple[F, ...]
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
    is ``dnet_j/dp`` (``out_i``, ``x_i`` or 1); at an output node ``output`` holds the factors
    whose product ``delta`` is; for a hidden node ``derivative`` is ``f'(net_j)`` and ``terms``
    the ``w_jk delta_k`` of the next layer."""

    node: str
    layer: int
    delta: float
    input: Factor
    output: tuple[Factor, ...]
    derivative: Factor | None
    terms: tuple[DeltaTerm, ...]
    product: float


@dataclass(frozen=True)
class Explanation(Generic[F, D]):
    """``dE/dp`` of one parameter for one sample, by the chain rule (its factors ``F`` and
    delta form ``D``: :class:`Factor` and :class:`DeltaForm` here).

    ``source`` is the node a weight comes from (``None`` for a bias), ``node`` the node ``p``
    feeds; ``gradient`` is the backpropagated value, ``sum`` the sum of the path products (or
    the delta form's product), equal to it up to rounding; ``paths`` is empty in the delta form.
    ``requested`` is the form asked for and ``max_paths`` the most paths listed: with ``auto``,
    the delta form was taken because ``path_count`` is above it.
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
    paths: tuple[ChainPath[F], ...]
    delta: D | None
    sum: float
    requested: FormChoice
    max_paths: int


#: An explanation as computed: its values.
Values = Explanation[Factor, DeltaForm]


def explain(
    network: Network,
    params: Params,
    X: ArrayLike,
    T: ArrayLike,
    parameter: str,
    *,
    form: FormChoice = "auto",
    max_paths: int = MAX_PATHS,
) -> Values:
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
) -> tuple[Values, ...]:
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


def fused_output(network: Network) -> bool:
    """Whether the output layer's loss and activation are differentiated together (one factor
    ``dE/dnet_k``): softmax, or sigmoid with ``binary_cross_entropy``."""
    return network.layers[-1].activation == "softmax" or network.loss == "binary_cross_entropy"


def loss_derivative(network: Network, out: float, target: float, K: int) -> float:
    """``dE/dout_k`` of the squared-error losses (one sample of ``K`` outputs)."""
    if network.loss == "mean_squared_error":
        return 2 * (out - target) / K
    return out - target


def activation_derivative(layer: Layer, net: float, out: float) -> float:
    """``dout/dnet`` of an element-wise activation at ``net`` (whose value is ``out``)."""
    match layer.activation:
        case "identity":
            return 1.0
        case "relu":
            return 1.0 if net > 0 else 0.0  # f'(0) = 0, as in the core (and PyTorch)
        case "leaky_relu":
            return 1.0 if net > 0 else float(layer.negative_slope)
        case "sigmoid":
            return out * (1 - out)
        case "tanh":
            return 1 - out * out
        case "softmax":
            pass
    raise AssertionError(f"{layer.activation} has no element-wise derivative")  # fused instead


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
        self.output = self._output_factors()

    def node(self, layer: int, unit: int) -> str:
        """The name of unit ``unit`` of layer ``layer`` (0 is the first layer after the inputs)."""
        return self.nodes[layer + 1][unit]

    def explain(self, parameter: str, where: Location, form: FormChoice, limit: int) -> Values:
        l, j = where.layer, where.col
        count = path_count(self.network, l)
        if form == "paths" and count > limit:
            raise TooManyPaths(
                f"{parameter} reaches the outputs along {count} paths, more than the {limit} "
                "that are listed; ask for form 'delta' or 'auto'",
                "/form",
            )
        chosen: Form = "delta" if form == "delta" or (form == "auto" and count > limit) else "paths"
        grads = self.result.gradients[l]
        grad = float(grads.W[where.row, j] if where.kind == "W" else grads.b[j])
        value = self.W[l][where.row][j] if where.kind == "W" else self.b[l][j]
        paths: tuple[ChainPath[Factor], ...] = ()
        delta: DeltaForm | None = None
        if chosen == "paths":
            paths = tuple(self._paths(parameter, where))
            total = math.fsum(p.product for p in paths)
        else:
            delta = self._delta_form(parameter, where)
            total = delta.product
        return Values(
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
            requested=form,
            max_paths=limit,
        )

    # -- the paths form --------------------------------------------------------------------

    def _paths(self, parameter: str, where: Location) -> list[ChainPath[Factor]]:
        l, j = where.layer, where.col
        last = len(self.network.layers) - 1
        later = [range(layer.units) for layer in self.network.layers[l + 1 :]]
        ending = self._input_factor(parameter, where)
        paths: list[ChainPath[Factor]] = []
        for tail in itertools.product(*later):
            units = (j, *tail)  # units[m - l] is the path's unit in layer m
            factors = list(self.output[units[-1]])
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
        k, m = self.node(layer, to), self.nodes[layer][frm]
        return Factor("weight", k, layer, self.W[layer][frm][to], m, name)

    def _derivative(self, layer: int, unit: int) -> Factor:
        """``dout/dnet`` of a unit whose activation is element-wise."""
        value = activation_derivative(
            self.network.layers[layer], self.nets[layer + 1][unit], self.outs[layer + 1][unit]
        )
        return Factor("activation", self.node(layer, unit), layer, value)

    def _input_factor(self, parameter: str, where: Location) -> Factor:
        """``dnet_j/dw = out_i`` (``x_i`` for an input node) or ``dnet_j/db = 1``."""
        j = self.node(where.layer, where.col)
        if where.kind == "b":
            return Factor("parameter", j, where.layer, 1.0, None, parameter)
        value = self.outs[where.layer][where.row]
        i = self.nodes[where.layer][where.row]
        return Factor("parameter", j, where.layer, value, i, parameter)

    def _output_factors(self) -> list[tuple[Factor, ...]]:
        """The first factors of every path, at each output unit: ``dE/dout_k`` and
        ``dout_k/dnet_k``, or the fused ``dE/dnet_k``."""
        network = self.network
        last = len(network.layers) - 1
        out, t = self.outs[-1], self.targets
        K = len(out)
        names = [self.node(last, k) for k in range(K)]
        if not fused_output(network):
            return [
                (
                    Factor("loss", node, last, loss_derivative(network, out[k], t[k], K)),
                    self._derivative(last, k),
                )
                for k, node in enumerate(names)
            ]
        factors: list[tuple[Factor, ...]] = []
        for k, node in enumerate(names):
            if network.loss == "binary_cross_entropy":
                value = (out[k] - t[k]) / K
            elif network.loss == "cross_entropy":
                value = out[k] - t[k]
            else:
                g = [loss_derivative(network, out[i], t[i], K) for i in range(K)]
                value = out[k] * (g[k] - math.fsum(gi * oi for gi, oi in zip(g, out, strict=True)))
            factors.append((Factor("fused", node, last, value),))
        return factors

    # -- the delta form --------------------------------------------------------------------

    def _delta_form(self, parameter: str, where: Location) -> DeltaForm:
        l, j = where.layer, where.col
        node = self.node(l, j)
        delta = float(self.result.deltas[l][0, j])
        ending = self._input_factor(parameter, where)
        product = delta * ending.value
        if l == len(self.network.layers) - 1:
            return DeltaForm(node, l, delta, ending, self.output[j], None, (), product)
        terms = tuple(
            DeltaTerm(
                self.weight_names[l + 1][j][k],
                self.W[l + 1][j][k],
                self.node(l + 1, k),
                float(self.result.deltas[l + 1][0, k]),
            )
            for k in range(self.network.layers[l + 1].units)
        )
        return DeltaForm(node, l, delta, ending, (), self._derivative(l, j), terms, product)


def _product(factors: Sequence[Factor]) -> float:
    return math.prod(f.value for f in factors)
