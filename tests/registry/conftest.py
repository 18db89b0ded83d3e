"""Backend fixtures: every contract test runs once per backend listed here.

A new backend plugs in by adding a branch to `_open` and its name to BACKENDS (and to
PERSISTENT_BACKENDS if it survives a reopen).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from service.registry import MemoryRegistry, Registry, SqliteRegistry

BACKENDS = ["memory", "sqlite"]
PERSISTENT_BACKENDS = ["sqlite"]


class RegistryFactory(Protocol):
    """Opens a registry; the fixture closes every registry it opened at teardown."""

    def __call__(self, keep_versions: int = 20) -> Registry: ...


def _open(backend: str, location: Path, keep_versions: int) -> Registry:
    if backend == "memory":
        return MemoryRegistry(keep_versions)
    if backend == "sqlite":
        return SqliteRegistry(location / "registry.db", keep_versions)
    raise AssertionError(f"unknown backend {backend!r}")


@pytest.fixture(params=BACKENDS)
def make_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryFactory]:
    """Factory of registries, each on new, empty storage."""
    opened: list[Registry] = []
    counter = itertools.count()

    def make(keep_versions: int = 20) -> Registry:
        location = tmp_path / f"storage-{next(counter)}"
        opened.append(_open(request.param, location, keep_versions))
        return opened[-1]

    yield make
    for registry in opened:
        registry.close()


@pytest.fixture
def registry(make_registry: RegistryFactory) -> Registry:
    """An empty registry keeping the default 20 versions."""
    return make_registry()


@pytest.fixture(params=PERSISTENT_BACKENDS)
def reopen_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryFactory]:
    """Factory of registries that all open the same storage, for durability tests."""
    opened: list[Registry] = []

    def reopen(keep_versions: int = 20) -> Registry:
        opened.append(_open(request.param, tmp_path / "storage", keep_versions))
        return opened[-1]

    yield reopen
    for registry in opened:
        registry.close()
