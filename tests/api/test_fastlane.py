"""The fast lane answers the hot requests exactly as the routes do, and hands every other one
to them: the same bodies, headers, problems, metrics and request log."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from service.api import fastlane
from tests.api.support import (
    PROBLEM_JSON,
    SEED,
    SEED_INPUTS,
    assert_close,
    create_seed,
)

pytestmark = pytest.mark.anyio

FORWARD = {"inputs": SEED_INPUTS}
V2 = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": SEED["input"]}]}


async def test_a_plain_forward_is_served_by_the_lane_with_the_routes_answer(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[str] = []
    find = fastlane.FastLane._find

    def spy(self: fastlane.FastLane, scope: Any) -> Any:
        found = find(self, scope)
        served.append("lane" if found is not None else "router")
        return None if scope.get("query_string") else found  # a query: the router, to compare

    monkeypatch.setattr(fastlane.FastLane, "_find", spy)
    await create_seed(client)
    routed = await client.post("/v1/models/seed/forward?notation=layered", json=FORWARD)
    fast = await client.post("/v1/models/seed/forward", json=FORWARD)
    assert served[-2:] == ["lane", "lane"]
    assert fast.status_code == routed.status_code == 200
    assert fast.content == routed.content
    assert_close(fast.json()["outputs"], [SEED["forward"]["out"][-1]])
    assert fast.headers["etag"] == routed.headers["etag"] == '"1"'
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("body", "status", "pointer"),
    [
        (b'{"inputs": [[0.23]]}', 422, "/inputs/0"),  # validates, but the core refuses it
        (b'{"inputs": [[0.23, NaN]]}', 422, None),  # NaN is refused wherever it is
        (b'{"inputs": [[0.23, 0.55]', 400, None),  # not JSON at all
        (b'{"inputs": [[0.23, 1e400]]}', 422, None),
        (b'{"inputs": []}', 422, None),
    ],
)
async def test_bad_forwards_get_the_routes_problems(
    client: httpx.AsyncClient, body: bytes, status: int, pointer: str | None
) -> None:
    await create_seed(client)
    r = await client.post(
        "/v1/models/seed/forward", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    if pointer is not None:
        assert pointer in [e["pointer"] for e in r.json()["errors"]]


async def test_an_unknown_model_gets_404_through_the_lane(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/models/nobody/forward", json=FORWARD)
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM_JSON
    assert "nobody" in r.json()["detail"]


async def test_a_trace_or_npy_answer_goes_down_the_routes(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    traced = await client.post("/v1/models/seed/forward", json={**FORWARD, "trace": True})
    assert traced.status_code == 200
    assert_close(traced.json()["trace"]["layers"][0]["net"], [SEED["forward"]["net"][0]])
    npy = await client.post(
        "/v1/models/seed/forward", json=FORWARD, headers={"Accept": "application/x-npy"}
    )
    assert npy.status_code == 200
    assert npy.headers["content-type"] == "application/x-npy"


async def test_v2_infer_through_the_lane_equals_the_versioned_route(
    client: httpx.AsyncClient,
) -> None:
    await create_seed(client)
    fast = await client.post("/v2/models/seed/infer", json=V2)
    routed = await client.post("/v2/models/seed/versions/1/infer", json=V2)
    assert fast.status_code == routed.status_code == 200
    assert fast.json()["outputs"] == routed.json()["outputs"]
    assert_close(fast.json()["outputs"][0]["data"], SEED["forward"]["out"][-1])
    bad = await client.post("/v2/models/seed/infer", content=b"{")
    assert bad.status_code == 400
    assert "error" in json.loads(bad.content)


async def test_lane_requests_are_counted_by_their_route_template(
    client: httpx.AsyncClient,
) -> None:
    await create_seed(client)
    for _ in range(3):
        assert (await client.post("/v1/models/seed/forward", json=FORWARD)).status_code == 200
    text = (await client.get("/metrics")).text
    line = next(
        row
        for row in text.splitlines()
        if row.startswith("backprop_http_requests_total{")
        and 'route="/v1/models/{name}/forward"' in row
        and 'status="200"' in row
    )
    assert float(line.rsplit(" ", 1)[1]) == 3


async def test_gradient_and_train_step_through_the_lane_equal_the_routes(
    client: httpx.AsyncClient,
) -> None:
    await create_seed(client, "a")
    await create_seed(client, "b")
    body = {"inputs": SEED_INPUTS, "targets": [SEED["target"]], "deltas": True, "trace": True}
    fast = await client.post("/v1/models/a/gradient", json=body)
    routed = await client.post("/v1/models/a/gradient?notation=layered", json=body)
    assert fast.status_code == routed.status_code == 200
    assert fast.json() == routed.json()
    assert_close(fast.json()["loss"], SEED["loss"])

    step = {"inputs": SEED_INPUTS, "targets": [SEED["target"]], "learning_rate": 0.01}
    fast_step = await client.post("/v1/models/a/train-step", json=step)
    routed_step = await client.post("/v1/models/b/train-step", json=step)
    assert fast_step.status_code == routed_step.status_code == 200
    assert {**fast_step.json(), "model": "b"} == routed_step.json()
    assert fast_step.headers["etag"] == '"2"'
    a = (await client.get("/v1/models/a/parameters")).json()["parameters"]
    b = (await client.get("/v1/models/b/parameters")).json()["parameters"]
    assert a == b


async def test_a_stale_if_match_gets_412_through_the_lane(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    step = {"inputs": SEED_INPUTS, "targets": [SEED["target"]]}
    stale = await client.post("/v1/models/seed/train-step", json=step, headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == PROBLEM_JSON
    bad = await client.post("/v1/models/seed/train-step", json=step, headers={"If-Match": "x"})
    assert bad.status_code == 400
    fresh = await client.post("/v1/models/seed/train-step", json=step, headers={"If-Match": '"1"'})
    assert fresh.status_code == 200
    assert fresh.json()["version"] == 2


async def test_an_unexpected_error_in_the_lane_is_a_500_problem_and_not_run_again(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_seed(client)
    calls: list[str] = []

    async def broken(*args: object, **kwargs: object) -> object:
        calls.append("train_step")
        raise RuntimeError("boom")

    from service.store import ModelStore

    monkeypatch.setattr(ModelStore, "train_step", broken)
    step = {"inputs": SEED_INPUTS, "targets": [SEED["target"]]}
    response = await client.post("/v1/models/seed/train-step", json=step)
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    assert calls == ["train_step"]  # once: the lane does not replay it into the routes


async def test_repeated_headers_are_read_as_the_routes_read_them(
    client: httpx.AsyncClient,
) -> None:
    await create_seed(client)
    step = json.dumps({"inputs": SEED_INPUTS, "targets": [SEED["target"]]}).encode()
    headers = [("Content-Type", "application/json"), ("If-Match", '"5"'), ("If-Match", '"1"')]
    response = await client.post("/v1/models/seed/train-step", content=step, headers=headers)
    assert response.status_code == 412  # the first If-Match counts, as on the routes
    npy = await client.post(
        "/v1/models/seed/forward", json=FORWARD, headers={"Accept": "Application/X-NPY"}
    )
    assert npy.headers["content-type"] == "application/x-npy"
    weird = await client.post(
        "/v1/models/seed/train-step",
        json={"inputs": SEED_INPUTS, "targets": [[0.01]]},
        headers={b"If-Match": b'"\xb2"'},  # a superscript two: isdigit() but not a number
    )
    assert weird.status_code == 400
