"""Fixtures of the Open Inference Protocol tests: an app on a memory registry with the seed
model and a random model, driven in process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from service.api.app import create_app
from service.settings import Settings
from tests.api.support import client_for, create_seed


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of a new app on a memory registry that holds the seed model ``seed``."""
    app = create_app(Settings(registry="memory://", max_body_bytes=64 * 1024))
    try:
        async with client_for(app) as c:
            await create_seed(c)
            yield c
    finally:
        app.state.store.close()
