"""Backpropagation checked against central finite differences over random architectures.

The finite differences use a reference forward pass and losses written here from the textbook
formulas (vectorised over a stack of perturbed copies, so that every parameter and every net
input of a network is perturbed in one go). The core's loss must equal the reference loss, and
its gradients and deltas ``dE/dnet`` must equal the central differences of that loss to a
relative error of 1e-6 (with an absolute floor at the size of the rounding noise of the
differences, for values near 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from service.core import (
    Activation,
    GradientResult,
    Layer,
    Loss,
    Network,
    Params,
    check_parameters,
    gradient,
)

Array = NDArray[np.floating]

HIDDEN: tuple[Activation, ...] = ("identity", "relu", "leaky_relu", "sigmoid", "tanh")
OUTPUT_AND_LOSS: tuple[tuple[Activation, Loss], ...] = (
    *(
        (activation, loss)
        for activation in ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax")
        for loss in ("half_squared_error", "mean_squared_error")
    ),
    ("sigmoid", "binary_cross_entropy"),
    ("softmax", "cross_entropy"),
)
KINKED = ("relu", "leaky_relu")

H = 1e-4  # step of the five-point central differences (truncation error O(h^4))
RTOL = 1e-6  # the relative error the issue demands
NOISE = 1e-10  # absolute floor per unit of loss: the rounding noise of the differences, ~eps/h


@dataclass(frozen=True)
class Case:
    network: Network
    params: Params
    X: Array
    T: Array


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A random network (1 to 5 layers of 1 to 16 units), parameters, a batch and its targets."""
    inputs = draw(st.integers(1, 16))
    depth = draw(st.integers(1, 5))
    slopes = st.sampled_from([0.01, 0.1, 0.3])
    layers = [
        Layer(draw(st.integers(1, 16)), draw(st.sampled_from(HIDDEN)), draw(slopes))
        for _ in range(depth - 1)
    ]
    out_activation, loss = draw(st.sampled_from(OUTPUT_AND_LOSS))
    out_units = draw(st.integers(2 if out_activation == "softmax" else 1, 16))
    layers.append(Layer(out_units, out_activation, draw(slopes)))
    network = Network(inputs, tuple(layers), loss)

    rows = draw(st.integers(1, 8))
    scale = draw(st.sampled_from([0.5, 1.0, 2.0]))  # from mild to saturating activations
    hard = draw(st.booleans())  # hard (0/1, one-hot) or soft targets for the cross entropies
    return make_case(network, rows, draw(st.integers(0, 2**32 - 1)), scale=scale, hard=hard)


def make_case(
    network: Network, rows: int, seed: int, *, scale: float = 1.0, hard: bool = False
) -> Case:
    """Parameters ``W ~ N(0, scale^2 / n_in)``, ``b ~ N(0, 0.25)``, a batch ``X ~ N(0, 1)`` of
    ``rows`` rows and targets the loss accepts."""
    rng = np.random.default_rng(seed)
    raw = [
        (rng.normal(0.0, scale / np.sqrt(n_in), (n_in, n_out)), rng.normal(0.0, 0.5, n_out))
        for n_in, n_out in network.shapes
    ]
    X = rng.normal(0.0, 1.0, (rows, network.inputs))
    last = network.layers[-1]
    T = _targets(rng, last.activation, network.loss, (rows, last.units), hard=hard)
    return Case(network, check_parameters(network, raw), X, T)


def _targets(
    rng: np.random.Generator,
    activation: Activation,
    loss: Loss,
    shape: tuple[int, int],
    *,
    hard: bool,
) -> Array:
    rows, k = shape
    if loss == "binary_cross_entropy":
        T = rng.uniform(0.0, 1.0, shape)
        return np.round(T) if hard else T
    if loss == "cross_entropy":
        if hard:
            return np.eye(k)[rng.integers(0, k, rows)]
        return rng.dirichlet(np.ones(k), rows)
    if activation in ("sigmoid", "softmax"):
        return rng.uniform(0.0, 1.0, shape)
    if activation == "tanh":
        return rng.uniform(-1.0, 1.0, shape)
    return rng.normal(0.0, 1.0, shape)


# -- the reference: forward and loss over a stack of perturbed copies (leading axes) ----------


def ref_activate(layer: Layer, net: Array) -> Array:
    match layer.activation:
        case "identity":
            return net
        case "relu":
            return np.where(net > 0, net, 0.0)
        case "leaky_relu":
            return np.where(net > 0, net, layer.negative_slope * net)
        case "sigmoid":
            sigmoid: Array = 0.5 * (1.0 + np.tanh(0.5 * net))  # = 1 / (1 + e^-net), no overflow
            return sigmoid
        case "tanh":
            return np.tanh(net)
        case "softmax":
            e = np.exp(net - net.max(axis=-1, keepdims=True))
            softmax: Array = e / e.sum(axis=-1, keepdims=True)
            return softmax
    raise AssertionError(layer.activation)


