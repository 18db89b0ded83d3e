"""Fixtures of the HTTP tests: apps on each registry backend, closed at teardown, and clients
driving them in process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.api.support import AppFactory, Pool, client_for, closing_apps
from tests.conftest import BACKENDS
from tests.postgres import PostgresSchemas


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_app(registry_url: str) -> Iterator[AppFactory]:
    """Apps on a new, empty registry of each backend (``registry_url``)."""
    with closing_apps(registry_url) as make:
        yield make


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
