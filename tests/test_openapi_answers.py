"""The spec's examples are real: each validates against its schema, and each response example
is what the service answers when its request is sent as Swagger UI's "Try it out" sends it
(the path parameters' examples, the query parameters Swagger UI fills in, the request example
of the same key)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi import FastAPI

from service.api.app import create_app
from service.settings import Settings
from tests.api.support import client_for
from tests.seed import SEED

pytestmark = pytest.mark.anyio

JSON = "application/json"
TIMES = ("created_at", "updated_at")

# The README's order, on one new registry: create the seed, read and compute on it, one
# train-step (version 2), its versions, a rollback to version 1 (version 3).
SCENARIO = [
    "models-create_model",
    "models-get_model",
    "models-list_models",
    "models-get_parameters",
    "compute-forward_model",
    "compute-gradient_model",
    "compute-input_gradient_model",
    "compute-gradient_check_model",
    "learn-explain_model",
    "inference-model_metadata",
    "inference-model_version_metadata",
    "inference-model_ready",
    "inference-model_version_ready",
    "inference-infer",
    "inference-infer_version",
    "stateless-forward_stateless",
    "stateless-gradient_stateless",
    "stateless-input_gradient_stateless",
    "stateless-train_step_stateless",
    "compute-train_step_model",
    "models-list_versions",
    "models-rollback",
]
# On a new seed each: the examples answer a model at version 1.
ON_A_NEW_SEED = ["models-put_parameters"]


@pytest.fixture(scope="module")
def spec() -> Iterator[dict[str, Any]]:
    """The spec as the app serves it."""
    app = create_app(Settings(registry="memory://"))
    try:
        yield app.openapi()
    finally:
        app.state.store.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def new_app() -> AsyncIterator[FastAPI]:
    app = create_app(Settings(registry="memory://"))
    yield app
    app.state.store.close()


def operations(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (method, path template, operation)."""
    return {
        op["operationId"]: (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }


def response_examples(op: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(status, key, example) of every JSON response example of ``op``."""
    for status, response in op["responses"].items():
        content = response.get("content", {}).get(JSON, {})
        for key, example in content.get("examples", {}).items():
            yield status, key, example


def filled_in(parameter: dict[str, Any]) -> Any:
    """The value Swagger UI fills in for a parameter (its first example, else the schema's
    example or default), or None when it leaves the field empty and sends nothing."""
    schema = parameter.get("schema", {})
    if parameter.get("examples"):
        return next(iter(parameter["examples"].values()))["value"]
    for value in (parameter.get("example"), schema.get("example"), schema.get("default")):
        if value is not None:
            return value
    return None


def try_it_out(op: dict[str, Any], path: str, key: str) -> tuple[str, dict[str, str], Any]:
    """The URL, query and JSON body Swagger UI sends for ``op`` with the request example
    ``key`` (else the first, as preselected)."""
    query: dict[str, str] = {}
    for parameter in op.get("parameters", []):
        value = filled_in(parameter)
        if parameter["in"] == "path":
            assert value is not None, f"{path}: {parameter['name']} has no example"
            path = path.replace("{" + parameter["name"] + "}", str(value))
        elif parameter["in"] == "query" and value is not None:
            query[parameter["name"]] = str(value).lower() if isinstance(value, bool) else str(value)
    body = None
    content = op.get("requestBody", {}).get("content", {}).get(JSON)
    if content is not None:
        chosen = content["examples"].get(key) or next(iter(content["examples"].values()))
        body = chosen["value"]
    return path, query, body


def timeless(value: Any) -> Any:
    """``value`` without its times (the examples carry the README's, answers their own)."""
    if isinstance(value, dict):
        return {k: None if k in TIMES else timeless(v) for k, v in value.items()}
    if isinstance(value, list):
        return [timeless(v) for v in value]
    return value


async def check_answers(
    client: httpx.AsyncClient, spec: dict[str, Any], ids: list[str]
) -> list[str]:
    """Send the requests of ``ids`` in order; the operations whose answer differs from their
    response example."""
    wrong: list[str] = []
    table = operations(spec)
    for operation_id in ids:
        method, template, op = table[operation_id]
        examples = list(response_examples(op))
        assert examples, f"{operation_id} has no response example"
        for status, key, example in examples:
            path, query, body = try_it_out(op, template, key)
            response = await client.request(method, path, params=query, json=body)
            if response.status_code != int(status):
                wrong.append(f"{operation_id}: {response.status_code} {response.text}")
            elif timeless(response.json()) != timeless(example["value"]):
                wrong.append(f"{operation_id} {key}: {response.text} != {example['value']}")
    return wrong


async def test_every_response_example_is_the_answer_to_its_request(
    spec: dict[str, Any], new_app: FastAPI
) -> None:
    async with client_for(new_app) as client:
        assert await check_answers(client, spec, SCENARIO) == []


@pytest.mark.parametrize("operation_id", ON_A_NEW_SEED)
async def test_the_examples_of_writes_answer_a_new_seed(
    spec: dict[str, Any], new_app: FastAPI, operation_id: str
) -> None:
    async with client_for(new_app) as client:
        assert await check_answers(client, spec, ["models-create_model"]) == []
        assert await check_answers(client, spec, [operation_id]) == []


def test_every_response_example_is_checked_against_the_service(spec: dict[str, Any]) -> None:
    with_examples = {
        operation_id
        for operation_id, (_, _, op) in operations(spec).items()
        if any(True for _ in response_examples(op))
    }
    assert with_examples == set(SCENARIO) | set(ON_A_NEW_SEED)


def test_the_compute_examples_give_the_worked_examples_numbers(spec: dict[str, Any]) -> None:
    table = operations(spec)

    def value(operation_id: str) -> Any:
        return next(response_examples(table[operation_id][2]))[2]["value"]

    for operation_id in ("compute-forward_model", "stateless-forward_stateless"):
        assert value(operation_id)["outputs"] == [[SEED["forward"]["nodes"]["n9"]["out"]]]
    for operation_id in ("compute-gradient_model", "stateless-gradient_stateless"):
        assert value(operation_id)["loss"] == SEED["loss"]
    assert value("compute-train_step_model") == {
        "model": "seed",
        "version": 2,
        "loss": SEED["loss"],
    }


def _validator(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A JSON Schema 2020-12 validator of ``schema``, its ``$ref``s into the spec's components."""
    return jsonschema_rs.Draft202012Validator({**schema, "components": spec["components"]})


def test_every_example_validates_against_its_schema(spec: dict[str, Any]) -> None:
    checked = 0
    for _, _, op in operations(spec).values():
        for status, _, example in response_examples(op):
            schema = op["responses"][status]["content"][JSON]["schema"]
            _validator(spec, schema).validate(example["value"])
            checked += 1
        content = op.get("requestBody", {}).get("content", {}).get(JSON, {})
        for example in content.get("examples", {}).values():
            _validator(spec, content["schema"]).validate(example["value"])
            checked += 1
    assert checked > 2 * len(SCENARIO)
