"""Error answers become the ApiError of their status, carrying the problem: unit tests on
made-up answers, and the service's real problems through both clients."""

from __future__ import annotations

import json

import httpx
import pytest

from service.client import (
    ApiError,
    AsyncClient,
    Client,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    StorageFull,
    Unauthorized,
    Unavailable,
)
from service.client.errors import error_for
from tests.api.support import SEED_INPUTS, SEED_NETWORK, SEED_PARAMETERS
from tests.client.conftest import Unique, settings, started


def problem_response(status: int, **extra: object) -> httpx.Response:
    body = {"type": f"/problems/p{status}", "title": f"T{status}", "status": status}
    body.update({"detail": f"detail {status}", "error": f"detail {status}", **extra})
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidInput),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (412, PreconditionFailed),
        (413, PayloadTooLarge),
        (422, InvalidInput),
        (503, Unavailable),
        (507, StorageFull),
        (405, ApiError),
        (500, ApiError),
    ],
)
def test_each_status_raises_its_class_with_the_problem(status: int, cls: type[ApiError]) -> None:
    transport = httpx.MockTransport(lambda request: problem_response(status))
    with Client("http://test", transport=transport) as client, pytest.raises(ApiError) as info:
        client.get_model("m")
    assert type(info.value) is cls
    error = info.value
    assert (error.status, error.type, error.title, error.detail) == (
        status,
        f"/problems/p{status}",
        f"T{status}",
        f"detail {status}",
    )
    assert error.response.status_code == status
    assert str(error) == f"HTTP {status} T{status}: detail {status}"


def test_errors_and_pointers_come_from_the_problem() -> None:
    errors = [
        {"pointer": "/inputs/0", "message": "too short"},
        {"parameter": "limit", "in": "query", "message": "too big"},
    ]
    error = error_for(problem_response(422, errors=errors))
    assert error.errors == errors
    assert error.pointers == ["/inputs/0"]


def test_a_body_that_is_not_a_problem_keeps_its_text_as_the_detail() -> None:
    response = httpx.Response(400, text="Invalid HTTP request received.")
    error = error_for(response)
    assert isinstance(error, InvalidInput)
    assert (error.title, error.detail, error.errors) == (
        "Bad Request",
        "Invalid HTTP request received.",
        [],
    )


def test_transport_errors_are_httpx_own() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with (
        Client("http://test", transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.healthz()


# -- the service's own problems ------------------------------------------------------------


def test_unknown_model_is_not_found_with_the_problem_detail(client: Client, unique: Unique) -> None:
    name = unique("absent")
    with pytest.raises(NotFound) as info:
        client.get_model(name)
    assert info.value.type == "/problems/model-not-found"
    assert name in info.value.detail
    assert info.value.problem["instance"] == f"/v1/models/{name}"


def test_taken_name_is_a_conflict(client: Client, unique: Unique) -> None:
    name = unique("taken")
    client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)
    with pytest.raises(Conflict) as info:
        client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)
    assert info.value.type == "/problems/name-taken"


def test_stale_if_match_is_a_failed_precondition_and_changes_nothing(
    client: Client, unique: Unique
) -> None:
    name = unique("stale")
    client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)
    with pytest.raises(PreconditionFailed) as info:
        client.put_parameters(name, SEED_PARAMETERS, if_match=7)
    assert "version 7" in info.value.detail
    assert info.value.response.headers["etag"] == '"1"'
    with pytest.raises(PreconditionFailed):
        client.delete_model(name, if_match=2)
    assert client.get_model(name).version == 1


def test_bad_input_is_invalid_input_with_pointers(client: Client, unique: Unique) -> None:
    name = unique("bad")
    client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)
    with pytest.raises(InvalidInput) as info:
        client.forward(name, [[0.23]])
    assert info.value.status == 422
    assert info.value.pointers == ["/inputs/0"]
    assert "inputs[0] has 1" in info.value.detail
    with pytest.raises(InvalidInput) as info:
        client.gradient(name, SEED_INPUTS, [[0.1], [0.2]])
    assert info.value.pointers and info.value.pointers[0].startswith("/targets")


def test_a_query_parameter_out_of_range_names_the_parameter(client: Client) -> None:
    with pytest.raises(InvalidInput) as info:
        client.list_models(limit=501)
    assert [(e["parameter"], e["in"]) for e in info.value.errors] == [("limit", "query")]


@pytest.mark.anyio
async def test_keys_and_roles_give_unauthorized_and_forbidden() -> None:
    keys = settings(api_keys="reader-key:read,admin-key:admin")
    async for app, anonymous in started(keys):
        transport = httpx.ASGITransport(app=app)
        with pytest.raises(Unauthorized):
            await anonymous.list_models()
        async with AsyncClient("http://test", api_key="admin-key", transport=transport) as admin:
            await admin.create_model("m", SEED_NETWORK, parameters=SEED_PARAMETERS)
        async with AsyncClient("http://test", api_key="reader-key", transport=transport) as reader:
            assert (await reader.forward("m", SEED_INPUTS)).version == 1
            with pytest.raises(Forbidden):
                await reader.delete_model("m")
        async with AsyncClient("http://test", api_key="wrong", transport=transport) as wrong:
            with pytest.raises(Unauthorized):
                await wrong.get_model("m")


def test_the_api_key_is_sent_as_a_bearer_token() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "ok"})

    with Client("http://test", api_key="s3cret", transport=httpx.MockTransport(answer)) as c:
        assert c.healthz().status == "ok"
    with Client("http://test", transport=httpx.MockTransport(answer)) as c:
        c.healthz()
    assert seen[0].headers["authorization"] == "Bearer s3cret"
    assert "authorization" not in seen[1].headers


@pytest.mark.anyio
async def test_async_errors_are_the_same_classes(aclient: AsyncClient) -> None:
    with pytest.raises(NotFound):
        await aclient.get_parameters("nothing-here")
    await aclient.create_model("m", SEED_NETWORK, parameters=SEED_PARAMETERS)
    with pytest.raises(Conflict):
        await aclient.create_model("m", SEED_NETWORK, parameters=SEED_PARAMETERS)
    with pytest.raises(PreconditionFailed):
        await aclient.rollback("m", 1, if_match=3)
    with pytest.raises(InvalidInput) as info:
        await aclient.train_step("m", SEED_INPUTS, [[0.1, 0.2]], learning_rate=0.1)
    assert info.value.pointers[0].startswith("/targets")


def test_readyz_503_is_unavailable() -> None:
    body = json.dumps(
        {
            "type": "/problems/registry-unavailable",
            "title": "Registry unavailable",
            "status": 503,
            "detail": "the model registry cannot be reached; try again shortly",
            "error": "the model registry cannot be reached; try again shortly",
        }
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(503, content=body))
    with Client("http://test", transport=transport) as client, pytest.raises(Unavailable) as info:
        client.readyz()
    assert info.value.type == "/problems/registry-unavailable"
