"""The seed's worked example end to end over HTTP: create, forward, gradient, one SGD step, on
stored models (memory and SQLite) and statelessly, and across a restart on a SQLite file."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.api.app import create_app
from service.settings import Settings
from tests.api.support import (
    AFTER_STEP,
    AFTER_STEP_NAMED,
    JSON,
    NODES,
    SEED,
    SEED_ACTIVATIONS,
    SEED_DATA,
    SEED_GRADIENTS,
    SEED_INPUTS,
    SEED_LR,
    SEED_NETWORK,
    SEED_PARAMETERS,
    SEED_PARAMETERS_NAMED,
    arrays,
    as_json,
    assert_close,
    client_for,
    create_seed,
    parameters_of,
    reference_gradient,
    reference_sgd,
    seed_model,
)

pytestmark = pytest.mark.anyio

FORWARD = SEED["forward"]
LOSS: float = SEED["loss"]
LOSS_AFTER: float = SEED["after_one_sgd_step"]["loss"]


def expected_trace_layers() -> list[JSON]:
    """Every layer's net and out for the one-row batch, as the API nests them."""
    return [
        {"net": [net], "out": [out]}
        for net, out in zip(FORWARD["net"], FORWARD["out"], strict=True)
    ]


def expected_trace_nodes() -> dict[str, JSON]:
    return {
        name: {"net": [FORWARD["nodes"][name]["net"]], "out": [FORWARD["nodes"][name]["out"]]}
        for name in NODES
    }


NOTATIONS = ["layered", "named"]


def test_reference_backpropagation_reproduces_worked_example() -> None:
    """The tests' own NumPy reference (used for multi-step checks) agrees with the file."""
    loss, grads = reference_gradient(
        arrays(SEED_PARAMETERS), SEED_ACTIVATIONS, SEED_INPUTS, SEED_DATA["targets"]
    )
    assert abs(loss - LOSS) <= 1e-12
    assert_close(as_json(grads), SEED_GRADIENTS)
    after, losses = reference_sgd(
        arrays(SEED_PARAMETERS), SEED_ACTIVATIONS, SEED_INPUTS, SEED_DATA["targets"], SEED_LR, 1
    )
    assert_close(as_json(after), AFTER_STEP)
    assert_close(losses, [LOSS])


@pytest.mark.parametrize("notation", NOTATIONS)
async def test_create_answers_201_with_location_etag_and_the_given_parameters(
    client: httpx.AsyncClient, notation: str
) -> None:
    response = await client.post("/v1/models", json=seed_model(named=notation == "named"))
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/v1/models/seed"
    assert response.headers["etag"] == '"1"'
    body = response.json()
    assert body["name"] == "seed"
    assert body["version"] == 1
    assert body["parameter_count"] == 25
    assert body["network"]["inputs"] == 2
    assert body["network"]["loss"] == "half_squared_error"
    assert [(layer["units"], layer["activation"]) for layer in body["network"]["layers"]] == [
        (3, "relu"),
        (3, "relu"),
        (1, "sigmoid"),
    ]
    assert body["init"] is None
    located = await client.get(response.headers["location"])
    assert located.status_code == 200
    assert located.json()["name"] == "seed"
    # Given numbers are stored exactly.
    assert await parameters_of(client, "seed") == SEED_PARAMETERS
    assert await parameters_of(client, "seed", notation="named") == SEED_PARAMETERS_NAMED


