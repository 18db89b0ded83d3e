"""Numeric robustness over the API: inputs of +-1e300 and 1e-300, 20-layer networks, saturated
sigmoids and softmaxes. No response carries NaN or infinity (every body is parsed strictly);
where the true result is beyond float range the answer is a 422 whose type ends in
``numeric-overflow``, and a train-step that overflows commits nothing. Forward, gradient and
train-step, on stored models and stateless."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.api.app import create_app
from service.settings import Settings
from tests.api.support import client_for
from tests.reliability.support import strict_json

pytestmark = pytest.mark.anyio

HUGE = 1e300
TINY = 1e-300
BEYOND = 1.7e308  # a finite net input whose double is not
OUTPUTS = {
    "sigmoid": ("binary_cross_entropy", [[1.0, 0.0]]),
    "softmax": ("cross_entropy", [[1.0, 0.0]]),
    "identity": ("half_squared_error", [[1.0, 0.0]]),
}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(registry="memory://"))
    async with client_for(app) as c:
        yield c
    app.state.store.close()


async def call(
    client: httpx.AsyncClient, method: str, path: str, body: Any = None, **params: str
) -> tuple[int, Any]:
    """The status and the strictly parsed body (ValueError on NaN or infinity)."""
    response = await client.request(method, path, json=body, params=params)
    assert response.status_code < 500, response.text
    return response.status_code, strict_json(response.text)


def assert_finite_or_overflow(status: int, body: Any) -> None:
    """A 200 (finite by the strict parse) or a clear numeric-overflow problem."""
    if status == 200:
        return
    assert status == 422, body
    assert body["type"].endswith("numeric-overflow"), body
    assert body["detail"] and body["errors"], body


def deep_network(hidden: str, output: str) -> dict[str, Any]:
    """20 layers: 19 of 8 ``hidden`` units and one of 2 ``output`` units, 8 inputs."""
    layers = [{"units": 8, "activation": hidden} for _ in range(19)]
    return {
        "inputs": 8,
        "layers": [*layers, {"units": 2, "activation": output}],
        "loss": OUTPUTS[output][0],
    }


def row(x: float) -> list[list[float]]:
    return [[x, -x, x, x, -x, x, -x, -x]]


async def create(client: httpx.AsyncClient, name: str, **model: Any) -> dict[str, Any]:
    status, body = await call(client, "POST", "/v1/models", {"name": name, **model})
    assert status == 201, body
    result: dict[str, Any] = body
    return result


async def parameters(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    status, body = await call(client, "GET", f"/v1/models/{name}/parameters")
    assert status == 200, body
    result: dict[str, Any] = body
    return result


@pytest.mark.parametrize("x", [HUGE, -HUGE, TINY])
@pytest.mark.parametrize("output", list(OUTPUTS))
@pytest.mark.parametrize("hidden", ["tanh", "sigmoid", "relu"])
async def test_twenty_layer_networks_on_extreme_inputs_answer_finite_or_a_clear_overflow(
    client: httpx.AsyncClient, hidden: str, output: str, x: float
) -> None:
    network = deep_network(hidden, output)
    await create(client, "deep", network=network, init={"scheme": "xavier_uniform", "seed": 7})
    before = await parameters(client, "deep")
    inputs, targets = row(x), OUTPUTS[output][1]
    data = {"inputs": inputs, "targets": targets, "learning_rate": 0.1}
    inline = {"network": network, "parameters": before["parameters"]}

    answers = [
        await call(client, "POST", "/v1/models/deep/forward", {"inputs": inputs, "trace": True}),
        await call(client, "POST", "/v1/forward", {**inline, "inputs": inputs, "trace": True}),
        await call(
            client,
            "POST",
            "/v1/models/deep/gradient",
            {"inputs": inputs, "targets": targets, "deltas": True, "trace": True},
        ),
        await call(
            client,
            "POST",
            "/v1/gradient",
            {**inline, "inputs": inputs, "targets": targets, "deltas": True},
            notation="named",
        ),
        await call(client, "POST", "/v1/train-step", {**inline, **data}),
    ]
    stored_step = await call(client, "POST", "/v1/models/deep/train-step", data)
    for status, body in [*answers, stored_step]:
        assert_finite_or_overflow(status, body)
    if hidden != "relu" or x == TINY:
        # Saturating units (or tiny inputs) bound everything after the first layer: nothing
        # overflows, so nothing may be refused.
        assert [status for status, _ in [*answers, stored_step]] == [200] * 6

    after = await parameters(client, "deep")
    if stored_step[0] == 200:
        assert after["version"] == before["version"] + 1
        assert after["parameters"] == answers[-1][1]["parameters"]  # stored == stateless
    else:
        assert after == before  # an overflowing step commits nothing


@pytest.mark.parametrize("net", [1e4, -1e4, HUGE, -HUGE, BEYOND, -BEYOND])
@pytest.mark.parametrize("target", [0.0, 1.0])
async def test_saturated_sigmoid_with_binary_cross_entropy_has_its_exact_finite_loss(
    client: httpx.AsyncClient, net: float, target: float
) -> None:
    # One unit, w = 1, b = 0: the net input is the input. E = softplus(net) - t net, which is
    # 0 where the sigmoid saturates towards the target and |net| where it saturates away.
    network = {
        "inputs": 1,
        "layers": [{"units": 1, "activation": "sigmoid"}],
        "loss": "binary_cross_entropy",
    }
    params = {"layers": [{"weights": [[1.0]], "biases": [0.0]}]}
    await create(client, "bce", network=network, parameters=params)
    data: dict[str, Any] = {"inputs": [[net]], "targets": [[target]]}
    right = (net > 0) == (target == 1.0)
    for path, body in [
        ("/v1/models/bce/gradient", data),
        ("/v1/gradient", {"network": network, "parameters": params, **data}),
    ]:
        status, answer = await call(client, "POST", path, {**body, "deltas": True, "trace": True})
        assert status == 200, answer
        assert answer["loss"] == (0.0 if right else abs(net))
        out = 1.0 if net > 0 else 0.0
        assert answer["trace"]["layers"][0]["out"] == [[out]]
        assert answer["gradients"]["layers"][0]["biases"] == [out - target]
        assert answer["gradients"]["layers"][0]["weights"] == [[net * (out - target)]]
    status, answer = await call(
        client, "POST", "/v1/models/bce/train-step", {**data, "learning_rate": 1e-9}
    )
    assert status == 200, answer


@pytest.mark.parametrize("net", [1e4, HUGE, 8e307, BEYOND])
@pytest.mark.parametrize("hot", [0, 1])
async def test_saturated_softmax_with_cross_entropy_overflows_only_when_its_loss_does(
    client: httpx.AsyncClient, net: float, hot: int
) -> None:
    # Net inputs (net, -net): the loss is 0 for the class the softmax saturates to and 2 net
    # for the other, which is beyond float range for net = 1.7e308.
    network = {
        "inputs": 1,
        "layers": [{"units": 2, "activation": "softmax"}],
        "loss": "cross_entropy",
    }
    params = {"layers": [{"weights": [[1.0, -1.0]], "biases": [0.0, 0.0]}]}
    await create(client, "ce", network=network, parameters=params)
    targets = [[1.0, 0.0]] if hot == 0 else [[0.0, 1.0]]
    data = {"inputs": [[net]], "targets": targets}
    loss = 0.0 if hot == 0 else 2 * net
    status, answer = await call(client, "POST", "/v1/models/ce/forward", {"inputs": [[net]]})
    assert (status, answer["outputs"]) == (200, [[1.0, 0.0]])
    for path, body in [
        ("/v1/models/ce/gradient", data),
        ("/v1/gradient", {"network": network, "parameters": params, **data}),
        ("/v1/models/ce/train-step", {**data, "learning_rate": 1e-300}),
        ("/v1/train-step", {"network": network, "parameters": params, **data}),
    ]:
        status, answer = await call(client, "POST", path, body)
        if math.isinf(loss):
            assert status == 422 and answer["type"].endswith("numeric-overflow"), answer
        else:
            assert status == 200, answer
            assert answer["loss"] == loss


async def test_net_inputs_beyond_float_range_are_a_clear_422_everywhere(
    client: httpx.AsyncClient,
) -> None:
    network = {
        "inputs": 2,
        "layers": [{"units": 1, "activation": "tanh"}],
        "loss": "half_squared_error",
    }
    params = {"layers": [{"weights": [[HUGE], [HUGE]], "biases": [0.0]}]}
    await create(client, "wide", network=network, parameters=params)
    data = {"inputs": [[HUGE, HUGE]], "targets": [[0.0]]}
    inline = {"network": network, "parameters": params}
    for path, body in [
        ("/v1/models/wide/forward", {"inputs": data["inputs"]}),
        ("/v1/forward", {**inline, "inputs": data["inputs"]}),
        ("/v1/models/wide/gradient", data),
        ("/v1/gradient", {**inline, **data}),
        ("/v1/models/wide/train-step", data),
        ("/v1/train-step", {**inline, **data}),
    ]:
        status, answer = await call(client, "POST", path, body)
        assert status == 422, answer
        assert answer["type"].endswith("numeric-overflow"), answer
        assert answer["errors"][0]["pointer"] == "/layers/0", answer
    assert (await parameters(client, "wide"))["version"] == 1


@pytest.mark.parametrize(
    "optimizer",
    [
        {"kind": "sgd", "learning_rate": 1e300},
        {"kind": "sgd", "learning_rate": 1e300, "momentum": 0.9, "nesterov": True},
        {"kind": "adam", "learning_rate": 1e300},
    ],
)
async def test_a_step_whose_update_overflows_is_a_clear_422_and_commits_nothing(
    client: httpx.AsyncClient, optimizer: dict[str, Any]
) -> None:
    network = {
        "inputs": 1,
        "layers": [{"units": 1, "activation": "identity"}],
        "loss": "half_squared_error",
    }
    params = {"layers": [{"weights": [[1e300]], "biases": [-1e300]}]}
    await create(client, "lr", network=network, parameters=params, optimizer=optimizer)
    data = {"inputs": [[1.0]], "targets": [[1e300]]}  # gradient 1e300 - 1e300 - 1e300 = -1e300
    status, answer = await call(client, "POST", "/v1/models/lr/train-step", data)
    assert status == 422 and answer["type"].endswith("numeric-overflow"), answer
    stateless = {"network": network, "parameters": params, "optimizer": optimizer, **data}
    status, answer = await call(client, "POST", "/v1/train-step", stateless)
    assert status == 422 and answer["type"].endswith("numeric-overflow"), answer
    after = await parameters(client, "lr")
    assert (after["version"], after["parameters"]) == (1, params)


@pytest.mark.parametrize("optimizer", [{"kind": "adam"}, {"kind": "sgd", "momentum": 0.9}])
@pytest.mark.parametrize("x", [TINY, HUGE])
async def test_optimizers_take_steps_on_tiny_and_huge_inputs_without_non_finite_state(
    client: httpx.AsyncClient, optimizer: dict[str, Any], x: float
) -> None:
    # Tiny inputs make gradients whose squares underflow to 0 (Adam divides by their root);
    # huge inputs saturate the tanh so the first layer's gradient is exactly 0.
    network = {
        "inputs": 2,
        "layers": [{"units": 4, "activation": "tanh"}, {"units": 1, "activation": "sigmoid"}],
        "loss": "binary_cross_entropy",
    }
    await create(
        client,
        "opt",
        network=network,
        init={"scheme": "he_normal", "seed": 3},
        optimizer=optimizer,
    )
    data = {"inputs": [[x, -x]], "targets": [[1.0]]}
    for version in range(2, 5):
        status, answer = await call(client, "POST", "/v1/models/opt/train-step", data)
        assert (status, answer["version"]) == (200, version), answer
    before = await parameters(client, "opt")
    status, answer = await call(
        client,
        "POST",
        "/v1/train-step",
        {"network": network, "parameters": before["parameters"], "optimizer": optimizer, **data},
    )
    assert status == 200, answer  # state (velocity, moments) returned finite, strictly parsed


@pytest.mark.parametrize(("x", "status"), [(HUGE, 422), (-HUGE, 422), (TINY, 200), (3e38, 200)])
async def test_float32_networks_refuse_inputs_beyond_their_range_and_flush_tiny_ones(
    client: httpx.AsyncClient, x: float, status: int
) -> None:
    network = {
        "inputs": 1,
        "layers": [{"units": 1, "activation": "sigmoid"}],
        "loss": "binary_cross_entropy",
        "dtype": "float32",
    }
    params = {"layers": [{"weights": [[1.0]], "biases": [0.0]}]}
    await create(client, "f32", network=network, parameters=params)
    data = {"inputs": [[x]], "targets": [[1.0]]}
    for path, body in [
        ("/v1/models/f32/forward", {"inputs": data["inputs"], "trace": True}),
        ("/v1/forward", {"network": network, "parameters": params, "inputs": data["inputs"]}),
        ("/v1/models/f32/gradient", data),
        ("/v1/gradient", {"network": network, "parameters": params, **data}),
    ]:
        got, answer = await call(client, "POST", path, body)
        assert got == status, answer
        if status == 422:
            assert answer["errors"][0]["pointer"] == "/inputs/0/0", answer
