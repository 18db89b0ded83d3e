"""The query parameters of the binary bodies (``.npy``, ``.npz``, model files, uploads) are
refused with a JSON body, at the parameter: the body's own field would override them silently."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.support import SEED_DATA, SEED_INPUTS, assert_problem, create_seed, seed_model

pytestmark = pytest.mark.anyio

COMPUTE_CASES = [
    ("forward", {"inputs": SEED_INPUTS}, "trace", "true", '"trace"'),
    ("forward", {"inputs": SEED_INPUTS, "trace": True}, "trace", "false", '"trace"'),
    ("gradient", {**SEED_DATA, "deltas": True}, "deltas", "false", '"deltas"'),
    ("gradient", SEED_DATA, "trace", "true", '"trace"'),
    ("train-step", {**SEED_DATA, "learning_rate": 0.01}, "learning_rate", "0.5", '"learning_rate"'),
    ("train-step", SEED_DATA, "learning_rate", "not-a-number", '"learning_rate"'),
]


@pytest.mark.parametrize(("operation", "body", "parameter", "value", "field"), COMPUTE_CASES)
async def test_a_binary_bodys_query_parameter_with_a_json_body_is_refused_at_the_parameter(
    client: httpx.AsyncClient,
    operation: str,
    body: dict[str, Any],
    parameter: str,
    value: str,
    field: str,
) -> None:
    await create_seed(client)
    response = await client.post(
        f"/v1/models/seed/{operation}", params={parameter: value}, json=body
    )
    problem = assert_problem(response, 422)
    assert [(e["parameter"], e["in"]) for e in problem["errors"]] == [(parameter, "query")]
    message = problem["errors"][0]["message"]
    assert message.startswith(f"?{parameter}= applies to .np"), message
    assert "bodies only" in message and field in message, message
    # Nothing happened: the model is still at version 1.
    assert (await client.get("/v1/models/seed")).json()["version"] == 1


async def test_the_same_json_requests_without_them_are_answered(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    for operation, body, *_ in COMPUTE_CASES[:5]:
        response = await client.post(f"/v1/models/seed/{operation}", json=body)
        assert response.status_code == 200, (operation, response.text)


@pytest.mark.parametrize(
    ("parameter", "value"), [("name", "other"), ("input_columns", "2")], ids=["name", "columns"]
)
async def test_the_upload_query_parameters_are_refused_with_a_json_dataset(
    client: httpx.AsyncClient, parameter: str, value: str
) -> None:
    rows = {"name": "xor", "inputs": [[0, 0], [1, 1]], "targets": [[0], [0]]}
    response = await client.post("/v1/datasets", params={parameter: value}, json=rows)
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["parameter"] == parameter
    assert "uploads" in problem["errors"][0]["message"]
    assert problem["errors"][0]["message"].startswith(f"?{parameter}= applies to ")
    assert (await client.get("/v1/datasets/xor")).status_code == 404
    assert (await client.get("/v1/datasets/other")).status_code == 404


async def test_the_import_query_parameters_name_the_body_field_to_use(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/models", params={"loss": "x"}, json=seed_model("seed"))
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["parameter"] == "loss"
    assert '"network": {"loss"}' in problem["detail"]
