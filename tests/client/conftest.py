"""Fixtures of the client tests: the sync :class:`Client` against a real server process (httpx's
sync client cannot drive an ASGI app in process), the :class:`AsyncClient` against an app in
process with its lifespan running (so that its job runner runs)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.api.app import create_app
from service.client import AsyncClient, Client
from service.settings import Settings
from tests.servers import Server, serving

Unique = Callable[[str], str]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """One server on a memory registry for every sync test; tests use names of their own."""
    with serving("--registry", "memory://", env={"BACKPROP_LOG_LEVEL": "warning"}) as running:
        yield running


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url) as c:
        yield c


@pytest.fixture
def unique() -> Unique:
    """``unique("seed")``: a name no other test uses on the shared server."""
    tag = uuid.uuid4().hex[:10]
    return lambda prefix: f"{prefix}-{tag}"


async def started(settings: Settings) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://test", transport=transport) as c:
            yield app, c


@pytest.fixture
async def aclient() -> AsyncIterator[AsyncClient]:
    """An async client of a new app on an empty memory registry."""
    async for _, c in started(Settings(registry="memory://")):
        yield c


def settings(**values: Any) -> Settings:
    return Settings(registry="memory://", **values)
