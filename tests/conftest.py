"""Fixtures shared by every test package: PostgreSQL and new registries of each backend."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.postgres import DEFAULT_POSTGRES_URL, PostgresSchemas

BACKENDS = ["memory", "sqlite", "postgres"]
# The backends that outlive a server process and that several processes can share.
SHARED_BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The base URL of the test PostgreSQL database; skips (fails under CI) if unreachable."""
    url = os.environ.get("BACKPROP_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        shown = re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", url)  # hide a password
        reason = (
            f"PostgreSQL not reachable at {shown} (set BACKPROP_TEST_POSTGRES_URL to change): "
            + " ".join(str(exc).split())
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the postgres tests", pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture
def postgres_schemas(postgres_url: str) -> Iterator[PostgresSchemas]:
    """Fresh schemas in the test database, dropped at teardown."""
    schemas = PostgresSchemas(postgres_url)
    yield schemas
    schemas.drop_all()


def _new_registry(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty registry of ``backend``; a PostgreSQL schema is dropped at
    teardown (by ``postgres_schemas``, looked up only for postgres, so that the other backends
    run without a server)."""
    if backend == "memory":
        return "memory://"
    if backend == "postgres":
        schemas: PostgresSchemas = request.getfixturevalue("postgres_schemas")
        return schemas.create()
    return f"sqlite:///{tmp_path}/registry.db"


@pytest.fixture(params=BACKENDS)
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty registry of each backend."""
    return _new_registry(request.param, request, tmp_path)


@pytest.fixture(params=SHARED_BACKENDS)
def shared_registry(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty registry that outlives the server processes on it and that several of them
    can share (SQLite, PostgreSQL)."""
    return _new_registry(request.param, request, tmp_path)
