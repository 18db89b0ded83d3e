"""A body the operation cannot read as its JSON: sent as another Content-Type (415, naming the
types the operation reads, with a hint for a form), or left out where one is required (400);
the same on the compute routes and on the routes FastAPI validates, and nothing changes."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.support import (
    SEED_INPUTS,
    SEED_TARGETS,
    assert_problem,
    create_seed,
    parameters_of,
    seed_model,
)

FORM = "application/x-www-form-urlencoded"


async def send(client: httpx.AsyncClient, path: str, body: object, content_type: str | None):  # type: ignore[no-untyped-def]
    headers = {} if content_type is None else {"content-type": content_type}
    return await client.post(path, content=json.dumps(body).encode(), headers=headers)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "body", "accepted"),
    [
        ("/v1/models/seed/forward", {"inputs": SEED_INPUTS}, "application/json, application/x-npy"),
        (
            "/v1/models/seed/gradient",
            {"inputs": SEED_INPUTS, "targets": SEED_TARGETS},
            "application/json, application/x-npz",
        ),
        (
            "/v1/models/seed/train-step",
            {"inputs": SEED_INPUTS, "targets": SEED_TARGETS, "learning_rate": 0.5},
            "application/json, application/x-npz",
        ),
        (
            "/v1/models",
            seed_model("other"),
            "application/json, application/onnx, application/x-npz",
        ),
    ],
)
@pytest.mark.parametrize("content_type", [FORM, "text/plain", None])
async def test_json_of_another_content_type_is_415_naming_what_is_read(
    client: httpx.AsyncClient, path: str, body: object, accepted: str, content_type: str | None
) -> None:
    await create_seed(client)
    before = await parameters_of(client, "seed")
    response = await send(client, path, body, content_type)
    problem = assert_problem(response, 415, type_suffix="unsupported-media-type")
    assert response.headers["accept-post"] == accepted
    detail = str(problem["detail"])
    assert "application/json" in detail
    assert (content_type or "no Content-Type") in detail
    assert ("curl -d" in detail) == (content_type == FORM)
    assert await parameters_of(client, "seed") == before
    assert (await client.get("/v1/models/other")).status_code == 404


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path", ["/v1/models/seed/forward", "/v1/models/seed/train-step", "/v1/models", "/v1/forward"]
)
async def test_an_empty_body_where_one_is_required_is_400(
    client: httpx.AsyncClient, path: str
) -> None:
    await create_seed(client)
    before = await parameters_of(client, "seed")
    response = await client.post(path, content=b"", headers={"content-type": "application/json"})
    problem = assert_problem(response, 400, type_suffix="malformed-body")
    assert "empty" in str(problem["detail"])
    assert await parameters_of(client, "seed") == before


@pytest.mark.anyio
async def test_a_stale_if_match_comes_before_the_body(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.post(
        "/v1/models/seed/train-step", content=b"", headers={"If-Match": '"7"'}
    )
    assert_problem(response, 412)
