"""Limits, each a setting of the app: the compute budget per request and every size limit, in
apps built in this process with settings of their own (whichever way a body is parsed: on the
event loop, in a thread, in a worker process), and as set through its BACKPROP_* variable in a
real server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from service.api import endpoint
from service.operations import Limits, Work, admit, rows_of, sizes
from service.settings import DEFAULT_LIMITS, Settings, current_limits
from service.specs import network_from_dict
from tests import servers
from tests.api.support import (
    SEED_DATA,
    SEED_NETWORK,
    SEED_PARAMETERS,
    AppFactory,
    assert_problem,
    client_for,
    seed_model,
)

SEED_PARAMETER_COUNT = 25
# A budget that the seed's one-row requests fit and 40 rows of a gradient do not:
# 40 rows x 25 parameters x 3 = 3000 multiply-adds = 3 s at 1000 per second.
BUDGET = {"max_compute_seconds": 2.0, "compute_rate": 1000.0}


def rows(n: int) -> dict[str, list[list[float]]]:
    return {"inputs": [[0.23, 0.55]] * n, "targets": [[0.01]] * n}


@pytest.mark.anyio
async def test_requests_within_the_compute_budget_are_served(make_app: AppFactory) -> None:
    async with client_for(make_app(**BUDGET)) as client:
        assert (await client.post("/v1/models", json=seed_model("seed"))).status_code == 201
        assert (await client.post("/v1/models/seed/gradient", json=rows(20))).status_code == 200
        forward_rows = {"inputs": rows(80)["inputs"]}  # 80 x 25 = 2000: 2 s, just in
        assert (await client.post("/v1/models/seed/forward", json=forward_rows)).is_success


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/models/seed/gradient", rows(40)),
        ("/v1/models/seed/train-step", rows(40)),
        ("/v1/models/seed/forward", {"inputs": rows(81)["inputs"]}),
        ("/v1/gradient", {"network": SEED_NETWORK, "parameters": SEED_PARAMETERS, **rows(40)}),
        ("/v1/train-step", {"network": SEED_NETWORK, "parameters": SEED_PARAMETERS, **rows(40)}),
    ],
)
async def test_requests_over_the_compute_budget_get_422_and_change_nothing(
    make_app: AppFactory, path: str, body: dict[str, object]
) -> None:
    async with client_for(make_app(**BUDGET)) as client:
        await client.post("/v1/models", json=seed_model("seed"))
        response = await client.post(path, json=body)
        problem = assert_problem(response, 422, type_suffix="/compute-budget-exceeded")
        assert "BACKPROP_MAX_COMPUTE_SECONDS" in problem["detail"]
        assert (await client.get("/v1/models/seed")).json()["version"] == 1


def test_the_estimate_is_rows_times_parameters_and_three_times_that_backwards() -> None:
    network = network_from_dict(SEED_NETWORK)
    limits = Limits(max_seconds=1.0, rate=1e9, max_memory=1 << 30, max_answer=1 << 28)
    forward = admit(network, Work("forward", 7), limits)
    assert forward.multiply_adds == 7 * SEED_PARAMETER_COUNT
    assert admit(network, Work("gradient", 7), limits).multiply_adds == 3 * 7 * 25
    assert admit(network, Work("train-step", 7), limits).multiply_adds == 3 * 7 * 25
    assert rows_of(None) == 1
    assert rows_of(np.zeros((12, 2))) == 12


@pytest.fixture(scope="module")
def limited() -> Iterator[httpx.Client]:
    """A real server whose every size limit is set small through its variable."""
    env = {
        "BACKPROP_REGISTRY": "memory://",
        "BACKPROP_MAX_LAYERS": "3",
        "BACKPROP_MAX_UNITS": "4",
        "BACKPROP_MAX_PARAMETERS": "30",
        "BACKPROP_MAX_BATCH_ROWS": "5",
        "BACKPROP_MAX_BODY_BYTES": "4096",
        "BACKPROP_MAX_COMPUTE_SECONDS": "0.001",
        "BACKPROP_COMPUTE_RATE": "100000",  # 100 multiply-adds per request
    }
    with servers.running(env=env) as client:
        assert client.post("/v1/models", json=seed_model("seed")).status_code == 201
        yield client


def network(inputs: int, units: list[int]) -> dict[str, object]:
    return {
        "inputs": inputs,
        "layers": [{"units": u, "activation": "relu"} for u in units],
        "loss": "half_squared_error",
    }


def create(client: httpx.Client, name: str, net: dict[str, object]) -> httpx.Response:
    return client.post("/v1/models", json={"name": name, "network": net, "init": {"seed": 1}})


def test_the_layer_limit_is_a_setting(limited: httpx.Client) -> None:
    assert create(limited, "three", network(1, [1, 1, 1])).status_code == 201
    assert_problem(create(limited, "four", network(1, [1, 1, 1, 1])), 422)


def test_the_unit_limit_is_a_setting(limited: httpx.Client) -> None:
    assert create(limited, "four-units", network(1, [4])).status_code == 201
    assert_problem(create(limited, "five-units", network(1, [5])), 422)
    assert_problem(create(limited, "five-inputs", network(5, [1])), 422)


def test_the_parameter_limit_is_a_setting(limited: httpx.Client) -> None:
    assert create(limited, "thirty", network(4, [4, 2])).status_code == 201  # 20 + 10
    problem = assert_problem(create(limited, "thirty-five", network(4, [4, 3])), 422)  # 20 + 15
    assert "30" in problem["detail"]


def test_the_batch_row_limit_is_a_setting(limited: httpx.Client) -> None:
    assert limited.post("/v1/models/seed/forward", json={"inputs": rows(1)["inputs"]}).is_success
    response = limited.post("/v1/models/seed/forward", json={"inputs": [[0.1, 0.2]] * 6})
    assert_problem(response, 422, pointer_prefix="/inputs")


def test_the_body_limit_is_a_setting(limited: httpx.Client) -> None:
    padded = b'{"inputs": [[0.23, 0.55]]' + b" " * 5000 + b"}"
    response = limited.post(
        "/v1/models/seed/forward", content=padded, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413, type_suffix="/body-too-large")


def test_the_compute_budget_is_a_setting(limited: httpx.Client) -> None:
    # The seed's gradient on 1 row is 75 multiply-adds, on 2 rows 150: over 100.
    assert limited.post("/v1/models/seed/gradient", json=SEED_DATA).status_code == 200
    response = limited.post("/v1/models/seed/gradient", json=rows(2))
    assert_problem(response, 422, type_suffix="/compute-budget-exceeded")


SMALL = {"max_layers": 3, "max_units": 4, "max_parameters": 30, "max_batch_rows": 5}


def components(spec: dict[str, Any]) -> tuple[object, ...]:
    schemas = spec["components"]["schemas"]
    return (
        schemas["NetworkSpec"]["properties"]["layers"]["maxItems"],
        schemas["NetworkSpec"]["properties"]["inputs"]["maximum"],
        schemas["LayerSpec"]["properties"]["units"]["maximum"],
        schemas["ForwardRequest"]["properties"]["inputs"]["maxItems"],
        schemas["ForwardRequest"]["properties"]["inputs"]["description"],
    )


@pytest.mark.anyio
async def test_apps_in_one_process_each_enforce_and_document_their_own_limits(
    make_app: AppFactory,
) -> None:
    small, default = make_app(**SMALL), make_app()
    async with client_for(small) as s, client_for(default) as d:
        for client in (s, d):
            assert (await client.post("/v1/models", json=seed_model("seed"))).status_code == 201
        four_layers = {"name": "four", "network": network(1, [1, 1, 1, 1]), "init": {"seed": 1}}
        assert_problem(await s.post("/v1/models", json=four_layers), 422)
        assert (await d.post("/v1/models", json=four_layers)).status_code == 201
        six_rows = {"inputs": [[0.1, 0.2]] * 6}
        problem = assert_problem(await s.post("/v1/models/seed/forward", json=six_rows), 422)
        assert "at most 5 items" in str(problem["errors"])
        assert (await d.post("/v1/models/seed/forward", json=six_rows)).is_success
        small_spec, default_spec = (
            (await s.get("/openapi.json")).json(),
            (await d.get("/openapi.json")).json(),
        )
    assert components(small_spec) == (3, 4, 4, 5, "Rows of equal length, 1 to 5 of them.")
    assert components(default_spec) == (
        DEFAULT_LIMITS.max_layers,
        DEFAULT_LIMITS.max_units,
        DEFAULT_LIMITS.max_units,
        DEFAULT_LIMITS.max_batch_rows,
        f"Rows of equal length, 1 to {DEFAULT_LIMITS.max_batch_rows} of them.",
    )
    assert current_limits() is DEFAULT_LIMITS  # nothing of a request's limits leaks out


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["thread", "process"])
async def test_a_large_body_parsed_off_the_loop_meets_the_apps_limits(
    make_app: AppFactory, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads and worker processes parse large bodies under the limits of the request's app."""
    monkeypatch.setattr(sizes, "LARGE_BODY", 0)
    if where == "process":
        monkeypatch.setattr(endpoint, "PROCESS_BODY", 0)
    wide = {"name": "wide", "network": network(2, [5]), "init": {"seed": 1}}
    async with client_for(make_app()) as default:
        assert (await default.post("/v1/models", json=wide)).status_code == 201
        wide_npz = await default.get("/v1/models/wide/export", params={"format": "npz"})
    app = make_app(**SMALL, compute_processes=1)
    async with client_for(app) as client:
        assert (await client.post("/v1/models", json=seed_model("seed"))).status_code == 201
        five, six = {"inputs": [[0.1, 0.2]] * 5}, {"inputs": [[0.1, 0.2]] * 6}
        assert (await client.post("/v1/models/seed/forward", json=five)).is_success
        problem = assert_problem(await client.post("/v1/models/seed/forward", json=six), 422)
        assert problem["errors"][0]["pointer"] == "/inputs"
        assert "at most 5 items" in problem["errors"][0]["message"]
        # A model file is read and checked in a worker process: its network too.
        exported = await client.get("/v1/models/seed/export", params={"format": "npz"})
        assert_problem(await client.post("/v1/models", json=wide), 422)
        npz = {"Content-Type": "application/x-npz"}
        imported = await client.post(
            "/v1/models", params={"name": "copy"}, content=exported.content, headers=npz
        )
        assert imported.status_code == 201, imported.text
        too_wide = await client.post("/v1/models", content=wide_npz.content, headers=npz)
        assert "less than or equal to 4" in str(assert_problem(too_wide, 422)["errors"])


def test_the_size_limits_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKPROP_MAX_BATCH_ROWS", "7")
    monkeypatch.setenv("BACKPROP_MAX_LAYERS", "2")
    settings = Settings()
    assert (settings.max_batch_rows, settings.max_layers) == (7, 2)
    assert DEFAULT_LIMITS.max_batch_rows == 100_000  # the built-in value, whatever is set