def ref_loss(loss: Loss, net: Array, out: Array, T: Array) -> Array:
    """The batch mean of the per-sample loss, over the last two axes (rows, outputs)."""
    match loss:
        case "half_squared_error":
            per_sample = 0.5 * ((T - out) ** 2).sum(axis=-1)
        case "mean_squared_error":
            per_sample = ((T - out) ** 2).mean(axis=-1)
        case "binary_cross_entropy":
            log_o = -np.logaddexp(0.0, -net)  # log sigmoid(net)
            log_1_minus_o = -np.logaddexp(0.0, net)  # log (1 - sigmoid(net))
            per_sample = -(T * log_o + (1 - T) * log_1_minus_o).mean(axis=-1)
        case "cross_entropy":
            log_softmax = net - np.logaddexp.reduce(net, axis=-1, keepdims=True)
            per_sample = -(T * log_softmax).sum(axis=-1)
    result: Array = per_sample.mean(axis=-1)
    return result


@dataclass(frozen=True)
class Propagated:
    loss: Array  # shape of the leading (stack) axes
    kinked_nets: dict[int, Array]  # net inputs of the relu / leaky_relu layers from ``start`` on


def ref_from(case: Case, start: int, net: Array) -> Propagated:
    """Propagate ``net`` (the net input of layer ``start``) to the loss."""
    network, params = case.network, case.params
    kinked: dict[int, Array] = {}
    out = net
    for l in range(start, len(network.layers)):
        if l > start:
            net = out @ params[l].W.astype(np.float64) + params[l].b.astype(np.float64)
        if network.layers[l].activation in KINKED:
            kinked[l] = net
        out = ref_activate(network.layers[l], net)
    return Propagated(ref_loss(network.loss, net, out, case.T), kinked)


def _ref_loss(case: Case) -> Array:
    a = ref_layer_inputs(case)
    last = len(case.network.layers) - 1
    return ref_from(case, last, a[last] @ case.params[last].W + case.params[last].b).loss


def ref_layer_inputs(case: Case) -> list[Array]:
    """``a_{l-1}`` of every layer ``l``: the batch, then the outputs of each layer."""
    a = [case.X]
    for layer, p in zip(case.network.layers, case.params, strict=True):
        a.append(ref_activate(layer, a[-1] @ p.W + p.b))
    return a


def no_kink_crossed(base: Propagated, *perturbed: Propagated) -> bool:
    """Whether no relu / leaky_relu net input changes sign between the base and a perturbation
    (the derivative does not exist at the kink; differences across it are meaningless)."""
    for l, net in base.kinked_nets.items():
        for p in perturbed:
            if not np.array_equal(
                p.kinked_nets[l] > 0, np.broadcast_to(net > 0, p.kinked_nets[l].shape)
            ):
                return False
    return True


def central_differences(case: Case, start: int, directions: Array) -> tuple[Array, bool]:
    """The five-point central difference ``(-E(2h) + 8 E(h) - 8 E(-h) + E(-2h)) / 12h`` (error
    O(h^4)) of the loss along each of a stack of ``directions`` in the net input of layer
    ``start`` (shape (n, rows, units)), and whether every perturbation stayed clear of a kink.

    The net input is affine in the layer's parameters, so perturbing ``W[i, j]`` by ``s`` is
    perturbing the net input by ``s * a_{l-1} @ E_ij``, and ``b[j]`` by ``s * E_j``."""
    a = ref_layer_inputs(case)
    net = a[start] @ case.params[start].W + case.params[start].b
    base = ref_from(case, start, net)
    p1, m1, p2, m2 = (ref_from(case, start, net + s * directions) for s in (H, -H, 2 * H, -2 * H))
    numeric = (8 * (p1.loss - m1.loss) - (p2.loss - m2.loss)) / (12 * H)
    return numeric, no_kink_crossed(base, p1, m1, p2, m2)


def assert_matches_differences(analytic: Array, numeric: Array, loss: float, what: str) -> None:
    assert analytic.shape == numeric.shape, what
    error = np.abs(analytic - numeric)
    bound = RTOL * np.maximum(np.abs(analytic), np.abs(numeric)) + NOISE * max(1.0, abs(loss))
    worst = np.unravel_index(np.argmax(error - bound), error.shape)
    assert (error <= bound).all(), (
        f"{what}{[int(i) for i in worst]}: analytic {analytic[worst]!r}, central difference "
        f"{numeric[worst]!r}, |error| {error[worst]:.3e} > {bound[worst]:.3e}"
    )


def _unit_stack(shape: tuple[int, ...]) -> Array:
    """Every unit array of ``shape`` (a single 1, else 0): shape (prod(shape), *shape)."""
    n = int(np.prod(shape))
    stack: Array = np.eye(n).reshape(n, *shape)
    return stack


# -- the properties ------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(cases())
def test_loss_equals_the_reference_formula(case: Case) -> None:
    result = gradient(case.network, case.params, case.X, case.T)
    expected = float(_ref_loss(case))
    assert abs(result.loss - expected) <= 1e-12 * max(1.0, abs(expected))


Checks = list[tuple[Array, Array, str]]  # analytic, central differences, what


