"""API keys: each role can do what it should and no more; 401 and 403 are problem responses;
keys never show; which operations are public is a setting."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from service.api.app import create_app
from service.api.auth import ROUTE_ROLES, InvalidApiKeys, load_keys, required_role
from service.settings import Settings
from tests.api.support import SEED_DATA, AppFactory, assert_problem, client_for, seed_model

pytestmark = pytest.mark.anyio

READ, TRAIN, ADMIN = "read-key-0123456789abcdef", "train-key-0123456789abcdef", "admin-key-0123"
KEYS = f"{READ}:read,{TRAIN}:train,{ADMIN}:admin"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def keyed(make_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with three keys and the seed model (created with the admin key)."""
    async with client_for(make_app(api_keys=KEYS)) as client:
        created = await client.post("/v1/models", json=seed_model("seed"), headers=bearer(ADMIN))
        assert created.status_code == 201, created.text
        yield client


def assert_unauthorized(response: httpx.Response) -> None:
    assert_problem(response, 401, type_suffix="/unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_without_a_key_every_operation_is_refused(keyed: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/v1/models"),
        ("GET", "/v1/models/seed"),
        ("POST", "/v1/models/seed/forward"),
        ("POST", "/v1/models"),
        ("GET", "/no/such/path"),
    ]:
        response = await keyed.request(method, path, json={"inputs": [[0.23, 0.55]]})
        assert_unauthorized(response)
        assert "error=" not in response.headers["www-authenticate"]


async def test_an_unknown_key_is_refused_as_invalid(keyed: httpx.AsyncClient) -> None:
    response = await keyed.get("/v1/models", headers=bearer("not-a-key"))
    assert_unauthorized(response)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    "authorization", [f"Basic {READ}", READ, "Bearer", f"Bearer  {READ}x", "bearer"]
)
async def test_a_malformed_authorization_header_is_refused(
    keyed: httpx.AsyncClient, authorization: str
) -> None:
    assert_unauthorized(await keyed.get("/v1/models", headers={"Authorization": authorization}))


async def test_the_scheme_name_is_case_insensitive(keyed: httpx.AsyncClient) -> None:
    response = await keyed.get("/v1/models", headers={"Authorization": f"bearer {READ}"})
    assert response.status_code == 200


