"""PostgreSQL registry backend: a psycopg 3 connection pool, safe for many replicas at once.

A commit locks the model's row (``SELECT ... FOR UPDATE``) before comparing versions, so
compare-and-swaps from any number of processes serialise on that row. Parameters are stored
as ``bytea`` in the codec's format and specs as JSON text (jsonb would reorder keys and could
change how numbers print), so both come back exactly as stored.

Any failure to reach the server becomes RegistryUnavailable; the pool discards broken
connections and reconnects in the background, so operations succeed again once the server
is back, without restarting the process. As with any database, a connection lost while
COMMIT was in flight leaves the outcome unknown: such a commit raises RegistryUnavailable
but may have happened, and a retry of the same compare-and-swap then gets VersionConflict.
"""

from __future__ import annotations

import builtins
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from .dialects import Params, PostgresDialect, Row, Tx
from .errors import (
    InvalidRegistryURL,
    ModelNotFound,
    RegistryUnavailable,
    StorageFull,
    VersionNotFound,
)
from .migrations_pg import SchemaTooNew, migrate
from .records import Snapshot
from .sql import SqlRegistry

Connection = psycopg.Connection[TupleRow]

_DEFAULT_APPLICATION_NAME = "backprop-service"
# How long the pool retries, with backoff, to replace one lost connection before giving up
# on it. Short on purpose: after giving up, the next waiting caller starts a fresh attempt at
# once, whereas a long backoff would delay recovery after a long outage by up to half of this.
_RECONNECT_TIMEOUT = 10.0


def _secrets(url: str) -> builtins.list[str]:
    """The passwords a connection URL carries, in its userinfo or as a query parameter."""
    found: builtins.list[str] = []
    try:
        parts = urlsplit(url)
        if parts.password:
            found.append(parts.password)
        found.extend(parse_qs(parts.query).get("password", []))
    except ValueError:
        pass
    return [secret for secret in found if secret]


def _describe(params: dict[str, Any], schema: str | None) -> str:
    """A printable name of the target built from parsed parameters: never has the password."""
    user = f"{params['user']}@" if params.get("user") else ""
    host = params.get("host") or params.get("hostaddr") or ""  # empty: libpq's default
    port = f":{params['port']}" if params.get("port") else ""
    where = f"postgresql://{user}{host}{port}/{params.get('dbname', '')}"
    return f"{where} (schema {schema})" if schema else where


