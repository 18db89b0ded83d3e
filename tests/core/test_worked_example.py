"""The seed's worked example (a 2-3-3-1 network, one sample, one SGD step) reproduced number
for number from ``shared/seed/worked-example.json``, to 1e-12."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.core import (
    SGD,
    Layer,
    Network,
    Params,
    check_parameters,
    forward,
    from_named,
    gradient,
    node_names,
    step,
    to_named,
)
from tests.seed import SEED

TOL = 1e-12


X = [SEED["input"]]
T = [SEED["target"]]


@pytest.fixture
def network() -> Network:
    """The file's network; its "loss" field is prose, the half squared error."""
    spec = SEED["network"]
    layers = tuple(Layer(layer["units"], layer["activation"]) for layer in spec["layers"])
    return Network(spec["inputs"], layers, "half_squared_error")


@pytest.fixture
def params(network: Network) -> Params:
    given = SEED["parameters"]
    return check_parameters(network, list(zip(given["weights"], given["biases"], strict=True)))


def _assert_layers_close(actual: Params, weights: list[Any], biases: list[Any], what: str) -> None:
    assert len(actual) == len(weights) == len(biases), what
    for l, (p, W, b) in enumerate(zip(actual, weights, biases, strict=True)):
        np.testing.assert_allclose(p.W, np.array(W), rtol=0, atol=TOL, err_msg=f"{what} W{l}")
        np.testing.assert_allclose(p.b, np.array(b), rtol=0, atol=TOL, err_msg=f"{what} b{l}")


def _assert_named_close(actual: dict[str, float], expected: dict[str, float]) -> None:
    assert set(actual) == set(expected)
    for name, value in expected.items():
        assert abs(actual[name] - value) <= TOL, f"{name}: {actual[name]!r} != {value!r}"


def test_network_matches_the_seed_shapes(network: Network) -> None:
    assert network.shapes == ((2, 3), (3, 3), (3, 1))
    assert network.parameter_count == len(SEED["parameters_named"])


def test_forward_reproduces_every_net_and_out_per_layer(network: Network, params: Params) -> None:
    trace = forward(network, params, X)
    expected = SEED["forward"]
    assert len(trace) == len(expected["net"]) == len(expected["out"])
    for l, layer in enumerate(trace):
        assert layer.net.shape == layer.out.shape == (1, network.layers[l].units)
        np.testing.assert_allclose(layer.net[0], expected["net"][l], rtol=0, atol=TOL)
        np.testing.assert_allclose(layer.out[0], expected["out"][l], rtol=0, atol=TOL)


def test_forward_reproduces_every_named_node(network: Network, params: Params) -> None:
    trace = forward(network, params, X)
    names = node_names(network)
    assert names[0] == ["n1", "n2"]  # the inputs
    nodes: dict[str, Any] = SEED["forward"]["nodes"]
    seen: set[str] = set()
    for layer, layer_names in zip(trace, names[1:], strict=True):
        for j, name in enumerate(layer_names):
            seen.add(name)
            assert abs(float(layer.net[0, j]) - nodes[name]["net"]) <= TOL, name
            assert abs(float(layer.out[0, j]) - nodes[name]["out"]) <= TOL, name
    assert seen == set(nodes)


def test_gradient_reproduces_the_loss(network: Network, params: Params) -> None:
    result = gradient(network, params, X, T)
    assert abs(result.loss - SEED["loss"]) <= TOL
    # and by the definition: E = 1/2 (t - o)^2 with the file's output
    o = SEED["forward"]["out"][-1][0]
    assert abs(result.loss - 0.5 * (SEED["target"][0] - o) ** 2) <= TOL


def test_gradient_reproduces_every_delta(network: Network, params: Params) -> None:
    result = gradient(network, params, X, T)
    expected = SEED["deltas_dE_dnet"]
    assert len(result.deltas) == len(expected)
    for l, (delta, exp) in enumerate(zip(result.deltas, expected, strict=True)):
        assert delta.shape == (1, len(exp)), l
        np.testing.assert_allclose(delta[0], exp, rtol=0, atol=TOL, err_msg=f"delta {l}")


def test_gradient_reproduces_every_layered_gradient(network: Network, params: Params) -> None:
    result = gradient(network, params, X, T)
    given = SEED["gradients"]
    _assert_layers_close(result.gradients, given["weights"], given["biases"], "gradient")


def test_gradient_reproduces_every_named_gradient(network: Network, params: Params) -> None:
    result = gradient(network, params, X, T)
    _assert_named_close(to_named(result.gradients), SEED["gradients_named"])


def test_gradient_outputs_are_the_last_layer_out(network: Network, params: Params) -> None:
    result = gradient(network, params, X, T)
    np.testing.assert_allclose(result.outputs[0], SEED["forward"]["out"][-1], rtol=0, atol=TOL)


def test_one_sgd_step_reproduces_the_updated_parameters(network: Network, params: Params) -> None:
    result = gradient(network, params, X, T)
    new, state = step(SGD(learning_rate=SEED["learning_rate"]), params, result.gradients)
    after = SEED["after_one_sgd_step"]
    _assert_layers_close(new, after["weights"], after["biases"], "after step")
    _assert_named_close(to_named(new), after["named"])
    assert state.step == 1


def test_loss_after_one_sgd_step_is_reproduced(network: Network, params: Params) -> None:
    result = gradient(network, params, X, T)
    new, _ = step(SGD(learning_rate=SEED["learning_rate"]), params, result.gradients)
    assert abs(gradient(network, new, X, T).loss - SEED["after_one_sgd_step"]["loss"]) <= TOL


def test_from_named_equals_the_layered_parameters(network: Network, params: Params) -> None:
    named = from_named(network, SEED["parameters_named"])
    for p, q in zip(named, params, strict=True):
        assert np.array_equal(p.W, q.W)
        assert np.array_equal(p.b, q.b)


def test_to_named_equals_the_files_named_parameters(network: Network, params: Params) -> None:
    assert to_named(params) == SEED["parameters_named"]


def test_updated_named_parameters_load_back_into_the_updated_layers(network: Network) -> None:
    after = SEED["after_one_sgd_step"]
    loaded = from_named(network, after["named"])
    _assert_layers_close(loaded, after["weights"], after["biases"], "from_named after step")