async def test_a_refused_request_body_is_never_read(keyed: httpx.AsyncClient) -> None:
    """401 comes before the body: malformed JSON from a client without a key is not parsed."""
    response = await keyed.post(
        "/v1/models", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_unauthorized(response)


async def test_read_key_reads_and_computes(keyed: httpx.AsyncClient) -> None:
    h = bearer(READ)
    assert (await keyed.get("/v1/models", headers=h)).status_code == 200
    assert (await keyed.get("/v1/models/seed", headers=h)).status_code == 200
    assert (await keyed.get("/v1/models/seed/parameters", headers=h)).status_code == 200
    forward = await keyed.post(
        "/v1/models/seed/forward", json={"inputs": [[0.23, 0.55]]}, headers=h
    )
    assert forward.status_code == 200
    assert (await keyed.post("/v1/models/seed/gradient", json=SEED_DATA, headers=h)).is_success
    explain = {**SEED_DATA, "parameter": "w1"}
    assert (await keyed.post("/v1/models/seed/explain", json=explain, headers=h)).is_success
    diagram = "/v1/models/seed/diagram.svg"
    assert (await keyed.get(diagram, headers=h)).status_code == 200


async def test_read_key_cannot_train_change_create_or_delete(keyed: httpx.AsyncClient) -> None:
    h = bearer(READ)
    for method, path, body in [
        ("POST", "/v1/models/seed/train-step", SEED_DATA),
        ("PUT", "/v1/models/seed/parameters", {"parameters": {}}),
        ("POST", "/v1/models/seed/rollback", {"version": 1}),
        ("POST", "/v1/models", seed_model("other")),
        ("DELETE", "/v1/models/seed", None),
    ]:
        response = await keyed.request(method, path, json=body, headers=h)
        problem = assert_problem(response, 403, type_suffix="/forbidden")
        assert "read role" in problem["detail"]
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert (await keyed.get("/v1/models/seed", headers=h)).json()["version"] == 1


async def test_train_key_trains_but_cannot_create_or_delete(keyed: httpx.AsyncClient) -> None:
    h = bearer(TRAIN)
    step = await keyed.post("/v1/models/seed/train-step", json=SEED_DATA, headers=h)
    assert step.status_code == 200, step.text
    rollback = await keyed.post("/v1/models/seed/rollback", json={"version": 1}, headers=h)
    assert rollback.status_code == 200, rollback.text
    assert (
        await keyed.post("/v1/models/seed/forward", json={"inputs": [[1, 2]]}, headers=h)
    ).is_success
    created = await keyed.post("/v1/models", json=seed_model("other"), headers=h)
    assert_problem(created, 403)
    assert "needs the admin role" in created.json()["detail"]
    assert_problem(await keyed.delete("/v1/models/seed", headers=h), 403)


async def test_admin_key_creates_and_deletes(keyed: httpx.AsyncClient) -> None:
    h = bearer(ADMIN)
    assert (await keyed.post("/v1/models", json=seed_model("other"), headers=h)).status_code == 201
    assert (await keyed.post("/v1/models/other/train-step", json=SEED_DATA, headers=h)).is_success
    assert (await keyed.delete("/v1/models/other", headers=h)).status_code == 204


async def test_health_and_docs_are_public_and_metrics_need_a_key_by_default(
    keyed: httpx.AsyncClient,
) -> None:
    for path in (
        "/healthz",
        "/readyz",
        "/docs",
        "/redoc",
        "/openapi.json",
        "/static/docs/swagger-ui.css",
        "/playground",
        "/static/playground/main.js",
    ):
        assert (await keyed.get(path)).status_code == 200, path
    assert_unauthorized(await keyed.get("/metrics"))
    assert (await keyed.get("/metrics", headers=bearer(READ))).status_code == 200


async def test_public_operations_are_settings(make_app: AppFactory) -> None:
    app = make_app(api_keys=KEYS, public_health=False, public_docs=False, public_metrics=True)
    async with client_for(app) as client:
        for path in (
            "/healthz",
            "/readyz",
            "/docs",
            "/openapi.json",
            "/static/docs/favicon.png",
            "/playground",
            "/static/playground/main.js",
        ):
            assert_unauthorized(await client.get(path))
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/healthz", headers=bearer(READ))).status_code == 200


async def test_without_keys_nothing_needs_one(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/models", json=seed_model("seed"))).status_code == 201
    assert (await client.get("/metrics")).status_code == 200


async def test_problems_never_echo_the_key(keyed: httpx.AsyncClient) -> None:
    wrong = "wrong-key-that-must-not-be-echoed"
    for response in (
        await keyed.get("/v1/models", headers=bearer(wrong)),
        await keyed.delete("/v1/models/seed", headers=bearer(READ)),
    ):
        assert wrong not in response.text and READ not in response.text
        assert wrong not in str(response.headers) and READ not in str(response.headers)


def test_each_operation_is_mapped_to_its_role() -> None:
    expected = {
        ("GET", "/v1/models"): "read",
        ("GET", "/v1/models/seed/parameters"): "read",
        ("POST", "/v1/models/seed/forward"): "read",
        ("POST", "/v1/models/seed/gradient"): "read",
        ("POST", "/v1/models/seed/explain"): "read",
        ("GET", "/v1/models/seed/diagram.svg"): "read",
        ("POST", "/v1/forward"): "read",
        ("POST", "/v1/train-step"): "read",
        ("POST", "/v1/models/seed/train-step"): "train",
        ("PUT", "/v1/models/seed/parameters"): "train",
        ("POST", "/v1/models/seed/rollback"): "train",
        ("POST", "/v1/models/seed/train"): "train",
        ("POST", "/v1/jobs/abc/cancel"): "train",
        ("POST", "/v1/models"): "admin",
        ("DELETE", "/v1/models/seed"): "admin",
        ("HEAD", "/v1/models/seed"): "read",
    }
    assert {op: required_role(*op) for op in expected} == expected


def test_unknown_write_operations_need_the_admin_role() -> None:
    assert required_role("POST", "/v1/models/seed/something-new") == "admin"
    assert required_role("PATCH", "/v1/models/seed") == "admin"
    assert required_role("DELETE", "/v1/anything") == "admin"
    assert required_role("GET", "/v1/something-new") == "read"


def test_every_mapped_operation_exists_in_the_app() -> None:
    app = create_app(Settings(registry="memory://"))
    try:
        paths = app.openapi()["paths"]
    finally:
        app.state.store.close()
    operations = {(m.upper(), p) for p, ops in paths.items() for m in ops}
    stale = [op for op in ROUTE_ROLES if op not in operations]
    assert not stale, f"ROUTE_ROLES maps operations the app does not have: {stale}"


def test_the_spec_documents_the_bearer_scheme_and_each_role(make_app: AppFactory) -> None:
    keyed = make_app(api_keys=SecretStr(f"{READ}:read")).openapi()
    assert keyed["paths"]["/v1/models"]["post"]["security"] == [{"bearer": []}]
    spec = make_app().openapi()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    create = spec["paths"]["/v1/models"]["post"]
    assert create["security"] == [{"bearer": []}, {}], "without keys, anonymous access is open"
    assert create["x-required-role"] == "admin"
    assert set(create["responses"]) >= {"401", "403"}
    assert spec["paths"]["/healthz"]["get"]["security"] == []


def test_keys_come_from_the_variable_and_the_file(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("# operators\nfile-admin-key:admin\n\nfile-read-key:read  # ci\n")
    settings = Settings(
        registry="memory://",
        api_keys=SecretStr(f"{READ}:read, {TRAIN}:train"),
        api_keys_file=keys_file,
    )
    assert load_keys(settings) == {
        READ: "read",
        TRAIN: "train",
        "file-admin-key": "admin",
        "file-read-key": "read",
    }


@pytest.mark.parametrize(
    "value",
    [
        "secret-one",
        "secret-one:root",
        ":read",
        "secret one:read",
        "secret-one:read,secret-one:admin",
    ],
)
def test_malformed_keys_fail_at_start_without_showing_a_key(value: str) -> None:
    with pytest.raises(InvalidApiKeys) as failure:
        load_keys(Settings(registry="memory://", api_keys=SecretStr(value)))
    assert "secret" not in str(failure.value)


def test_an_unreadable_keys_file_fails_at_start(tmp_path: Path) -> None:
    settings = Settings(registry="memory://", api_keys_file=tmp_path / "missing")
    with pytest.raises(InvalidApiKeys, match="cannot read"):
        load_keys(settings)


def test_settings_never_show_the_keys() -> None:
    settings = Settings(registry="memory://", api_keys=SecretStr(KEYS))
    shown = repr(settings) + str(settings) + json.dumps(settings.model_dump(mode="json"))
    assert READ not in shown and ADMIN not in shown
