"""The chain rule written out (the core's values, in words): the seed's factors against the
worked-example file and values derived here from it, and the sum over paths against
backpropagation on random networks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core import (
    Activation,
    Layer,
    Loss,
    Network,
    Params,
    ShapeMismatch,
    TooManyPaths,
    UnknownParameter,
    check_parameters,
    gradient,
    path_count,
    to_named,
)
from service.learn.explained import Explanation, explain, explain_each
from tests.seed import SEED

NET = Network(2, (Layer(3, "relu"), Layer(3, "relu"), Layer(1, "sigmoid")), "half_squared_error")
PARAMS = check_parameters(
    NET, list(zip(SEED["parameters"]["weights"], SEED["parameters"]["biases"], strict=True))
)
X = [SEED["input"]]
T = [SEED["target"]]
NODES = SEED["forward"]["nodes"]
W = SEED["parameters_named"]
GRAD = SEED["gradients_named"]
TOL = 1e-12

# Values derived here from the file, by the formulas the blog writes.
OUT9 = NODES["n9"]["out"]
DE_DOUT9 = OUT9 - SEED["target"][0]  # dE/dout_n9 = out_n9 - target
DOUT9_DNET9 = OUT9 * (1 - OUT9)  # sigmoid' = out (1 - out)


def relu_derivative(node: str) -> float:
    return 1.0 if NODES[node]["net"] > 0 else 0.0


def seed_explain(parameter: str, **kwargs: Any) -> Explanation:
    return explain(NET, PARAMS, X, T, parameter, **kwargs)


def values(e: Explanation, path: int = 0) -> list[float]:
    return [f.value for f in e.paths[path].factors]


def assert_values(actual: list[float], expected: list[float]) -> None:
    assert len(actual) == len(expected), (actual, expected)
    for a, b in zip(actual, expected, strict=True):
        assert abs(a - b) <= TOL, (actual, expected)


# -- the seed, against the worked example ---------------------------------------------------


@pytest.mark.parametrize(("parameter", "node"), [("w16", "n6"), ("w17", "n7"), ("w18", "n8")])
def test_output_weights_have_the_blogs_three_factors(parameter: str, node: str) -> None:
    e = seed_explain(parameter)
    assert e.form == "paths" and e.path_count == 1
    (path,) = e.paths
    assert path.nodes == ("n9",)
    assert [f.symbol for f in path.factors] == [
        "dE/dout_n9",
        "dout_n9/dnet_n9",
        f"dnet_n9/d{parameter}",
    ]
    assert [f.formula for f in path.factors] == [
        "out_n9 - target",
        "sigmoid(net_n9) * (1 - sigmoid(net_n9))",
        f"out_{node}",
    ]
    assert_values(values(e), [DE_DOUT9, DOUT9_DNET9, NODES[node]["out"]])
    assert abs(path.product - GRAD[parameter]) <= TOL
    assert abs(e.gradient - GRAD[parameter]) <= TOL
    assert abs(e.sum - GRAD[parameter]) <= TOL


def test_the_blogs_misprinted_w17_and_w18_come_out_right() -> None:
    # The blog prints 0.0850 and 0.1003; the file lists the true values.
    assert abs(seed_explain("w17").sum - 0.1408132011062524) <= TOL
    assert abs(seed_explain("w18").sum - 0.1663973773371419) <= TOL


def test_output_bias_ends_with_the_factor_one() -> None:
    e = seed_explain("b7")
    (path,) = e.paths
    assert path.factors[-1].symbol == "dnet_n9/db7"
    assert path.factors[-1].formula == "1"
    assert_values(values(e), [DE_DOUT9, DOUT9_DNET9, 1.0])
    assert abs(e.sum - GRAD["b7"]) <= TOL
    assert e.kind == "bias" and e.source is None and e.node == "n9"


def test_w7_has_the_blogs_five_factors() -> None:
    e = seed_explain("w7")
    (path,) = e.paths
    assert path.nodes == ("n6", "n9")
    assert [f.symbol for f in path.factors] == [
        "dE/dout_n9",
        "dout_n9/dnet_n9",
        "dnet_n9/dout_n6",
        "dout_n6/dnet_n6",
        "dnet_n6/dw7",
    ]
    assert [f.formula for f in path.factors][2:] == ["w16", "1 if net_n6 > 0 else 0", "out_n3"]
    assert_values(
        values(e),
        [DE_DOUT9, DOUT9_DNET9, W["w16"], relu_derivative("n6"), NODES["n3"]["out"]],
    )
    assert values(e)[3] == 1.0  # net_n6 = 0.0197 > 0
    assert abs(e.sum - GRAD["w7"]) <= TOL
    assert (e.source, e.node, e.value) == ("n3", "n6", 0.7)


def test_w1_sums_three_paths_through_n6_n7_and_n8() -> None:
    e = seed_explain("w1")
    assert e.path_count == 3
    assert [p.nodes for p in e.paths] == [
        ("n3", "n6", "n9"),
        ("n3", "n7", "n9"),
        ("n3", "n8", "n9"),
    ]
    for path, (w_out, w_hidden, node) in zip(
        e.paths, [("w16", "w7", "n6"), ("w17", "w8", "n7"), ("w18", "w9", "n8")], strict=True
    ):
        expected = [
            DE_DOUT9,
            DOUT9_DNET9,
            W[w_out],
            relu_derivative(node),
            W[w_hidden],
            relu_derivative("n3"),
            SEED["input"][0],  # dnet_n3/dw1 = x1
        ]
        assert_values([f.value for f in path.factors], expected)
        assert [f.formula for f in path.factors][2:] == [
            w_out,
            f"1 if net_{node} > 0 else 0",
            w_hidden,
            "1 if net_n3 > 0 else 0",
            "x1",
        ]
        assert abs(path.product - math.prod(expected)) <= TOL
    assert abs(e.sum - GRAD["w1"]) <= TOL
    assert abs(e.sum - 0.0559043) <= 1e-7
    # The blog shows the path through n6 only, which gives 0.0141202.
    assert abs(e.paths[0].product - 0.0141202) <= 1e-7


def test_a_dead_relu_zeroes_every_path_through_it() -> None:
    # n4 has net -0.079: relu' = 0, so w2 (n1 -> n4) gets no gradient.
    e = seed_explain("w2")
    assert all(p.factors[-2].value == 0.0 and p.product == 0.0 for p in e.paths)
    assert e.sum == 0.0 == GRAD["w2"]


def test_every_seed_gradient_is_the_sum_of_its_paths() -> None:
    explanations = explain_each(NET, PARAMS, X, T)
    assert [e.parameter for e in explanations] == list(GRAD)
    for e in explanations:
        assert abs(e.sum - GRAD[e.parameter]) <= TOL, e.parameter
        assert abs(e.gradient - GRAD[e.parameter]) <= TOL, e.parameter
        assert e.loss == SEED["loss"]


def test_latex_of_the_blogs_factors() -> None:
    (path,) = seed_explain("w7").paths
    assert path.factors[0].symbol_latex == r"\frac{\partial E}{\partial out_{n_{9}}}"
    assert (
        path.factors[1].formula_latex == r"\sigma(net_{n_{9}}) \left(1 - \sigma(net_{n_{9}})\right)"
    )
    assert path.factors[2].formula_latex == "w_{16}"
    assert path.factors[4].symbol_latex == r"\frac{\partial net_{n_{6}}}{\partial w_{7}}"


def test_delta_form_gives_delta_times_input_with_the_recursion() -> None:
    e = seed_explain("w1", form="delta")
    assert e.form == "delta" and e.paths == () and e.delta is not None
    d = e.delta
    deltas = SEED["deltas_dE_dnet"]
    assert d.node == "n3"
    assert abs(d.delta.value - deltas[0][0]) <= TOL
    assert d.input.formula == "x1" and d.input.value == SEED["input"][0]
    assert [(t.weight, t.node) for t in d.terms] == [("w7", "n6"), ("w8", "n7"), ("w9", "n8")]
    assert_values([t.delta for t in d.terms], deltas[1])
    assert d.derivative is not None and d.derivative.value == 1.0
    recursion = d.derivative.value * sum(t.weight_value * t.delta for t in d.terms)
    assert abs(recursion - d.delta.value) <= TOL
    assert abs(e.sum - GRAD["w1"]) <= TOL


def test_delta_form_at_the_output_is_the_loss_factor_times_the_activation_factor() -> None:
    e = seed_explain("w16", form="delta")
    assert e.delta is not None and e.delta.terms == () and e.delta.derivative is None
    assert abs(e.delta.delta.value - DE_DOUT9 * DOUT9_DNET9) <= TOL
    assert abs(e.sum - GRAD["w16"]) <= TOL


def test_too_many_paths_switch_to_the_delta_form_with_a_note() -> None:
    e = seed_explain("w1", max_paths=2)
    assert e.form == "delta" and e.path_count == 3
    assert any("delta form" in note for note in e.notes)
    assert abs(e.sum - GRAD["w1"]) <= TOL


def test_paths_form_refuses_more_paths_than_the_limit() -> None:
    with pytest.raises(TooManyPaths) as caught:
        seed_explain("w1", form="paths", max_paths=2)
    assert caught.value.pointer == "/form"


def test_path_count_is_the_product_of_the_later_layers() -> None:
    net = Network(
        2, (Layer(4, "relu"), Layer(5, "tanh"), Layer(3, "identity")), "mean_squared_error"
    )
    assert [path_count(net, l) for l in range(3)] == [15, 3, 1]


@pytest.mark.parametrize("name", ["w19", "b8", "w0", "x1", "", "w"])
def test_unknown_parameter_is_named_with_pointer(name: str) -> None:
    with pytest.raises(UnknownParameter) as caught:
        seed_explain(name)
    assert caught.value.pointer == "/parameter"
    assert repr(name) in caught.value.message
    assert "w1..w18" in caught.value.message and "b1..b7" in caught.value.message


def test_more_than_one_sample_is_refused() -> None:
    with pytest.raises(ShapeMismatch) as caught:
        explain(NET, PARAMS, X * 2, T * 2, "w1")
    assert caught.value.pointer == "/inputs"


def test_softmax_with_cross_entropy_has_one_fused_factor_out_minus_target() -> None:
    net = Network(2, (Layer(2, "tanh"), Layer(3, "softmax")), "cross_entropy")
    params = _params(net, np.random.default_rng(3))
    x, t = [[0.5, -0.2]], [[0.0, 1.0, 0.0]]
    result = gradient(net, params, x, t)
    e = explain(net, params, x, t, "w1")
    out = result.trace[-1].out[0]
    assert [p.nodes[-1] for p in e.paths] == ["n5", "n6", "n7"]
    for k, path in enumerate(e.paths):
        first = path.factors[0]
        assert first.symbol == f"dE/dnet_{path.nodes[-1]}"
        assert first.formula == f"out_{path.nodes[-1]} - target_{path.nodes[-1]}"
        assert abs(first.value - (out[k] - t[0][k])) <= TOL
    assert any("cross_entropy" in note for note in e.notes)
    assert abs(e.sum - to_named(result.gradients)["w1"]) <= TOL


def test_float32_networks_are_explained_to_float32_precision() -> None:
    net = Network(2, NET.layers, "half_squared_error", dtype="float32")
    params = check_parameters(
        net, list(zip(SEED["parameters"]["weights"], SEED["parameters"]["biases"], strict=True))
    )
    e = explain(net, params, X, T, "w1")
    assert abs(e.sum - GRAD["w1"]) <= 1e-6


# -- random networks, against backpropagation ----------------------------------------------

HIDDEN: tuple[Activation, ...] = ("identity", "relu", "leaky_relu", "sigmoid", "tanh")
OUTPUT_AND_LOSS: tuple[tuple[Activation, Loss], ...] = (
    ("identity", "half_squared_error"),
    ("sigmoid", "half_squared_error"),
    ("tanh", "mean_squared_error"),
    ("relu", "mean_squared_error"),
    ("leaky_relu", "half_squared_error"),
    ("sigmoid", "binary_cross_entropy"),
    ("softmax", "cross_entropy"),
    ("softmax", "half_squared_error"),
    ("softmax", "mean_squared_error"),
)
RTOL = 1e-9


@dataclass(frozen=True)
class Case:
    network: Network
    params: Params
    x: list[list[float]]
    t: list[list[float]]


def _params(net: Network, rng: np.random.Generator) -> Params:
    return check_parameters(
        net,
        [
            (rng.uniform(-1, 1, (n_in, n_out)), rng.uniform(-1, 1, n_out))
            for n_in, n_out in net.shapes
        ],
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A network of 1 to 4 layers of 1 to 3 units (so at most 27 paths), its parameters, one
    sample and targets the loss accepts."""
    depth = draw(st.integers(1, 4))
    output, loss = draw(st.sampled_from(OUTPUT_AND_LOSS))
    hidden = [
        Layer(draw(st.integers(1, 3)), draw(st.sampled_from(HIDDEN)), negative_slope=0.1)
        for _ in range(depth - 1)
    ]
    units = draw(st.integers(2, 3)) if output == "softmax" else draw(st.integers(1, 3))
    net = Network(draw(st.integers(1, 3)), (*hidden, Layer(units, output)), loss)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.uniform(-2, 2, (1, net.inputs))
    if loss == "cross_entropy":
        raw = rng.uniform(0, 1, units)
        t = raw / raw.sum()
    else:
        t = rng.uniform(0, 1, units)
    return Case(net, _params(net, rng), x.tolist(), [t.tolist()])


