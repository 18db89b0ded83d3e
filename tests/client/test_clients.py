"""The two clients: the same methods with the same signatures, each documented with its
endpoint, every operation of the ``/v1`` API covered, connections closed by the context
managers, settings passed to httpx."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import httpx
import pytest

from service.client import AsyncClient, Client
from service.client.call import DEFAULT_URL

SPEC = json.loads((Path(__file__).resolve().parents[2] / "openapi" / "openapi.json").read_text())
ENDPOINT = re.compile(r"``(GET|POST|PUT|DELETE) (/[^`?]*)")
LOCAL = ("http", "close", "aclose")


def public(cls: type[object]) -> list[str]:
    return sorted(n for n in dir(cls) if not n.startswith("_") and n not in LOCAL)


@pytest.mark.anyio
async def test_both_clients_have_the_same_methods_and_signatures() -> None:
    assert public(Client) == public(AsyncClient)
    with Client() as sync_client:
        async with AsyncClient() as async_client:
            pairs = [(getattr(sync_client, n), getattr(async_client, n)) for n in public(Client)]
    for name, (sync_method, async_method) in zip(public(Client), pairs, strict=True):
        sync_signature, async_signature = map(inspect.signature, (sync_method, async_method))
        assert sync_signature.parameters == async_signature.parameters, name
        assert inspect.getdoc(sync_method) and inspect.getdoc(async_method), name
        iterates = name.startswith("iter_") or name == "events"  # async iterators, not awaited
        assert inspect.iscoroutinefunction(async_method) is not iterates, name


def test_every_method_names_its_endpoint() -> None:
    with Client() as client:
        for name in public(Client):
            doc = inspect.getdoc(getattr(client, name)) or ""
            assert ENDPOINT.search(doc), f"{name}: {doc[:80]}"
    assert (inspect.getdoc(Client.get_model) or "").startswith("``GET /v1/models/{name}``")


def test_every_v1_operation_of_the_spec_has_a_method() -> None:
    documented = set()
    for name in public(Client):
        for method, path in ENDPOINT.findall(inspect.getdoc(getattr(Client, name)) or ""):
            documented.add((method, path.replace("{id}", "{job_id}")))
    operations = {
        (method.upper(), path)
        for path, item in SPEC["paths"].items()
        if path.startswith("/v1/") or path in ("/healthz", "/readyz")
        for method in item
    }
    assert operations - documented == set()


def test_the_sync_context_manager_closes_the_connections() -> None:
    with Client("http://example.test:9", timeout=4.5) as client:
        assert str(client.http.base_url) == "http://example.test:9"
        assert client.http.timeout == httpx.Timeout(4.5)
    assert client.http.is_closed


@pytest.mark.anyio
async def test_the_async_context_manager_closes_the_connections() -> None:
    async with AsyncClient(timeout=None) as client:
        assert str(client.http.base_url) == DEFAULT_URL
        assert client.http.timeout == httpx.Timeout(None)
    assert client.http.is_closed


def test_a_default_client_reaches_the_server_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"status": "ok"})

    with Client(transport=httpx.MockTransport(answer)) as client:
        client.healthz()
    assert seen == ["http://127.0.0.1:8000/healthz"]
