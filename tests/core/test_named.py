"""The seed's named notation: w1..wN row-major layer after layer, b1..bM unit after unit,
nodes n1..nK with the inputs first."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core import (
    DType,
    Layer,
    Location,
    Network,
    check_parameters,
    from_named,
    locations,
    node_names,
    parameter_names,
    to_named,
)

SEED = Network(2, (Layer(3, "relu"), Layer(3, "relu"), Layer(1, "sigmoid")), "half_squared_error")


def test_seed_parameter_names_are_w1_to_w18_then_b1_to_b7() -> None:
    expected = [f"w{i}" for i in range(1, 19)] + [f"b{i}" for i in range(1, 8)]
    assert parameter_names(SEED) == expected


def test_seed_node_names_are_n1_to_n9_inputs_first() -> None:
    assert node_names(SEED) == [["n1", "n2"], ["n3", "n4", "n5"], ["n6", "n7", "n8"], ["n9"]]


def test_seed_locations_follow_the_blog() -> None:
    loc = locations(SEED)
    assert loc["w1"] == Location("W", 0, 0, 0)
    assert loc["w3"] == Location("W", 0, 0, 2)
    assert loc["w4"] == Location("W", 0, 1, 0)  # second input row of layer 0
    assert loc["w7"] == Location("W", 1, 0, 0)
    assert loc["w9"] == Location("W", 1, 0, 2)
    assert loc["w10"] == Location("W", 1, 1, 0)
    assert loc["w16"] == Location("W", 2, 0, 0)
    assert loc["w18"] == Location("W", 2, 2, 0)
    assert loc["b1"] == Location("b", 0, -1, 0)
    assert loc["b3"] == Location("b", 0, -1, 2)
    assert loc["b4"] == Location("b", 1, -1, 0)
    assert loc["b7"] == Location("b", 2, -1, 0)
    assert list(loc) == parameter_names(SEED)


def test_seed_w7_connects_n3_to_n6() -> None:
    nodes = node_names(SEED)
    w7 = locations(SEED)["w7"]
    assert (nodes[w7.layer][w7.row], nodes[w7.layer + 1][w7.col]) == ("n3", "n6")
    b4 = locations(SEED)["b4"]
    assert nodes[b4.layer + 1][b4.col] == "n6"  # b4 is n6's bias


def _expected_locations(network: Network) -> dict[str, Location]:
    """Row-major weights layer after layer, then biases layer after layer, counted here."""
    weights = [
        Location("W", l, i, j)
        for l, (n_in, n_out) in enumerate(network.shapes)
        for i in range(n_in)
        for j in range(n_out)
    ]
    biases = [
        Location("b", l, -1, j) for l, (_, n_out) in enumerate(network.shapes) for j in range(n_out)
    ]
    return {f"w{k}": v for k, v in enumerate(weights, start=1)} | {
        f"b{k}": v for k, v in enumerate(biases, start=1)
    }


@st.composite
def networks(draw: st.DrawFn) -> Network:
    sizes = draw(st.lists(st.integers(1, 9), min_size=2, max_size=5))
    dtype: DType = draw(st.sampled_from(["float64", "float32"]))
    layers = tuple(Layer(n, "tanh") for n in sizes[1:])
    return Network(sizes[0], layers, "half_squared_error", dtype)


@settings(max_examples=100, deadline=None)
@given(networks())
def test_names_and_locations_count_every_parameter_once(network: Network) -> None:
    names = parameter_names(network)
    assert len(names) == len(set(names)) == network.parameter_count
    assert locations(network) == _expected_locations(network)
    nodes = [n for layer in node_names(network) for n in layer]
    assert nodes == [
        f"n{k}" for k in range(1, network.inputs + sum(l.units for l in network.layers) + 1)
    ]
    assert [len(layer) for layer in node_names(network)] == [
        network.inputs,
        *(layer.units for layer in network.layers),
    ]


@settings(max_examples=100, deadline=None)
@given(networks(), st.integers(0, 2**32 - 1))
def test_to_named_and_from_named_round_trip(network: Network, seed: int) -> None:
    rng = np.random.default_rng(seed)
    params = check_parameters(
        network,
        [
            (rng.normal(size=(n_in, n_out)), rng.normal(size=n_out))
            for n_in, n_out in network.shapes
        ],
    )
    named = to_named(params)
    assert list(named) == parameter_names(network)
    assert all(type(v) is float for v in named.values())
    for name, loc in locations(network).items():
        p = params[loc.layer]
        assert named[name] == (p.W[loc.row, loc.col] if loc.kind == "W" else p.b[loc.col])
    back = from_named(network, named)
    for p, q in zip(back, params, strict=True):
        assert p.W.dtype == q.W.dtype == p.b.dtype == network.np_dtype
        assert np.array_equal(p.W, q.W) and np.array_equal(p.b, q.b)
    assert to_named(back) == named


def test_from_named_ignores_the_order_of_the_names() -> None:
    names = parameter_names(SEED)
    named = {name: float(k) for k, name in enumerate(names)}
    shuffled = dict(reversed(list(named.items())))
    for p, q in zip(from_named(SEED, named), from_named(SEED, shuffled), strict=True):
        assert np.array_equal(p.W, q.W) and np.array_equal(p.b, q.b)
