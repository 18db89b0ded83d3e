"""Fixtures of the interchange-format tests: an app on a memory registry holding the seed model,
with small body and batch limits, driven in process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.support import seeded_client

MAX_BODY_BYTES = 256 * 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of a new app on a memory registry that holds the seed model ``seed``."""
    async with seeded_client(max_body_bytes=MAX_BODY_BYTES) as c:
        yield c
