"""Fixtures of the tests for learners: the seed network in the core's types, and HTTP clients on
apps over each registry backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from service.api.app import create_app
from service.settings import Settings
from tests.api.support import client_for


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["memory", "sqlite"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a new app on an empty registry (memory and SQLite)."""
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/r.db"
    app = create_app(Settings(registry=url))
    try:
        async with client_for(app) as c:
            yield c
    finally:
        app.state.store.close()
