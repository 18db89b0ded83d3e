"""Concurrent train-steps on one model are serialised: none is lost, each makes one version."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.api.support import (
    SEED_ACTIVATIONS,
    SEED_DATA,
    SEED_INPUTS,
    SEED_LR,
    SEED_PARAMETERS,
    SEED_TARGETS,
    arrays,
    as_json,
    assert_close,
    create_seed,
    parameters_of,
    version_of,
)
from tests.api.support import reference_sgd as sgd

pytestmark = pytest.mark.anyio

STEPS = 50


async def test_concurrent_train_steps_are_serialised_and_none_is_lost(
    client: httpx.AsyncClient,
) -> None:
    await create_seed(client)
    request = {**SEED_DATA, "learning_rate": SEED_LR}
    responses = await asyncio.gather(
        *(client.post("/v1/models/seed/train-step", json=request) for _ in range(STEPS))
    )
    assert [r.status_code for r in responses] == [200] * STEPS, [
        r.text for r in responses if r.status_code != 200
    ]
    versions = [r.json()["version"] for r in responses]
    assert sorted(versions) == list(range(2, STEPS + 2))
    assert {r.headers["etag"] for r in responses} == {f'"{v}"' for v in versions}
    assert await version_of(client, "seed") == STEPS + 1

    expected, losses = sgd(
        arrays(SEED_PARAMETERS), SEED_ACTIVATIONS, SEED_INPUTS, SEED_TARGETS, SEED_LR, STEPS
    )
    assert_close(await parameters_of(client, "seed"), as_json(expected))
    # The step that made version v saw the parameters of version v - 1.
    for response in responses:
        body = response.json()
        assert_close(body["loss"], losses[body["version"] - 2])


async def test_concurrent_train_steps_equal_sequential_ones_bit_for_bit(
    client: httpx.AsyncClient,
) -> None:
    await create_seed(client, "parallel")
    await create_seed(client, "sequential")
    request = {**SEED_DATA, "learning_rate": SEED_LR}
    responses = await asyncio.gather(
        *(client.post("/v1/models/parallel/train-step", json=request) for _ in range(STEPS))
    )
    assert all(r.status_code == 200 for r in responses)
    for _ in range(STEPS):
        response = await client.post("/v1/models/sequential/train-step", json=request)
        assert response.status_code == 200, response.text
    assert await version_of(client, "sequential") == STEPS + 1
    assert await parameters_of(client, "parallel") == await parameters_of(client, "sequential")


async def test_concurrent_train_steps_on_different_models_do_not_interfere(
    client: httpx.AsyncClient,
) -> None:
    names = ["m0", "m1", "m2"]
    for name in names:
        await create_seed(client, name)
    request = {**SEED_DATA, "learning_rate": SEED_LR}
    responses = await asyncio.gather(
        *(client.post(f"/v1/models/{name}/train-step", json=request) for name in names * 10)
    )
    assert all(r.status_code == 200 for r in responses)
    expected, _ = sgd(
        arrays(SEED_PARAMETERS), SEED_ACTIVATIONS, SEED_INPUTS, SEED_TARGETS, SEED_LR, 10
    )
    for name in names:
        assert await version_of(client, name) == 11
        assert_close(await parameters_of(client, name), as_json(expected))
