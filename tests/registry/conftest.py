"""Backend fixtures: every contract test runs once per backend listed here.

A new backend plugs in by adding a branch to `_Storage` and its name to BACKENDS (and to
PERSISTENT_BACKENDS if it survives a reopen).

PostgreSQL storage is a fresh schema per location in the database that the environment
variable BACKPROP_TEST_POSTGRES_URL names; the schemas are dropped at teardown. If that server
cannot be reached the postgres tests are skipped with the reason, or fail when CI=true.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import pytest

from service.registry import MemoryRegistry, PostgresRegistry, Registry, SqliteRegistry
from tests.conftest import BACKENDS
from tests.conftest import SHARED_BACKENDS as PERSISTENT_BACKENDS
from tests.postgres import PostgresSchemas


class RegistryFactory(Protocol):
    """Opens a registry; the fixture closes every registry it opened at teardown."""

    def __call__(self, keep_versions: int = 20) -> Registry: ...


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


@contextmanager
def _opening(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, *, reopen: bool
) -> Iterator[RegistryFactory]:
    """A factory of registries of ``backend``, each on new storage, or with ``reopen`` all on
    the same; on exit it closes every registry it opened, then removes the storage."""
    storage = _Storage(backend, request, tmp_path)
    shared = storage.new_location() if reopen else None
    opened: list[Registry] = []

    def make(keep_versions: int = 20) -> Registry:
        location = shared if shared is not None else storage.new_location()
        opened.append(storage.open(location, keep_versions))
        return opened[-1]

    try:
        yield make
    finally:
        try:
            for registry in opened:
                registry.close()
        finally:
            storage.remove_all()


@pytest.fixture(params=BACKENDS)
def make_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryFactory]:
    """Factory of registries, each on new, empty storage."""
    with _opening(request.param, request, tmp_path, reopen=False) as make:
        yield make


@pytest.fixture
def registry(make_registry: RegistryFactory) -> Registry:
    """An empty registry keeping the default 20 versions."""
    return make_registry()


@pytest.fixture(params=PERSISTENT_BACKENDS)
def reopen_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryFactory]:
    """Factory of registries that all open the same storage, for durability tests."""
    with _opening(request.param, request, tmp_path, reopen=True) as reopen:
        yield reopen
