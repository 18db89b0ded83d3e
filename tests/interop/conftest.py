"""Fixtures of the interchange-format tests: an app on a memory registry holding the seed model,
with small body and batch limits, driven in process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from service.api.app import create_app
from service.settings import Settings
from tests.api.support import client_for, create_seed

MAX_BODY_BYTES = 256 * 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of a new app on a memory registry that holds the seed model ``seed``."""
    settings = Settings(registry="memory://", max_body_bytes=MAX_BODY_BYTES)
    app = create_app(settings)
    try:
        async with client_for(app) as c:
            await create_seed(c)
            yield c
    finally:
        app.state.store.close()