class _PostgresTx:
    """A transaction on a pooled connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Params = (), binary: bool = False) -> list[Row]:
        args = params if isinstance(params, Mapping) else tuple(params)
        cursor = self.conn.execute(sql, args, binary=binary)
        return cursor.fetchall() if cursor.description is not None else []


class PostgresRegistry(SqlRegistry):
    """Registry stored in a PostgreSQL database, reached through a connection pool."""

    dialect = PostgresDialect()
    inline_reads = False  # every read is a network round trip: keep it off the loop

    def __init__(
        self,
        url: str,
        keep_versions: int = 20,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 5.0,
        connect_timeout: float = 5.0,
    ) -> None:
        """Connect to the database a libpq URL names, migrate its schema and open the pool.

        `schema`, if given, is created when missing and used instead of the URL's search_path
        (which may also select one: ``?options=-csearch_path%3Dname``). The pool holds
        `min_size` to `max_size` connections; an operation waits at most `timeout` seconds
        for one. Construction retries for at most `connect_timeout` seconds, then raises
        RegistryUnavailable. Raises InvalidRegistryURL if the URL cannot be parsed.
        Messages never contain the URL's password.
        """
        super().__init__(keep_versions)
        if schema is not None and not schema:
            raise ValueError("schema must be a non-empty name or None")
        if not (timeout > 0 and connect_timeout > 0):
            raise ValueError("timeout and connect_timeout must be > 0")
        self._secrets = _secrets(url)
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise InvalidRegistryURL(self._scrub(url), self._scrub(str(exc))) from None
        if params.get("password"):
            self._secrets.append(str(params["password"]))
        self._label = _describe(params, schema)
        self._schema = schema
        self._timeout = timeout
        self._closed = False
        self._kwargs: dict[str, Any] = {}
        # URL settings win: these are only defaults.
        if "application_name" not in params:
            self._kwargs["application_name"] = _DEFAULT_APPLICATION_NAME
        if "connect_timeout" not in params:
            # libpq counts whole seconds and treats 1 as 2.
            self._kwargs["connect_timeout"] = max(2, math.ceil(connect_timeout))
        self._migrations_applied = self._migrate(url, time.monotonic() + connect_timeout)
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            url,
            kwargs=self._kwargs,
            min_size=min_size,
            max_size=max_size,
            open=False,
            configure=self._configure if schema is not None else None,
            # Costs a round trip per checkout, but a connection killed while idle (server
            # restart, failover, idle timeout) is replaced instead of failing a request.
            check=ConnectionPool.check_connection,
            timeout=timeout,
            reconnect_timeout=_RECONNECT_TIMEOUT,
            name="backprop-registry",
        )
        # current_state, read on every request (the model cache's freshness check): one
        # statement in autocommit on a small pool of its own, without the check per checkout
        # and the BEGIN and COMMIT of a transaction (one round trip instead of four); a
        # connection found broken is dropped and the read tried once more on another.
        self._reads: ConnectionPool[Connection] = ConnectionPool(
            url,
            kwargs={**self._kwargs, "autocommit": True},
            min_size=1,
            max_size=max(2, min(max_size, 4)),
            open=False,
            configure=self._configure if schema is not None else None,
            timeout=timeout,
            reconnect_timeout=_RECONNECT_TIMEOUT,
            name="backprop-registry-reads",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
            self._reads.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:  # wait() has closed the pool
            self.close()
            self._unavailable(f"pool not ready within {connect_timeout:g} s", exc)
        except BaseException:
            self.close()
            raise

    @property
    def migrations_applied(self) -> tuple[int, ...]:
        """The schema versions this instance applied when it started (empty if none)."""
        return self._migrations_applied

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _unavailable(self, detail: str, exc: BaseException | None = None) -> NoReturn:
        """Raise RegistryUnavailable naming the database, with any password removed."""
        raw = " ".join(detail.split())  # libpq's messages span lines
        message = f"postgresql registry {self._label}: {self._scrub(raw)}"
        cause = exc
        if exc is not None and any(secret in str(exc) for secret in self._secrets):
            cause = None  # a traceback would print the original message
        raise RegistryUnavailable(message) from cause

    def _configure(self, conn: Connection) -> None:
        assert self._schema is not None
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
        conn.commit()

    def _migrate(self, url: str, deadline: float) -> tuple[int, ...]:
        conn = self._connect_until(url, deadline)
        try:
            if self._schema is not None:
                self._configure(conn)
            return migrate(conn, self._schema)
        except SchemaTooNew as exc:
            self._unavailable(str(exc), exc)
        except psycopg.Error as exc:
            self._unavailable(f"migrating the schema failed: {exc}", exc)
        finally:
            conn.close()

    def _connect_until(self, url: str, deadline: float) -> Connection:
        # Retried: replicas often start together with the database, which refuses
        # connections until it has started.
        delay = 0.1
        while True:
            try:
                return psycopg.connect(url, **self._kwargs)
            except psycopg.OperationalError as exc:
                if time.monotonic() + delay >= deadline:
                    self._unavailable(f"cannot connect: {exc}", exc)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """Lend a pooled connection in a transaction, committed if the block succeeds.

        Maps the driver's errors: DataError (a value PostgreSQL refuses, such as a NUL in a
        name) to ValueError, DiskFull (SQLSTATE 53100: the transaction was rolled back) to
        StorageFull, any other to RegistryUnavailable.
        """
        with self._errors():
            if self._closed:
                self._unavailable("registry is closed")
            with self._pool.connection() as conn:
                yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """The driver's and the pool's errors as the registry's (see :meth:`_connection`)."""
        try:
            yield
        except psycopg.errors.DiskFull as exc:
            self._storage_full = True
            detail = " ".join(str(exc).split())
            raise StorageFull(f"postgresql registry {self._label}: {detail}") from exc
        except PoolClosed as exc:
            self._unavailable("registry is closed", exc)
        except PoolTimeout as exc:
            self._unavailable(f"no database connection within {self._timeout:g} s", exc)
        except psycopg.DataError as exc:
            raise ValueError(f"value rejected by PostgreSQL: {self._scrub(str(exc))}") from None
        except psycopg.Error as exc:
            self._unavailable(f"{type(exc).__name__}: {exc}", exc)

    def current_state(self, name: str) -> tuple[int, datetime]:
        """Return the model's current version and creation time; ModelNotFound."""
        with self._errors():
            if self._closed:
                self._unavailable("registry is closed")
            try:
                row = self._read_state(name)
            except psycopg.OperationalError:
                # A connection broken while idle (a restart, a failover): the pool has dropped
                # it; the others that broke with it are replaced before the read once more.
                self._reads.check()
                row = self._read_state(name)
        if row is None:
            raise ModelNotFound(name)
        return row[0], self.dialect.time(row[1])

    def _read_state(self, name: str) -> tuple[Any, ...] | None:
        with self._reads.connection() as conn:
            try:
                return conn.execute(
                    "SELECT version, created_at FROM models WHERE name = %s", (name,)
                ).fetchone()
            except psycopg.OperationalError:
                conn.close()  # the pool drops a closed connection rather than lend it again
                raise

    def snapshot(self, name: str, version: int | None = None) -> Snapshot:
        """Return the arrays of the current or a kept version; ModelNotFound, VersionNotFound."""
        # A version beyond the INTEGER column is sent as one that never exists (0) rather than
        # overflowing the query parameter.
        wanted_param = version if version is None or version in self.dialect.integers else 0
        with self._connection() as conn:
            # One statement reads one snapshot, so the record and the arrays agree. The kept
            # range is only computed on a miss. Binary results spare bytea's hex text form.
            row = conn.execute(
                "SELECT m.name, m.spec, m.version, m.created_at, m.updated_at, v.arrays,"
                " CASE WHEN v.arrays IS NULL THEN"
                "  (SELECT ARRAY[min(k.version), max(k.version)] FROM versions k"
                "   WHERE k.model = m.name) END"
                " FROM models m LEFT JOIN versions v"
                "  ON v.model = m.name AND v.version = COALESCE(%s::integer, m.version)"
                " WHERE m.name = %s",
                (wanted_param, name),
                binary=True,
            ).fetchone()
        if row is None:
            raise ModelNotFound(name)
        wanted: int = row[2] if version is None else version
        if row[5] is None:
            oldest, newest = row[6]
            raise VersionNotFound(name, wanted, (oldest, newest))
        return self._snapshot(self._model_record(row), wanted, row[5])

    @contextmanager
    def _tx(self, write: bool) -> Iterator[Tx]:
        with self._connection() as conn:
            yield _PostgresTx(conn)

    def close(self) -> None:
        """Close the pool: idle connections now, busy ones when returned; idempotent."""
        self._closed = True
        self._pool.close()
        if hasattr(self, "_reads"):  # not yet made when the first pool failed to open
            self._reads.close()
