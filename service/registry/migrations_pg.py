"""Versioned schema migrations of the PostgreSQL registry backend.

Applied versions are rows of ``schema_migrations``. Several replicas may start at once: the
one that finds work to do takes a transaction-scoped advisory lock, then re-reads the applied
versions, so each migration runs exactly once and the others wait, then find nothing to do.
PostgreSQL's DDL is transactional, so a migration that fails leaves no trace.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

# Entry i brings the schema from version i to i + 1. Append, never edit.
# COLLATE "C": names sort by code point whatever the database's locale, as in the memory and
# SQLite backends, so `list` pages the same way everywhere.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE models (
            name TEXT COLLATE "C" PRIMARY KEY,
            spec TEXT NOT NULL,
            version INTEGER NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        )""",
        """CREATE TABLE versions (
            model TEXT COLLATE "C" NOT NULL REFERENCES models(name) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            reason TEXT NOT NULL,
            arrays BYTEA NOT NULL,
            PRIMARY KEY (model, version)
        )""",
    ),
    (
        """CREATE TABLE datasets (
            name TEXT COLLATE "C" PRIMARY KEY,
            info TEXT NOT NULL,
            size_bytes BIGINT NOT NULL,
            digest TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            arrays BYTEA NOT NULL
        )""",
        """CREATE TABLE jobs (
            id TEXT COLLATE "C" PRIMARY KEY,
            model TEXT COLLATE "C" NOT NULL,
            dataset TEXT COLLATE "C",
            state TEXT NOT NULL,
            config TEXT NOT NULL,
            progress TEXT NOT NULL,
            checkpoint TEXT,
            version INTEGER NOT NULL,
            owner TEXT,
            cancel_requested INTEGER NOT NULL,
            error TEXT,
            last_event INTEGER NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            started_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            heartbeat_at DOUBLE PRECISION,
            data BYTEA
        )""",
        "CREATE UNIQUE INDEX jobs_active_model ON jobs (model)"
        " WHERE state IN ('queued', 'running')",
        "CREATE INDEX jobs_by_model ON jobs (model, id)",
        """CREATE TABLE job_events (
            job TEXT COLLATE "C" NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            data TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (job, seq)
        )""",
        """CREATE TABLE history (
            model TEXT COLLATE "C" NOT NULL REFERENCES models(name) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            job TEXT COLLATE "C" NOT NULL,
            version INTEGER NOT NULL,
            data TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (model, seq)
        )""",
    ),
    # The progress saved with a job's last checkpoint: what a job that stops short reports.
    ("ALTER TABLE jobs ADD COLUMN kept_progress TEXT",),
)

# Key of the advisory lock that serialises migrating replicas ("bpregmig" in ASCII). It is
# database-wide, so starters on different schemas of one database also queue; that is rare
# and brief.
LOCK_KEY = 0x6270_7265_676D_6967


class SchemaTooNew(Exception):
    """The database has migrations this code does not know: it was written by newer code."""

    def __init__(self, found: int) -> None:
        super().__init__(
            f"database has schema version {found}; this code knows up to {len(MIGRATIONS)}"
        )
        self.found = found


def migrate(conn: psycopg.Connection[Any], schema: str | None = None) -> tuple[int, ...]:
    """Bring the schema up to date on `conn` (not in autocommit) and commit.

    If `schema` is given it is created when missing; the tables go to the first schema of the
    connection's search_path either way. Returns the versions this call applied (empty if
    another process had applied them). Raises SchemaTooNew, or psycopg errors.
    """
    wanted = set(range(1, len(MIGRATIONS) + 1))
    # Fast path without the lock, so a started database needs no DDL rights and replicas do
    # not queue. to_regclass may answer from a stale cache; a wrong "missing" only costs us
    # the slow path.
    (table,) = _one(conn.execute("SELECT to_regclass('schema_migrations')"))
    if table is not None and _applied(conn) >= wanted:
        conn.commit()
        return ()

    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
    # Re-check under the lock. CREATE and SELECT on the table lock it, which makes the backend
    # read catalog changes committed while it waited (to_regclass would not).
    if schema is not None:
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        if exists.fetchone() is None:
            # Only when missing: CREATE SCHEMA IF NOT EXISTS needs the CREATE right anyway.
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )"""
    )
    applied = _applied(conn)
    done: list[int] = []
    for number, statements in enumerate(MIGRATIONS, start=1):
        if number in applied:
            continue
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (number,))
        done.append(number)
    conn.commit()
    return tuple(done)


def _applied(conn: psycopg.Connection[Any]) -> set[int]:
    versions = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    newest = max(versions, default=0)
    if newest > len(MIGRATIONS):
        raise SchemaTooNew(newest)
    return versions


def _one(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    row = cursor.fetchone()
    assert row is not None, "query returned no row"
    result: tuple[Any, ...] = row
    return result
