"""Fixtures of the job tests: apps on each registry backend with their lifespan running (so
that their job runner runs), and clients driving them in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.api.app import create_app
from service.settings import Settings
from tests.api.support import client_for

# Quick heartbeats, so that tests of stale jobs take a second, not half a minute.
FAST: dict[str, Any] = {"job_heartbeat_seconds": 0.1, "job_stale_seconds": 1.0}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Apps:
    """Starts apps (lifespan included) on one registry; all are stopped at teardown."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._stacks: dict[int, AsyncExitStack] = {}
        self.apps: dict[int, FastAPI] = {}

    async def __call__(self, **settings: Any) -> httpx.AsyncClient:
        app = create_app(Settings(registry=settings.pop("registry", self.url), **FAST, **settings))
        stack = AsyncExitStack()
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(client_for(app))
        self._stacks[id(client)] = stack
        self.apps[id(client)] = app
        return client

    async def stop(self, client: httpx.AsyncClient) -> None:
        """Shut the app down as a server does: its running jobs become interrupted."""
        await self._stacks.pop(id(client)).aclose()

    async def close(self) -> None:
        for stack in list(self._stacks.values()):
            await stack.aclose()
        self._stacks.clear()


async def _apps(url: str) -> AsyncIterator[Apps]:
    started = Apps(url)
    try:
        yield started
    finally:
        await started.close()


@pytest.fixture
async def apps(registry_url: str) -> AsyncIterator[Apps]:
    """Apps on a new registry of each backend."""
    async for started in _apps(registry_url):
        yield started


@pytest.fixture
async def client(apps: Apps) -> httpx.AsyncClient:
    """A client of a started app on a new registry (each backend)."""
    return await apps()


@pytest.fixture
async def memory_apps() -> AsyncIterator[Apps]:
    """Apps on a memory registry, for tests of the training itself."""
    async for started in _apps("memory://"):
        yield started


@pytest.fixture
async def memory_client(memory_apps: Apps) -> httpx.AsyncClient:
    return await memory_apps()


@pytest.fixture
async def persistent_apps(shared_registry: str) -> AsyncIterator[Apps]:
    """Apps on one registry that outlives them (SQLite, PostgreSQL), for restarts."""
    async for started in _apps(shared_registry):
        yield started
