"""SQLite registry backend: one database file, safe to share between threads and processes.

Every write runs in a ``BEGIN IMMEDIATE`` transaction, which takes the file's write lock
before reading, so a compare-and-swap cannot interleave with a writer in another process.
WAL mode lets readers proceed while a write is in progress.
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .base import Registry
from .codec import Encoded, decode_arrays, decode_spec, encode_arrays, encode_spec
from .errors import (
    ModelExists,
    ModelNotFound,
    RegistryError,
    RegistryUnavailable,
    StorageFull,
    VersionConflict,
    VersionNotFound,
)
from .jobs_sql import Row, SqlJobs, Tx
from .records import Arrays, ModelRecord, Snapshot, VersionInfo

# Entry i brings the schema from PRAGMA user_version i to i + 1. Append, never edit.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE models (
            name TEXT PRIMARY KEY,
            spec TEXT NOT NULL,
            version INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE versions (
            model TEXT NOT NULL REFERENCES models(name) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            reason TEXT NOT NULL,
            arrays BLOB NOT NULL,
            PRIMARY KEY (model, version)
        )""",
    ),
    (
        """CREATE TABLE datasets (
            name TEXT PRIMARY KEY,
            info TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            digest TEXT NOT NULL,
            created_at REAL NOT NULL,
            arrays BLOB NOT NULL
        )""",
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            dataset TEXT,
            state TEXT NOT NULL,
            config TEXT NOT NULL,
            progress TEXT NOT NULL,
            checkpoint TEXT,
            version INTEGER NOT NULL,
            owner TEXT,
            cancel_requested INTEGER NOT NULL,
            error TEXT,
            last_event INTEGER NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            heartbeat_at REAL,
            data BLOB
        )""",
        "CREATE UNIQUE INDEX jobs_active_model ON jobs (model)"
        " WHERE state IN ('queued', 'running')",
        "CREATE INDEX jobs_by_model ON jobs (model, id)",
        """CREATE TABLE job_events (
            job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            data TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (job, seq)
        )""",
        """CREATE TABLE history (
            model TEXT NOT NULL REFERENCES models(name) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            job TEXT NOT NULL,
            version INTEGER NOT NULL,
            data TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (model, seq)
        )""",
    ),
    # The progress saved with a job's last checkpoint: what a job that stops short reports.
    ("ALTER TABLE jobs ADD COLUMN kept_progress TEXT",),
)

# Idle connections kept for reuse; more are opened on demand when many threads are busy.
_MAX_IDLE = 16
_STATES = 4096  # models whose current state current_state keeps between commits
_MODEL_COLUMNS = "name, spec, version, created_at, updated_at"
_MIN_INTEGER, _MAX_INTEGER = -(2**63), 2**63 - 1


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _record(row: tuple[Any, ...]) -> ModelRecord:
    name, spec, version, created_at, updated_at = row
    return ModelRecord(
        name=name,
        spec=decode_spec(spec),
        version=version,
        created_at=datetime.fromisoformat(created_at),
        updated_at=datetime.fromisoformat(updated_at),
    )


class _SqliteTx:
    """A transaction on a SQLite connection, taking ``%s`` placeholders."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Sequence[Any] = (), binary: bool = False) -> list[Row]:
        return self.conn.execute(sql.replace("%s", "?"), tuple(params)).fetchall()


