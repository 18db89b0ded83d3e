"""Tests specific to the SQLite backend and to `open_registry`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from service.registry import (
    InvalidRegistryURL,
    MemoryRegistry,
    ModelNotFound,
    RegistryUnavailable,
    SqliteRegistry,
    open_registry,
)
from service.registry.sqlite import _MIGRATIONS

from .test_contract import SPEC, bundle


def query(path: Path, sql: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with SqliteRegistry(path):
        assert query(path, "PRAGMA journal_mode") == "wal"
        assert query(path, "PRAGMA user_version") == len(_MIGRATIONS)


def test_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "r.db"
    with SqliteRegistry(path) as registry:
        registry.create("m", SPEC, bundle())
    assert path.is_file()


@pytest.mark.parametrize("garbage", [b"not a database", bytes(range(256)) * 64])
def test_file_that_is_not_a_database_is_unavailable(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(garbage)
    with pytest.raises(RegistryUnavailable, match=r"garbage\.db"):
        SqliteRegistry(path)


def test_directory_in_place_of_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(RegistryUnavailable):
        SqliteRegistry(tmp_path)


def test_parent_that_is_a_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RegistryUnavailable):
        SqliteRegistry(tmp_path / "file" / "r.db")


def test_schema_newer_than_code_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    SqliteRegistry(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(RegistryUnavailable, match="schema version 99"):
        SqliteRegistry(path)


def test_ping_fails_when_file_is_deleted(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with SqliteRegistry(path) as registry:
        registry.ping()
        path.unlink()
        with pytest.raises(RegistryUnavailable):
            registry.ping()


def test_open_registry_memory() -> None:
    with open_registry("memory://", keep_versions=4) as registry:
        assert isinstance(registry, MemoryRegistry)
        assert registry.keep_versions == 4


def test_open_registry_sqlite_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_registry("sqlite:///data/models.db", keep_versions=5) as registry:
        assert isinstance(registry, SqliteRegistry)
        assert registry.path == Path("data/models.db")
        assert registry.keep_versions == 5
        registry.create("m", SPEC, bundle())
    assert (tmp_path / "data" / "models.db").is_file()


def test_open_registry_sqlite_absolute_path(tmp_path: Path) -> None:
    path = tmp_path / "abs" / "models.db"
    with open_registry(f"sqlite:///{path}") as registry:
        assert isinstance(registry, SqliteRegistry)
        assert registry.path == path
        assert path.is_absolute()
    assert path.is_file()


@pytest.mark.parametrize(
    "url",
    [
        "",
        "models.db",
        "mysql://host/db",
        "memory://somewhere",
        "sqlite://",
        "sqlite:///",
        "sqlite://host/models.db",
        "sqlite:///:memory:",
        "sqlite:///models.db?mode=ro",
        "postgresql+psycopg://user@host/db",
    ],
)
def test_invalid_urls_are_rejected(url: str) -> None:
    with pytest.raises(InvalidRegistryURL):
        open_registry(url)


def test_invalid_url_message_hides_password() -> None:
    with pytest.raises(InvalidRegistryURL) as info:
        open_registry("postgresql+psycopg://alice:s3cret@db.example/models")
    assert "s3cret" not in str(info.value)
    assert info.value.url == "postgresql+psycopg://alice:***@db.example/models"
    assert "drop the '+driver' part" in str(info.value)


def test_current_state_sees_every_commit_of_another_registry_on_the_file(tmp_path: Path) -> None:
    """current_state answers from memory between commits (PRAGMA data_version): a commit
    through another connection, of this registry or of another process's, is seen at once."""
    path = tmp_path / "r.db"
    here, there = SqliteRegistry(path), SqliteRegistry(path)
    try:
        first = there.create("m", SPEC, bundle(1))
        assert here.current_state("m") == (1, first.created_at)
        assert here.current_state("m") == (1, first.created_at)  # from memory
        there.commit("m", bundle(2), 1, "step", created=first.created_at)
        assert here.current_state("m") == (2, first.created_at)
        here.commit("m", bundle(3), 2, "step", created=first.created_at)  # its own writes too
        assert here.current_state("m") == there.current_state("m") == (3, first.created_at)
        there.delete("m")
        with pytest.raises(ModelNotFound):
            here.current_state("m")
        again = there.create("m", SPEC, bundle(4))
        assert here.current_state("m") == (1, again.created_at) != (1, first.created_at)
        # A write by another program on the file, outside any registry.
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("UPDATE models SET version = 7 WHERE name = 'm'")
        conn.close()
        assert here.current_state("m") == (7, again.created_at)
    finally:
        here.close()
        there.close()
    with pytest.raises(RegistryUnavailable):
        here.current_state("m")
