"""Fixtures of the HTTP tests: apps on each registry backend, closed at teardown, and clients
driving them in process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from fastapi import FastAPI

from service.api.app import create_app
from service.settings import Settings
from tests.api.support import Pool, client_for
from tests.postgres import PostgresSchemas

BACKENDS = ["memory", "sqlite", "postgres"]


class AppFactory(Protocol):
    """Builds an app on the test's registry with the settings given (the defaults for the
    rest); every app built is closed at teardown."""

    def __call__(self, **settings: Any) -> FastAPI: ...


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=BACKENDS)
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty registry of each backend."""
    if request.param == "memory":
        return "memory://"
    if request.param == "postgres":
        schemas: PostgresSchemas = request.getfixturevalue("postgres_schemas")
        return schemas.create()
    return f"sqlite:///{tmp_path}/r.db"


@pytest.fixture
def make_app(registry_url: str) -> Iterator[AppFactory]:
    apps: list[FastAPI] = []

    def make(**settings: Any) -> FastAPI:
        app = create_app(Settings(registry=registry_url, **settings))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.state.store.close()


@pytest.fixture
async def client(make_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a new app on an empty registry (each backend)."""
    async with client_for(make_app()) as c:
        yield c


# Modules that use it set anyio_backend module-wide, so that the shared apps live in one event
# loop with the tests.
@pytest.fixture(scope="module", params=BACKENDS)
async def pool(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pool]:
    folder = tmp_path_factory.mktemp("registries")
    schemas = None
    if request.param == "postgres":
        schemas = PostgresSchemas(request.getfixturevalue("postgres_url"))

    def url(n: int) -> str:
        if schemas is not None:
            return schemas.create()
        return "memory://" if request.param == "memory" else f"sqlite:///{folder}/r{n}.db"

    shared = Pool(url)
    yield shared
    await shared.close()
    if schemas is not None:
        schemas.drop_all()