@settings(max_examples=150, deadline=None)
@given(cases())
def test_sum_over_paths_equals_backpropagation_on_random_networks(case: Case) -> None:
    """Relative to the size of the terms: the paths and the matrix products add the same terms
    in different orders, so they agree to rounding of the largest, not of a cancelled sum."""
    grads = to_named(gradient(case.network, case.params, case.x, case.t).gradients)
    for e in explain_each(case.network, case.params, case.x, case.t):
        assert e.form == "paths"
        assert len(e.paths) == e.path_count == path_count(case.network, _layer(case.network, e))
        for path in e.paths:
            assert path.product == math.prod(f.value for f in path.factors)
        scale = max(abs(grads[e.parameter]), sum(abs(p.product) for p in e.paths))
        assert abs(e.sum - grads[e.parameter]) <= RTOL * scale, (e.parameter, e.sum)
        assert e.gradient == grads[e.parameter]


@settings(max_examples=60, deadline=None)
@given(cases())
def test_delta_form_follows_its_recursion_on_random_networks(case: Case) -> None:
    grads = to_named(gradient(case.network, case.params, case.x, case.t).gradients)
    for e in explain_each(case.network, case.params, case.x, case.t, form="delta"):
        d = e.delta
        assert d is not None
        assert abs(e.sum - grads[e.parameter]) <= RTOL * max(abs(grads[e.parameter]), 1e-300)
        if d.derivative is not None:
            total = d.derivative.value * math.fsum(t.weight_value * t.delta for t in d.terms)
            scale = abs(d.derivative.value) * sum(abs(t.weight_value * t.delta) for t in d.terms)
            assert abs(total - d.delta.value) <= RTOL * scale


def _layer(net: Network, e: Explanation) -> int:
    names = [f"n{k}" for k in range(1, 1 + net.inputs + sum(l.units for l in net.layers))]
    index = names.index(e.node) - net.inputs
    for l, layer in enumerate(net.layers):
        if index < layer.units:
            return l
        index -= layer.units
    raise AssertionError(e.node)