def gradient_checks(case: Case, result: GradientResult) -> Checks | None:
    """``dE/dW`` and ``dE/db`` of every layer beside their central differences; ``None`` when
    a perturbation crosses a kink."""
    a = ref_layer_inputs(case)
    checks: Checks = []
    for l, p in enumerate(case.params):
        dW = _unit_stack(p.W.shape)
        db = _unit_stack(p.b.shape)[:, None, :]
        numeric_W, clear_W = central_differences(case, l, a[l] @ dW)
        numeric_b, clear_b = central_differences(case, l, db)
        if not (clear_W and clear_b):
            return None
        checks.append((result.gradients[l].W, numeric_W.reshape(p.W.shape), f"dE/dW{l}"))
        checks.append((result.gradients[l].b, numeric_b.reshape(p.b.shape), f"dE/db{l}"))
    return checks


def delta_checks(case: Case, result: GradientResult) -> Checks | None:
    """``dE/dnet`` of every layer beside its central differences; ``None`` when a perturbation
    crosses a kink."""
    a = ref_layer_inputs(case)
    assert len(result.deltas) == len(case.network.layers)
    checks: Checks = []
    for l, p in enumerate(case.params):
        net = a[l] @ p.W + p.b
        numeric, clear = central_differences(case, l, _unit_stack(net.shape))
        if not clear:
            return None
        checks.append((result.deltas[l], numeric.reshape(net.shape), f"dE/dnet{l}"))
    return checks


@settings(max_examples=150, deadline=None)
@given(cases())
def test_weight_and_bias_gradients_match_central_differences(case: Case) -> None:
    result = gradient(case.network, case.params, case.X, case.T)
    checks = gradient_checks(case, result)
    assume(checks is not None)
    assert checks is not None
    for analytic, numeric, what in checks:
        assert_matches_differences(analytic, numeric, result.loss, what)


@settings(max_examples=150, deadline=None)
@given(cases())
def test_deltas_match_central_differences_on_each_net_input(case: Case) -> None:
    result = gradient(case.network, case.params, case.X, case.T)
    checks = delta_checks(case, result)
    assume(checks is not None)
    assert checks is not None
    for analytic, numeric, what in checks:
        assert_matches_differences(analytic, numeric, result.loss, what)


@pytest.mark.parametrize(("out_activation", "loss"), OUTPUT_AND_LOSS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_every_pairing_matches_central_differences(
    hidden: Activation, out_activation: Activation, loss: Loss
) -> None:
    """Every hidden activation with every output and loss at least once, whatever the draws of
    the properties above."""
    layers = (Layer(5, hidden, 0.1), Layer(4, hidden, 0.1), Layer(3, out_activation, 0.1))
    case = make_case(Network(3, layers, loss), rows=4, seed=2024)
    result = gradient(case.network, case.params, case.X, case.T)
    assert abs(result.loss - float(_ref_loss(case))) <= 1e-12 * max(1.0, abs(result.loss))
    checks = gradient_checks(case, result)
    deltas = delta_checks(case, result)
    assert checks is not None and deltas is not None, "the fixed draw crosses a kink"
    for analytic, numeric, what in [*checks, *deltas]:
        assert_matches_differences(analytic, numeric, result.loss, what)


@settings(max_examples=150, deadline=None)
@given(cases())
def test_gradients_are_the_deltas_times_the_layer_inputs(case: Case) -> None:
    result = gradient(case.network, case.params, case.X, case.T)
    a = ref_layer_inputs(case)
    for l, (g, delta) in enumerate(zip(result.gradients, result.deltas, strict=True)):
        assert delta.shape == (case.X.shape[0], case.network.layers[l].units)
        np.testing.assert_allclose(g.W, a[l].T @ delta, rtol=1e-12, atol=1e-14, err_msg=f"W{l}")
        np.testing.assert_allclose(g.b, delta.sum(axis=0), rtol=1e-12, atol=1e-14, err_msg=f"b{l}")


@settings(max_examples=150, deadline=None)
@given(cases())
def test_float32_loss_and_gradients_are_close_to_float64(case: Case) -> None:
    n64 = case.network
    n32 = Network(n64.inputs, n64.layers, n64.loss, "float32")
    p32 = check_parameters(n32, [(p.W, p.b) for p in case.params])
    r64 = gradient(n64, case.params, case.X, case.T)
    r32 = gradient(n32, p32, case.X, case.T)
    # a relu / leaky_relu net input on the other side of 0 in float32 is another function
    for layer, t32, t64 in zip(n64.layers, r32.trace, r64.trace, strict=True):
        if layer.activation in KINKED:
            assume(np.array_equal(t32.net > 0, t64.net > 0))
    assert abs(r32.loss - r64.loss) <= 1e-4 + 1e-3 * abs(r64.loss)
    for l, (g32, g64) in enumerate(zip(r32.gradients, r64.gradients, strict=True)):
        assert g32.W.dtype == g32.b.dtype == np.float32
        np.testing.assert_allclose(g32.W, g64.W, rtol=1e-3, atol=1e-4, err_msg=f"W{l}")
        np.testing.assert_allclose(g32.b, g64.b, rtol=1e-3, atol=1e-4, err_msg=f"b{l}")
