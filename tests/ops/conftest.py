"""Fixtures of the operations tests: apps on an in-memory registry built from settings the test
chooses, and in-process clients of them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

import httpx
import pytest
from fastapi import FastAPI

from service.api.app import create_app
from service.settings import Settings
from tests.api.support import client_for


class AppFactory(Protocol):
    """Builds an app with ``Settings(registry="memory://", **overrides)``; closed at teardown."""

    def __call__(self, **overrides: Any) -> FastAPI: ...


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_app() -> Iterator[AppFactory]:
    apps: list[FastAPI] = []

    def make(**overrides: Any) -> FastAPI:
        app = create_app(Settings(**{"registry": "memory://", **overrides}))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.state.store.close()


@pytest.fixture
async def client(make_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with the default settings on an empty in-memory registry."""
    async with client_for(make_app()) as c:
        yield c