class SqliteRegistry(SqlJobs, Registry):
    """Registry stored in one SQLite file (WAL mode, synchronous=FULL)."""

    def __init__(self, path: str | Path, keep_versions: int = 20, *, timeout: float = 10.0):
        """Open or create the database at `path`, creating parent directories.

        `timeout` is how long, in seconds, to wait for another writer's lock.
        Raises RegistryUnavailable if the file cannot be opened or is not a registry database.
        """
        super().__init__(keep_versions)
        self._path = Path(path)
        if str(path) == ":memory:":
            raise ValueError("SqliteRegistry needs a file path; use MemoryRegistry for memory")
        self._timeout = timeout
        self._lock = threading.Lock()  # guards _idle and _closed
        # Serialises this process's writers without SQLite's sleep-and-retry busy loop.
        self._write_lock = threading.Lock()
        self._idle: builtins.list[sqlite3.Connection] = []
        self._closed = False
        # current_state's connection, the data_version it last read, and the states read since.
        self._watch_lock = threading.Lock()
        self._watch: sqlite3.Connection | None = None
        self._seen: int | None = None
        self._states: dict[str, tuple[int, datetime]] = {}
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryUnavailable(f"cannot create directory of {self._path}: {exc}") from exc
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def _migrate(self) -> None:
        with self._connection() as conn:
            # Persistent in the file; cannot be changed inside a transaction.
            conn.execute("PRAGMA journal_mode=WAL")
        with self._write() as conn:
            (current,) = conn.execute("PRAGMA user_version").fetchone()
            if current > len(_MIGRATIONS):
                raise RegistryUnavailable(
                    f"{self._path} has schema version {current}; this code knows up to "
                    f"{len(_MIGRATIONS)}"
                )
            for number, statements in enumerate(_MIGRATIONS[current:], start=current + 1):
                for statement in statements:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")

    def _open_connection(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves; the module's implicit
        # transactions would start deferred ones, which cannot serialise a CAS.
        conn = sqlite3.connect(
            self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=FULL")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """Lend a connection to one thread; map sqlite3 errors: SQLITE_FULL (the disk, or
        the database's max_page_count) to StorageFull, any other to RegistryUnavailable."""
        with self._lock:
            if self._closed:
                raise RegistryUnavailable("registry is closed")
            conn = self._idle.pop() if self._idle else None
        broken = False
        try:
            if conn is None:
                conn = self._open_connection()
            yield conn
        except sqlite3.Error as exc:
            broken = True
            raise self._failure(exc) from exc
        finally:
            if conn is not None:
                self._release(conn, broken)

    def _failure(self, exc: sqlite3.Error) -> RegistryUnavailable | StorageFull:
        """The registry's error for ``exc``. SQLite has undone the statement or transaction
        that failed: what was stored is intact."""
        if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_FULL:
            self._storage_full = True
            return StorageFull(f"sqlite registry {self._path}: {exc}")
        return RegistryUnavailable(f"sqlite registry {self._path}: {exc}")

    def _release(self, conn: sqlite3.Connection, broken: bool) -> None:
        with self._lock:
            if not (broken or self._closed or conn.in_transaction) and len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: all SELECTs inside see one consistent state."""
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the database's write lock; committed on success."""
        with self._write_lock, self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @staticmethod
    def _version_of(conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT version FROM models WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ModelNotFound(name)
        version: int = row[0]
        return version

    def create(
        self, name: str, spec: dict[str, Any], arrays: Arrays | Encoded, reason: str = "create"
    ) -> ModelRecord:
        """Store a new model at version 1; ModelExists if the name is taken."""
        spec_text, blob, now = encode_spec(spec), encode_arrays(arrays), _now()
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM models WHERE name = ?", (name,)).fetchone():
                raise ModelExists(name)
            conn.execute(
                f"INSERT INTO models ({_MODEL_COLUMNS}) VALUES (?, ?, 1, ?, ?)",
                (name, spec_text, now, now),
            )
            conn.execute(
                "INSERT INTO versions (model, version, created_at, reason, arrays)"
                " VALUES (?, 1, ?, ?, ?)",
                (name, now, reason, blob),
            )
        self._storage_full = False  # new data stored: there is room again
        return _record((name, spec_text, 1, now, now))

    def get(self, name: str) -> ModelRecord:
        """Return the model's current record; ModelNotFound."""
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT {_MODEL_COLUMNS} FROM models WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            raise ModelNotFound(name)
        return _record(row)

    def list(self, limit: int, after: str | None = None) -> builtins.list[ModelRecord]:
        """Return at most `limit` models with names > `after` (all if None), ordered by name."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        with self._connection() as conn:
            if after is None:
                rows = conn.execute(
                    f"SELECT {_MODEL_COLUMNS} FROM models ORDER BY name LIMIT ?", (limit,)
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_MODEL_COLUMNS} FROM models WHERE name > ? ORDER BY name LIMIT ?",
                    (after, limit),
                ).fetchall()
        return [_record(row) for row in rows]

    def count(self) -> int:
        """Return the number of models."""
        with self._connection() as conn:
            (count,) = conn.execute("SELECT count(*) FROM models").fetchone()
        result: int = count
        return result

    def delete(self, name: str, expected_version: int | None = None) -> None:
        """Delete the model and all its versions; ModelNotFound, VersionConflict."""
        with self._write() as conn:
            current = self._version_of(conn, name)
            self._refuse_if_busy(_SqliteTx(conn), name)
            if expected_version is not None and expected_version != current:
                raise VersionConflict(name, expected_version, current)
            conn.execute("DELETE FROM versions WHERE model = ?", (name,))
            conn.execute("DELETE FROM models WHERE name = ?", (name,))

    def current_state(self, name: str) -> tuple[int, datetime]:
        """Return the model's current version and creation time; ModelNotFound.

        The store reads this on every request (its cache's freshness check), so it is answered
        from memory while nothing was committed since the last read: ``PRAGMA data_version``,
        on a connection kept for this alone, changes when any other connection (of this
        process or another) commits; SQLite does not count a connection's own commits, and
        this one never writes. A request that starts after a write was acknowledged sees it.
        """
        with self._watch_lock:
            try:
                if self._watch is None:
                    if self._closed:
                        raise RegistryUnavailable("registry is closed")
                    self._watch = self._open_connection()
                (seen,) = self._watch.execute("PRAGMA data_version").fetchone()
                if seen != self._seen:
                    self._states.clear()
                    self._seen = seen
                state = self._states.get(name)
                if state is None:
                    state = self._state_of(self._watch, name)
                    if len(self._states) >= _STATES:
                        self._states.clear()
                    self._states[name] = state
                return state
            except sqlite3.Error as exc:
                if self._watch is not None:
                    self._watch.close()
                    self._watch = None
                raise self._failure(exc) from exc

    @staticmethod
    def _state_of(conn: sqlite3.Connection, name: str) -> tuple[int, datetime]:
        row = conn.execute(
            "SELECT version, created_at FROM models WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise ModelNotFound(name)
        return row[0], datetime.fromisoformat(row[1])

    def snapshot(self, name: str, version: int | None = None) -> Snapshot:
        """Return the arrays of the current or a kept version; ModelNotFound, VersionNotFound."""
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_MODEL_COLUMNS} FROM models WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                raise ModelNotFound(name)
            wanted: int = row[2] if version is None else version
            found = None
            # SQLite integers are 64-bit: a version beyond them never existed (and would not
            # even bind as a parameter).
            if _MIN_INTEGER <= wanted <= _MAX_INTEGER:
                found = conn.execute(
                    "SELECT arrays FROM versions WHERE model = ? AND version = ?", (name, wanted)
                ).fetchone()
            if found is None:
                oldest, newest = conn.execute(
                    "SELECT min(version), max(version) FROM versions WHERE model = ?", (name,)
                ).fetchone()
                raise VersionNotFound(name, wanted, (oldest, newest))
        try:
            arrays = decode_arrays(found[0])
        except ValueError as exc:
            raise RegistryError(f"stored arrays of model {name!r} v{wanted}: {exc}") from exc
        return Snapshot(model=_record(row), version=wanted, arrays=arrays)

    def commit(
        self,
        name: str,
        arrays: Arrays,
        expected_version: int,
        reason: str,
        created: datetime | None = None,
    ) -> ModelRecord:
        """Compare-and-swap `arrays` in as version `expected_version + 1`; VersionConflict."""
        blob, now = encode_arrays(arrays), _now()
        new = expected_version + 1
        with self._write() as conn:
            current, created_at = self._state_of(conn, name)
            # Before the version check: a job's checkpoints would otherwise show as conflicts.
            self._refuse_if_busy(_SqliteTx(conn), name)
            if current != expected_version or (created is not None and created_at != created):
                raise VersionConflict(name, expected_version, current)
            conn.execute(
                "INSERT INTO versions (model, version, created_at, reason, arrays)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, new, now, reason, blob),
            )
            conn.execute(
                "UPDATE models SET version = ?, updated_at = ? WHERE name = ?", (new, now, name)
            )
            conn.execute(
                "DELETE FROM versions WHERE model = ? AND version <= ?",
                (name, new - self.keep_versions),
            )
            row = conn.execute(
                f"SELECT {_MODEL_COLUMNS} FROM models WHERE name = ?", (name,)
            ).fetchone()
        self._storage_full = False  # new data stored: there is room again
        return _record(row)

    def versions(self, name: str) -> builtins.list[VersionInfo]:
        """Return the kept versions, newest first; ModelNotFound."""
        with self._read() as conn:
            self._version_of(conn, name)
            rows = conn.execute(
                "SELECT version, created_at, reason FROM versions WHERE model = ?"
                " ORDER BY version DESC",
                (name,),
            ).fetchall()
        return [VersionInfo(v, datetime.fromisoformat(at), reason) for v, at, reason in rows]

    @contextmanager
    def _tx(self, write: bool) -> Iterator[Tx]:
        with self._write() if write else self._read() as conn:
            yield _SqliteTx(conn)

    def _model_timestamp(self, moment: datetime) -> Any:
        return moment.isoformat()

    def _model_record(self, row: Row) -> ModelRecord:
        return _record(row)

    def ping(self) -> None:
        """Raise RegistryUnavailable if the file is gone or cannot be queried."""
        if not self._path.exists():
            raise RegistryUnavailable(f"sqlite registry {self._path} no longer exists")
        with self._connection() as conn:
            conn.execute("SELECT 1 FROM models LIMIT 1").fetchall()

    def close(self) -> None:
        """Close idle connections now and busy ones when released; idempotent."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        with self._watch_lock:
            if self._watch is not None:
                idle.append(self._watch)
                self._watch = None
        for conn in idle:
            conn.close()
