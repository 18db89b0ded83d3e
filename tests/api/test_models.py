"""The model registry over HTTP: creation by init, listing, reading, deleting, replacing
parameters, kept versions, rollback and stored optimizers."""

from __future__ import annotations

import math
from dataclasses import replace

import httpx
import numpy as np
import pytest

from service.core import (
    SGD,
    Adam,
    Layer,
    Network,
    Optimizer,
    OptimizerState,
    check_parameters,
    gradient,
    step,
)
from tests.api.support import (
    AFTER_STEP,
    AFTER_STEP_NAMED,
    JSON,
    SEED,
    SEED_DATA,
    SEED_INPUTS,
    SEED_LR,
    SEED_NETWORK,
    SEED_PARAMETERS,
    SEED_PARAMETERS_NAMED,
    SEED_TARGETS,
    AppFactory,
    arrays,
    assert_close,
    assert_problem,
    client_for,
    create_seed,
    parameters_of,
    seed_model,
    version_of,
)

pytestmark = pytest.mark.anyio


async def create_init(
    client: httpx.AsyncClient, name: str, init: JSON | None = None, network: JSON | None = None
) -> dict[str, JSON]:
    body: dict[str, JSON] = {"name": name, "network": network or SEED_NETWORK}
    if init is not None:
        body["init"] = init
    response = await client.post("/v1/models", json=body)
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"/v1/models/{name}"
    created: dict[str, JSON] = response.json()
    return created


def assert_within_bound(parameters: JSON, bound: list[float]) -> None:
    """Weights in [-a, a] per layer, not all zero; biases zero."""
    for layer, a in zip(parameters["layers"], bound, strict=True):
        weights = np.array(layer["weights"])
        assert np.all(np.abs(weights) <= a), (weights, a)
        assert np.any(weights != 0)
        assert layer["biases"] == [0.0] * len(layer["biases"])


SEED_SHAPES = [(2, 3), (3, 3), (3, 1)]


# -- init ------------------------------------------------------------------------------------


async def test_create_with_init_seed_reports_it_and_same_seed_gives_identical_parameters(
    client: httpx.AsyncClient,
) -> None:
    init = {"scheme": "he_uniform", "seed": 1234}
    first = await create_init(client, "first", init)
    second = await create_init(client, "second", init)
    assert first["init"] == init
    assert second["init"] == init
    assert first["version"] == 1
    got = await client.get("/v1/models/first")
    assert got.json()["init"] == init
    a = await parameters_of(client, "first")
    assert a == await parameters_of(client, "second")
    assert_within_bound(a, [math.sqrt(6 / n_in) for n_in, _ in SEED_SHAPES])

    other = await create_init(client, "other", {"scheme": "he_uniform", "seed": 1235})
    assert other["init"]["seed"] == 1235
    assert await parameters_of(client, "other") != a


async def test_create_without_seed_reports_a_seed_that_recreates_the_parameters(
    client: httpx.AsyncClient,
) -> None:
    drawn = await create_init(client, "drawn", {"scheme": "xavier_normal"})
    assert drawn["init"]["scheme"] == "xavier_normal"
    seed = drawn["init"]["seed"]
    assert isinstance(seed, int) and not isinstance(seed, bool)
    again = await create_init(client, "again", {"scheme": "xavier_normal", "seed": seed})
    assert again["init"] == {"scheme": "xavier_normal", "seed": seed}
    assert await parameters_of(client, "drawn") == await parameters_of(client, "again")


async def test_create_without_parameters_or_init_uses_xavier_uniform(
    client: httpx.AsyncClient,
) -> None:
    created = await create_init(client, "default")
    assert created["init"]["scheme"] == "xavier_uniform"
    seed = created["init"]["seed"]
    assert isinstance(seed, int)
    params = await parameters_of(client, "default")
    assert_within_bound(params, [math.sqrt(6 / (a + b)) for a, b in SEED_SHAPES])
    again = await create_init(client, "again", {"scheme": "xavier_uniform", "seed": seed})
    assert again["init"]["seed"] == seed
    assert await parameters_of(client, "again") == params


async def test_create_with_zeros_init_gives_zero_parameters(client: httpx.AsyncClient) -> None:
    await create_init(client, "zeros", {"scheme": "zeros", "seed": 0})
    named = await parameters_of(client, "zeros", notation="named")
    assert set(named) == set(SEED_PARAMETERS_NAMED)
    assert all(value == 0 for value in named.values())


