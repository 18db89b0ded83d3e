"""Fixtures of the operations tests: apps on an in-memory registry built from settings the test
chooses, and in-process clients of them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.api.support import AppFactory, client_for, closing_apps


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_app() -> Iterator[AppFactory]:
    """Apps on an in-memory registry unless the settings name another."""
    with closing_apps("memory://") as make:
        yield make


@pytest.fixture
async def client(make_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with the default settings on an empty in-memory registry."""
    async with client_for(make_app()) as c:
        yield c