@pytest.mark.parametrize("notation", NOTATIONS)
async def test_forward_with_trace_reproduces_every_layer_of_worked_example(
    client: httpx.AsyncClient, notation: str
) -> None:
    await create_seed(client, named=notation == "named")
    response = await client.post(
        "/v1/models/seed/forward", json={"inputs": SEED_INPUTS, "trace": True}
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    body = response.json()
    assert body["model"] == "seed"
    assert body["version"] == 1
    assert_close(body["outputs"], [FORWARD["out"][-1]])
    assert_close(body["trace"]["layers"], expected_trace_layers())


async def test_forward_without_trace_returns_outputs_only(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.post("/v1/models/seed/forward", json={"inputs": SEED_INPUTS})
    assert response.status_code == 200, response.text
    body = response.json()
    assert_close(body["outputs"], [FORWARD["out"][-1]])
    assert body.get("trace") is None


async def test_forward_named_trace_lists_nodes_n3_to_n9(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.post(
        "/v1/models/seed/forward",
        params={"notation": "named"},
        json={"inputs": SEED_INPUTS, "trace": True},
    )
    assert response.status_code == 200, response.text
    trace = response.json()["trace"]
    assert_close(trace["nodes"], expected_trace_nodes())
    assert_close(trace["layers"], expected_trace_layers())


async def test_gradient_named_with_deltas_reproduces_worked_example(
    client: httpx.AsyncClient,
) -> None:
    await create_seed(client)
    response = await client.post(
        "/v1/models/seed/gradient",
        params={"notation": "named"},
        json={**SEED_DATA, "deltas": True},
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    body = response.json()
    assert body["model"] == "seed"
    assert body["version"] == 1
    assert_close(body["loss"], LOSS)
    assert_close(body["gradients"], SEED["gradients_named"])
    deltas = SEED["deltas_dE_dnet"]
    assert_close(body["deltas"]["layers"], [[row] for row in deltas])
    flat = [value for layer in deltas for value in layer]
    assert_close(
        body["deltas"]["nodes"], {name: [value] for name, value in zip(NODES, flat, strict=True)}
    )


async def test_gradient_layered_reproduces_worked_example(client: httpx.AsyncClient) -> None:
    await create_seed(client, named=True)
    response = await client.post(
        "/v1/models/seed/gradient", json={**SEED_DATA, "deltas": True, "trace": True}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert_close(body["loss"], LOSS)
    assert_close(body["gradients"], SEED_GRADIENTS)
    assert_close(body["deltas"]["layers"], [[row] for row in SEED["deltas_dE_dnet"]])
    assert_close(body["trace"]["layers"], expected_trace_layers())


async def test_train_step_makes_version_2_with_the_seed_update(
    client: httpx.AsyncClient,
) -> None:
    await create_seed(client)
    response = await client.post(
        "/v1/models/seed/train-step", json={**SEED_DATA, "learning_rate": SEED_LR}
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    body = response.json()
    assert body["model"] == "seed"
    assert body["version"] == 2
    assert_close(body["loss"], LOSS)  # the loss before the step

    got = await client.get("/v1/models/seed/parameters")
    assert got.status_code == 200
    assert got.headers["etag"] == '"2"'
    assert got.json()["model"] == "seed"
    assert got.json()["version"] == 2
    assert_close(got.json()["parameters"], AFTER_STEP)
    assert_close(await parameters_of(client, "seed", notation="named"), AFTER_STEP_NAMED)

    model = await client.get("/v1/models/seed")
    assert model.json()["version"] == 2
    assert model.headers["etag"] == '"2"'

    after = await client.post("/v1/models/seed/gradient", json=SEED_DATA)
    assert after.status_code == 200, after.text
    assert after.json()["version"] == 2
    assert_close(after.json()["loss"], LOSS_AFTER)


async def test_train_step_without_learning_rate_uses_default_sgd_rate_of_the_seed(
    client: httpx.AsyncClient,
) -> None:
    """The default optimizer is plain SGD with learning rate 0.01, the seed's."""
    await create_seed(client)
    response = await client.post("/v1/models/seed/train-step", json=SEED_DATA)
    assert response.status_code == 200, response.text
    assert_close(await parameters_of(client, "seed"), AFTER_STEP)


async def test_stateless_forward_reproduces_worked_example(client: httpx.AsyncClient) -> None:
    for parameters in (SEED_PARAMETERS, SEED_PARAMETERS_NAMED):
        response = await client.post(
            "/v1/forward",
            params={"notation": "named"},
            json={
                "network": SEED_NETWORK,
                "parameters": parameters,
                "inputs": SEED_INPUTS,
                "trace": True,
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert_close(body["outputs"], [FORWARD["out"][-1]])
        assert_close(body["trace"]["layers"], expected_trace_layers())
        assert_close(body["trace"]["nodes"], expected_trace_nodes())


async def test_stateless_gradient_reproduces_worked_example(client: httpx.AsyncClient) -> None:
    request = {"network": SEED_NETWORK, "parameters": SEED_PARAMETERS, **SEED_DATA}
    layered = await client.post("/v1/gradient", json={**request, "deltas": True})
    assert layered.status_code == 200, layered.text
    assert_close(layered.json()["loss"], LOSS)
    assert_close(layered.json()["gradients"], SEED_GRADIENTS)
    assert_close(layered.json()["deltas"]["layers"], [[row] for row in SEED["deltas_dE_dnet"]])

    named = await client.post("/v1/gradient", params={"notation": "named"}, json=request)
    assert named.status_code == 200, named.text
    assert_close(named.json()["loss"], LOSS)
    assert_close(named.json()["gradients"], SEED["gradients_named"])


async def test_stateless_train_step_returns_updated_parameters_and_stores_nothing(
    client: httpx.AsyncClient,
) -> None:
    request = {
        "network": SEED_NETWORK,
        "parameters": SEED_PARAMETERS_NAMED,
        **SEED_DATA,
        "learning_rate": SEED_LR,
    }
    layered = await client.post("/v1/train-step", json=request)
    assert layered.status_code == 200, layered.text
    assert_close(layered.json()["loss"], LOSS)
    assert_close(layered.json()["parameters"], AFTER_STEP)

    named = await client.post("/v1/train-step", params={"notation": "named"}, json=request)
    assert named.status_code == 200, named.text
    assert_close(named.json()["parameters"], AFTER_STEP_NAMED)

    listed = await client.get("/v1/models")
    assert listed.status_code == 200
    assert listed.json()["total"] == 0
    assert listed.json()["items"] == []


async def test_sqlite_registry_keeps_version_and_exact_parameters_across_apps(
    tmp_path: Path,
) -> None:
    settings = Settings(registry=f"sqlite:///{tmp_path}/r.db")
    first = create_app(settings)
    try:
        async with client_for(first) as client:
            await create_seed(client)
            step = await client.post(
                "/v1/models/seed/train-step", json={**SEED_DATA, "learning_rate": SEED_LR}
            )
            assert step.status_code == 200, step.text
            before = await client.get("/v1/models/seed/parameters")
            before_named = await parameters_of(client, "seed", notation="named")
            forward_before = await client.post(
                "/v1/models/seed/forward", json={"inputs": SEED_INPUTS, "trace": True}
            )
            assert forward_before.status_code == 200
    finally:
        first.state.store.close()

    second = create_app(settings)
    try:
        async with client_for(second) as client:
            model = await client.get("/v1/models/seed")
            assert model.status_code == 200, model.text
            assert model.json()["version"] == 2
            assert model.headers["etag"] == '"2"'
            after = await client.get("/v1/models/seed/parameters")
            # Bit-exact: JSON floats round-trip, so equal text means equal doubles.
            assert after.json() == before.json()
            assert after.json()["version"] == 2
            assert await parameters_of(client, "seed", notation="named") == before_named
            assert_close(after.json()["parameters"], AFTER_STEP)
            forward_after = await client.post(
                "/v1/models/seed/forward", json={"inputs": SEED_INPUTS, "trace": True}
            )
            assert forward_after.status_code == 200
            assert forward_after.json() == forward_before.json()
            gradient = await client.post("/v1/models/seed/gradient", json=SEED_DATA)
            assert_close(gradient.json()["loss"], LOSS_AFTER)
    finally:
        second.state.store.close()
