"""What the SQL of SQLite and PostgreSQL differs in, for the one SQL registry (:mod:`.sql`).

The statements are written once with ``%s`` placeholders (a SQLite transaction turns them into
``?``). The rest of the differences are here: how a read locks rows, how a model's times are
written and read, the integers a version column holds, and how a new version is written
(several statements on SQLite; one on PostgreSQL, where each is a round trip). How connections
are lent, transactions begun and driver errors mapped stays with each backend's connections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

Row = tuple[Any, ...]
Params = Sequence[Any] | Mapping[str, Any]

MODEL_COLUMNS = "name, spec, version, created_at, updated_at"


class Tx(Protocol):
    """One transaction of a backend."""

    def rows(self, sql: str, params: Params = (), binary: bool = False) -> list[Row]:
        """Run a statement with ``%s`` placeholders; its rows (none for a write)."""
        ...


class Dialect:
    """SQLite's SQL: models' times are ISO 8601 text written by this process, 64-bit integers,
    and no row locks (a write transaction holds the file's write lock)."""

    #: Appended to a SELECT that must lock the rows it reads until the transaction ends.
    for_update = ""
    #: The integers a version column can hold: a version outside them never existed.
    integers = range(-(2**63), 2**63)

    def now(self) -> tuple[str, tuple[Any, ...]]:
        """SQL for the time of a model's change, and its parameters."""
        return "%s", (datetime.now(UTC).isoformat(),)

    def time(self, stored: Any) -> datetime:
        """A model's or version's stored time as an aware UTC datetime."""
        return datetime.fromisoformat(stored)

    def write_version(
        self, tx: Tx, name: str, new: int, reason: str, blob: bytes | memoryview, oldest: int
    ) -> Row:
        """Move the model (its row is locked) to version `new` with `blob`, delete the versions
        up to `oldest`, and return the model's row (MODEL_COLUMNS)."""
        at, params = self.now()
        [row] = tx.rows(
            f"UPDATE models SET version = %s, updated_at = {at} WHERE name = %s"
            f" RETURNING {MODEL_COLUMNS}",
            (new, *params, name),
        )
        tx.rows(
            "INSERT INTO versions (model, version, created_at, reason, arrays)"
            " VALUES (%s, %s, %s, %s, %s)",
            (name, new, row[4], reason, blob),
        )
        tx.rows("DELETE FROM versions WHERE model = %s AND version <= %s", (name, oldest))
        return row


class PostgresDialect(Dialect):
    """PostgreSQL's SQL: TIMESTAMPTZ times from the server's clock, 32-bit INTEGER versions,
    row locks, and a new version written in one round trip."""

    for_update = " FOR UPDATE"
    integers = range(-(2**31), 2**31)

    def now(self) -> tuple[str, tuple[Any, ...]]:
        return "now()", ()

    def time(self, stored: Any) -> datetime:
        # psycopg returns the session's time zone; the other backends return UTC.
        moment: datetime = stored.astimezone(UTC)
        return moment

    def write_version(
        self, tx: Tx, name: str, new: int, reason: str, blob: bytes | memoryview, oldest: int
    ) -> Row:
        # One round trip for the writes. clock_timestamp(), read after the row lock, keeps
        # updated_at increasing in commit order (now() is when the transaction began).
        # The DELETE cannot see the INSERT's row (one snapshot), and need not: it is newer.
        [row] = tx.rows(
            f"""WITH updated AS (
                UPDATE models SET version = %(new)s, updated_at = clock_timestamp()
                WHERE name = %(name)s RETURNING {MODEL_COLUMNS}
            ), inserted AS (
                INSERT INTO versions (model, version, created_at, reason, arrays)
                SELECT name, version, updated_at, %(reason)s, %(arrays)b FROM updated
            ), pruned AS (
                DELETE FROM versions WHERE model = %(name)s AND version <= %(oldest)s
            )
            SELECT {MODEL_COLUMNS} FROM updated""",
            {"new": new, "name": name, "reason": reason, "arrays": blob, "oldest": oldest},
        )
        return row