async def test_create_with_both_parameters_and_init_is_rejected(
    client: httpx.AsyncClient,
) -> None:
    body = seed_model(init={"scheme": "zeros", "seed": 1})
    response = await client.post("/v1/models", json=body)
    assert_problem(response, 422, pointer_prefix="")
    assert (await client.get("/v1/models/seed")).status_code == 404
    assert (await client.get("/v1/models")).json()["total"] == 0


# -- list, get, delete -----------------------------------------------------------------------


async def test_list_models_pages_by_name_with_cursor_and_total(
    client: httpx.AsyncClient,
) -> None:
    names = ["delta", "Alpha-2", "charlie", "bravo.1", "echo", "alpha_1", "0-zero"]
    for name in names:
        await create_init(client, name, {"scheme": "zeros", "seed": 0})
    everything = await client.get("/v1/models")
    assert everything.status_code == 200
    body = everything.json()
    assert body["total"] == len(names)
    assert body["next_cursor"] is None
    assert [m["name"] for m in body["items"]] == sorted(names)
    assert all(m["version"] == 1 for m in body["items"])

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get("/v1/models", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["total"] == len(names)
        assert len(page["items"]) <= 3
        seen.extend(m["name"] for m in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 3
    assert pages == 3
    assert seen == sorted(names)


async def test_list_models_rejects_a_limit_out_of_range(client: httpx.AsyncClient) -> None:
    for limit in (0, -1, 100_000, "many"):
        response = await client.get("/v1/models", params={"limit": limit})
        assert_problem(response, 422)


async def test_get_model_carries_etag_of_its_version(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    first = await client.get("/v1/models/seed")
    assert first.status_code == 200
    assert first.headers["etag"] == '"1"'
    assert first.json()["version"] == 1
    step_response = await client.post("/v1/models/seed/train-step", json=SEED_DATA)
    assert step_response.status_code == 200
    second = await client.get("/v1/models/seed")
    assert second.headers["etag"] == '"2"'
    assert second.json()["version"] == 2


async def test_delete_answers_204_then_the_model_is_gone(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    await create_seed(client, "kept")
    response = await client.delete("/v1/models/seed")
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get("/v1/models/seed"), 404)
    assert_problem(await client.get("/v1/models/seed/parameters"), 404)
    assert_problem(await client.delete("/v1/models/seed"), 404)
    listed = (await client.get("/v1/models")).json()
    assert [m["name"] for m in listed["items"]] == ["kept"]
    assert listed["total"] == 1
    assert await version_of(client, "kept") == 1
    # The name is free again, and the new model starts at version 1.
    recreated = await create_seed(client)
    assert recreated["version"] == 1


async def test_delete_with_current_if_match_deletes(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.delete("/v1/models/seed", headers={"If-Match": '"1"'})
    assert response.status_code == 204
    assert_problem(await client.get("/v1/models/seed"), 404)


# -- parameters ------------------------------------------------------------------------------


async def test_put_layered_parameters_makes_a_new_version(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.put(
        "/v1/models/seed/parameters", json={"parameters": AFTER_STEP}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    body = response.json()
    assert body["model"] == "seed"
    assert body["version"] == 2
    assert body["parameters"] == AFTER_STEP
    assert await parameters_of(client, "seed") == AFTER_STEP
    assert await version_of(client, "seed") == 2


async def test_put_named_parameters_makes_a_new_version(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.put(
        "/v1/models/seed/parameters",
        params={"notation": "named"},
        json={"parameters": AFTER_STEP_NAMED},
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    assert response.json()["version"] == 2
    assert response.json()["parameters"] == AFTER_STEP_NAMED
    assert await parameters_of(client, "seed") == AFTER_STEP
    assert_close(
        (await client.post("/v1/models/seed/gradient", json=SEED_DATA)).json()["loss"],
        SEED["after_one_sgd_step"]["loss"],
    )


async def test_put_accepts_the_body_a_get_returns(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    await create_seed(client, "other", parameters=AFTER_STEP)
    got = await client.get("/v1/models/other/parameters", params={"notation": "named"})
    body = got.json()
    body["model"] = "seed"
    response = await client.put("/v1/models/seed/parameters", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert await parameters_of(client, "seed") == AFTER_STEP


# -- versions and rollback -------------------------------------------------------------------


async def make_versions(client: httpx.AsyncClient, count: int) -> dict[int, JSON]:
    """The seed model at versions 1..count, made by train-steps and puts; their parameters."""
    await create_seed(client)
    kept = {1: await parameters_of(client, "seed")}
    for version in range(2, count + 1):
        if version % 2 == 0:
            response = await client.post(
                "/v1/models/seed/train-step", json={**SEED_DATA, "learning_rate": 0.1}
            )
        else:
            scaled = {
                k: v * 1.5
                for k, v in (await parameters_of(client, "seed", notation="named")).items()
            }
            response = await client.put("/v1/models/seed/parameters", json={"parameters": scaled})
        assert response.status_code == 200, response.text
        assert response.json()["version"] == version
        kept[version] = await parameters_of(client, "seed")
    return kept


async def test_only_the_newest_versions_are_kept_and_readable(make_app: AppFactory) -> None:
    async with client_for(make_app(keep_versions=3)) as client:
        history = await make_versions(client, 5)
        assert len({str(p) for p in history.values()}) == 5  # five different parameter sets
        listed = await client.get("/v1/models/seed/versions")
        assert listed.status_code == 200, listed.text
        assert listed.headers["etag"] == '"5"'
        assert listed.json()["model"] == "seed"
        assert listed.json()["version"] == 5
        assert [item["version"] for item in listed.json()["items"]] == [5, 4, 3]
        for version in (3, 4, 5):
            response = await client.get("/v1/models/seed/parameters", params={"version": version})
            assert response.status_code == 200, response.text
            assert response.json()["version"] == version
            assert response.json()["parameters"] == history[version]
        named = await parameters_of(client, "seed", notation="named", version=3)
        assert named == {
            f"{kind}{i}": value
            for kind, values in (
                (
                    "w",
                    [w for layer in history[3]["layers"] for row in layer["weights"] for w in row],
                ),
                ("b", [b for layer in history[3]["layers"] for b in layer["biases"]]),
            )
            for i, value in enumerate(values, start=1)
        }
        for pruned in (1, 2, 6, 99):
            response = await client.get("/v1/models/seed/parameters", params={"version": pruned})
            assert_problem(response, 404)


async def test_rollback_makes_a_new_version_with_the_old_parameters(
    make_app: AppFactory,
) -> None:
    async with client_for(make_app(keep_versions=5)) as client:
        history = await make_versions(client, 3)
        response = await client.post(
            "/v1/models/seed/rollback", json={"version": 1}, headers={"If-Match": '"3"'}
        )
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == '"4"'
        assert response.json()["version"] == 4
        assert response.json()["name"] == "seed"
        assert await parameters_of(client, "seed") == history[1] == SEED_PARAMETERS
        assert await version_of(client, "seed") == 4
        # History is not rewritten: version 2 is still there and unchanged.
        assert await parameters_of(client, "seed", version=2) == history[2]
        versions = (await client.get("/v1/models/seed/versions")).json()["items"]
        assert [v["version"] for v in versions] == [4, 3, 2, 1]
        # And the rolled-back model computes the seed's numbers again.
        gradient_response = await client.post("/v1/models/seed/gradient", json=SEED_DATA)
        assert_close(gradient_response.json()["loss"], SEED["loss"])


async def test_rollback_to_a_pruned_version_answers_404(make_app: AppFactory) -> None:
    async with client_for(make_app(keep_versions=2)) as client:
        await make_versions(client, 4)
        response = await client.post("/v1/models/seed/rollback", json={"version": 1})
        assert_problem(response, 404)
        assert await version_of(client, "seed") == 4


# -- optimizers --------------------------------------------------------------------------------


def core_steps(
    optimizer: Optimizer, learning_rates: list[float | None], *, carry: bool = True
) -> JSON:
    """Steps on the seed with ``service.core``, carrying the optimizer state (or not)."""
    net = Network(
        inputs=2,
        layers=(Layer(3, "relu"), Layer(3, "relu"), Layer(1, "sigmoid")),
        loss="half_squared_error",
    )
    params = check_parameters(net, arrays(SEED_PARAMETERS))
    state = OptimizerState()
    for rate in learning_rates:
        opt = optimizer if rate is None else replace(optimizer, learning_rate=rate)
        result = gradient(net, params, SEED_INPUTS, SEED_TARGETS)
        params, state = step(opt, params, result.gradients, state if carry else None)
    return {"layers": [{"weights": p.W.tolist(), "biases": p.b.tolist()} for p in params]}


OPTIMIZERS: list[tuple[JSON, Optimizer]] = [
    ({"kind": "sgd", "momentum": 0.9}, SGD(learning_rate=0.01, momentum=0.9)),
    (
        {"kind": "sgd", "learning_rate": 0.05, "momentum": 0.5, "nesterov": True},
        SGD(learning_rate=0.05, momentum=0.5, nesterov=True),
    ),
    ({"kind": "adam", "learning_rate": 0.01}, Adam(learning_rate=0.01)),
]


@pytest.mark.parametrize(("spec", "optimizer"), OPTIMIZERS, ids=["momentum", "nesterov", "adam"])
async def test_train_step_uses_the_stored_optimizer_and_carries_its_state(
    client: httpx.AsyncClient, spec: JSON, optimizer: Optimizer
) -> None:
    created = await create_seed(client, optimizer=spec)
    for key, value in spec.items():
        assert created["optimizer"][key] == value
    for _ in range(3):
        response = await client.post("/v1/models/seed/train-step", json=SEED_DATA)
        assert response.status_code == 200, response.text
    assert await version_of(client, "seed") == 4
    assert_close(await parameters_of(client, "seed"), core_steps(optimizer, [None] * 3))
    # The state matters: three steps each from a fresh state end elsewhere.
    fresh = arrays(core_steps(optimizer, [None] * 3, carry=False))
    stored = arrays(await parameters_of(client, "seed"))
    assert max(np.abs(a[0] - b[0]).max() for a, b in zip(fresh, stored, strict=True)) > 1e-6


async def test_learning_rate_of_the_request_overrides_the_optimizer_rate(
    client: httpx.AsyncClient,
) -> None:
    await create_seed(client, optimizer={"kind": "sgd", "momentum": 0.9, "learning_rate": 0.01})
    for rate in (0.05, None):
        body: dict[str, JSON] = dict(SEED_DATA)
        if rate is not None:
            body["learning_rate"] = rate
        response = await client.post("/v1/models/seed/train-step", json=body)
        assert response.status_code == 200, response.text
    expected = core_steps(SGD(learning_rate=0.01, momentum=0.9), [0.05, None])
    assert_close(await parameters_of(client, "seed"), expected)
    model = await client.get("/v1/models/seed")
    assert model.json()["optimizer"]["learning_rate"] == 0.01  # the stored rate is unchanged


async def test_plain_sgd_learning_rate_override_reproduces_the_seed_step(
    client: httpx.AsyncClient,
) -> None:
    await create_seed(client, optimizer={"kind": "sgd", "learning_rate": 0.5})
    response = await client.post(
        "/v1/models/seed/train-step", json={**SEED_DATA, "learning_rate": SEED_LR}
    )
    assert response.status_code == 200, response.text
    assert_close(await parameters_of(client, "seed"), AFTER_STEP)


async def test_rollback_restores_the_optimizer_state_of_that_version(
    client: httpx.AsyncClient,
) -> None:
    await create_seed(client, optimizer={"kind": "sgd", "momentum": 0.9})
    for _ in range(3):
        response = await client.post("/v1/models/seed/train-step", json=SEED_DATA)
        assert response.status_code == 200, response.text
    rolled = await client.post("/v1/models/seed/rollback", json={"version": 2})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["version"] == 5
    optimizer = SGD(learning_rate=0.01, momentum=0.9)
    assert_close(await parameters_of(client, "seed"), core_steps(optimizer, [None]))
    # The next step continues from version 2's velocity: two steps in all.
    response = await client.post("/v1/models/seed/train-step", json=SEED_DATA)
    assert response.json()["version"] == 6
    assert_close(await parameters_of(client, "seed"), core_steps(optimizer, [None, None]))


async def test_put_parameters_restarts_the_optimizer_state(client: httpx.AsyncClient) -> None:
    await create_seed(client, optimizer={"kind": "sgd", "momentum": 0.9})
    assert (await client.post("/v1/models/seed/train-step", json=SEED_DATA)).status_code == 200
    put = await client.put("/v1/models/seed/parameters", json={"parameters": SEED_PARAMETERS})
    assert put.status_code == 200, put.text
    assert (await client.post("/v1/models/seed/train-step", json=SEED_DATA)).status_code == 200
    expected = core_steps(SGD(learning_rate=0.01, momentum=0.9), [None])
    assert_close(await parameters_of(client, "seed"), expected)


async def test_the_import_query_parameters_are_refused_with_a_json_body(
    client: httpx.AsyncClient,
) -> None:
    for query in ({"name": "other"}, {"loss": "mean_squared_error"}):
        response = await client.post("/v1/models", params=query, json=seed_model("seed"))
        body = assert_problem(response, 422)
        assert "file imports" in body["detail"]
    assert (await client.get("/v1/models/seed")).status_code == 404
    assert (await client.get("/v1/models/other")).status_code == 404
