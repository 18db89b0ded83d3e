"""SQLite registry backend: one database file, safe to share between threads and processes.

Every write runs in a ``BEGIN IMMEDIATE`` transaction, which takes the file's write lock
before reading, so a compare-and-swap cannot interleave with a writer in another process.
WAL mode lets readers proceed while a write is in progress.
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from .dialects import Dialect, Params, Row, Tx
from .errors import (
    RegistryUnavailable,
    StorageFull,
)
from .sql import SqlRegistry

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


class _SqliteTx:
    """A transaction on a SQLite connection, taking ``%s`` placeholders."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Params = (), binary: bool = False) -> list[Row]:
        return self.conn.execute(sql.replace("%s", "?"), tuple(params)).fetchall()


class SqliteRegistry(SqlRegistry):
    """Registry stored in one SQLite file (WAL mode, synchronous=FULL)."""

    dialect = Dialect()

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
                    # SQLite locks no rows: this is a plain read
                    state = self._lock_state(_SqliteTx(self._watch), name)
                    if len(self._states) >= _STATES:
                        self._states.clear()
                    self._states[name] = state
                return state
            except sqlite3.Error as exc:
                if self._watch is not None:
                    self._watch.close()
                    self._watch = None
                raise self._failure(exc) from exc

    @contextmanager
    def _tx(self, write: bool) -> Iterator[Tx]:
        with self._write() if write else self._read() as conn:
            yield _SqliteTx(conn)

    @contextmanager
    def _statement(self) -> Iterator[Tx]:
        with self._connection() as conn:  # a statement alone needs no BEGIN
            yield _SqliteTx(conn)

    def ping(self) -> None:
        """Raise RegistryUnavailable if the file is gone or cannot be queried."""
        if not self._path.exists():
            raise RegistryUnavailable(f"sqlite registry {self._path} no longer exists")
        super().ping()

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
