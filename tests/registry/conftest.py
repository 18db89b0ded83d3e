"""Backend fixtures: every contract test runs once per backend listed here.

A new backend plugs in by adding a branch to `_Storage` and its name to BACKENDS (and to
PERSISTENT_BACKENDS if it survives a reopen).

PostgreSQL storage is a fresh schema per location in the database that the environment
variable BACKPROP_TEST_POSTGRES_URL names; the schemas are dropped at teardown. If that server
cannot be reached the postgres tests are skipped with the reason, or fail when CI=true.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import psycopg
import pytest
from psycopg import sql

from service.registry import MemoryRegistry, PostgresRegistry, Registry, SqliteRegistry

BACKENDS = ["memory", "sqlite", "postgres"]
PERSISTENT_BACKENDS = ["sqlite", "postgres"]

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA_PREFIX = "bp_test_"


class RegistryFactory(Protocol):
    """Opens a registry; the fixture closes every registry it opened at teardown."""

    def __call__(self, keep_versions: int = 20) -> Registry: ...


def with_query(url: str, **params: str) -> str:
    """Append query parameters, already URL-encoded, to a connection URL."""
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


def schema_url(base_url: str, schema: str) -> str:
    """The URL of `base_url` with `schema` as the only schema on the search path."""
    return with_query(base_url, options=f"-csearch_path%3D{schema}")


class PostgresSchemas:
    """Creates uniquely named schemas in the test database and drops them all at teardown."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._names: list[str] = []

    def new_name(self) -> str:
        """Reserve a fresh schema name, not yet created, that `drop_all` will drop."""
        self._names.append(f"{SCHEMA_PREFIX}{uuid.uuid4().hex}")
        return self._names[-1]

    def create(self) -> str:
        """Create a fresh, empty schema and return the URL that selects it."""
        name = self.new_name()
        self.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        return schema_url(self.base_url, name)

    def execute(self, statement: sql.Composed) -> None:
        """Run one statement in autocommit mode on a short-lived connection."""
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(statement)

    def drop_all(self) -> None:
        """Drop every schema this object named, if it exists."""
        for name in self._names:
            self.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        self._names.clear()


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


class _Storage:
    """Hands out new, empty storage locations of one backend and removes them afterwards."""

    def __init__(self, backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.backend = backend
        self._tmp_path = tmp_path
        self._counter = itertools.count()
        self._schemas: PostgresSchemas | None = None
        if backend == "postgres":
            # Looked up only for postgres, so the other backends run without a server.
            self._schemas = PostgresSchemas(request.getfixturevalue("postgres_url"))

    def new_location(self) -> str:
        if self._schemas is not None:
            return self._schemas.create()
        return str(self._tmp_path / f"storage-{next(self._counter)}")

    def open(self, location: str, keep_versions: int) -> Registry:
        if self.backend == "memory":
            return MemoryRegistry(keep_versions)
        if self.backend == "sqlite":
            return SqliteRegistry(Path(location) / "registry.db", keep_versions)
        if self.backend == "postgres":
            return PostgresRegistry(location, keep_versions)
        raise AssertionError(f"unknown backend {self.backend!r}")

    def remove_all(self) -> None:
        if self._schemas is not None:
            self._schemas.drop_all()


@pytest.fixture(params=BACKENDS)
def make_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryFactory]:
    """Factory of registries, each on new, empty storage."""
    storage = _Storage(request.param, request, tmp_path)
    opened: list[Registry] = []

    def make(keep_versions: int = 20) -> Registry:
        opened.append(storage.open(storage.new_location(), keep_versions))
        return opened[-1]

    try:
        yield make
    finally:
        try:
            for registry in opened:
                registry.close()
        finally:
            storage.remove_all()


@pytest.fixture
def registry(make_registry: RegistryFactory) -> Registry:
    """An empty registry keeping the default 20 versions."""
    return make_registry()


@pytest.fixture(params=PERSISTENT_BACKENDS)
def reopen_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryFactory]:
    """Factory of registries that all open the same storage, for durability tests."""
    storage = _Storage(request.param, request, tmp_path)
    location = storage.new_location()
    opened: list[Registry] = []

    def reopen(keep_versions: int = 20) -> Registry:
        opened.append(storage.open(location, keep_versions))
        return opened[-1]

    try:
        yield reopen
    finally:
        try:
            for registry in opened:
                registry.close()
        finally:
            storage.remove_all()
