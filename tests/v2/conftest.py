"""Fixtures of the Open Inference Protocol tests: an app on a memory registry with the seed
model and a random model, driven in process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.support import seeded_client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of a new app on a memory registry that holds the seed model ``seed``."""
    async with seeded_client(max_body_bytes=64 * 1024) as c:
        yield c
