"""The one SQL registry: models and versions in SQLite or PostgreSQL, and (its ``jobs``, a
:class:`~.jobs_sql.SqlJobs` on the same transactions) datasets and jobs.

A backend supplies its connections (:meth:`SqlRegistry._tx`, with the driver's errors mapped
to the registry's) and its :class:`~.dialects.Dialect`; it may answer a read its own quicker
way (both do for ``current_state``, PostgreSQL for ``snapshot``). Every write that compares a
model's version first locks the model's row (PostgreSQL; SQLite's write transaction holds the
file's lock), so compare-and-swaps from any number of processes serialise.

Tables (created by the backends' migrations)::

    models   (name PK, spec, version, created_at, updated_at)
    versions (model -> models ON DELETE CASCADE, version, created_at, reason, arrays)
"""

from __future__ import annotations

import builtins
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, ClassVar

from .base import Registry
from .codec import Encoded, decode_arrays, decode_spec, encode_arrays, encode_spec
from .dialects import MODEL_COLUMNS, Dialect, Params, Row, Tx
from .errors import (
    ModelExists,
    ModelNotFound,
    RegistryError,
    VersionConflict,
    VersionNotFound,
)
from .jobs_sql import SqlJobs
from .records import Arrays, ModelRecord, Snapshot, VersionInfo


class SqlRegistry(Registry):
    """Models and versions in a SQL database, and its job store there (see module doc)."""

    dialect: ClassVar[Dialect]
    jobs: SqlJobs

    def __init__(self, keep_versions: int = 20) -> None:
        super().__init__(keep_versions)
        self.jobs = SqlJobs(self)

    @abstractmethod
    def _tx(self, write: bool) -> AbstractContextManager[Tx]:
        """A transaction (a write one takes the locks a compare-and-swap needs), committed if
        the block succeeds; driver errors mapped."""

    @contextmanager
    def _statement(self) -> Iterator[Tx]:
        """Where one statement runs that needs no transaction of its own."""
        with self._tx(write=False) as tx:
            yield tx

    def _query(self, sql: str, params: Params = ()) -> list[Row]:
        with self._statement() as tx:
            return tx.rows(sql, params)

    def _model_record(self, row: Row) -> ModelRecord:
        name, spec, version, created_at, updated_at = row[:5]
        return ModelRecord(
            name=name,
            spec=decode_spec(spec),
            version=version,
            created_at=self.dialect.time(created_at),
            updated_at=self.dialect.time(updated_at),
        )

    def _lock_state(self, tx: Tx, name: str) -> tuple[int, datetime]:
        # The row lock serialises every writer of this model, in any process, until commit.
        rows = tx.rows(
            f"SELECT version, created_at FROM models WHERE name = %s{self.dialect.for_update}",
            (name,),
        )
        if not rows:
            raise ModelNotFound(name)
        return rows[0][0], self.dialect.time(rows[0][1])

    def _lock_model(self, tx: Tx, name: str) -> int:
        return self._lock_state(tx, name)[0]

    def _swap(
        self,
        tx: Tx,
        name: str,
        blob: bytes | memoryview,
        expected_version: int,
        reason: str,
        created: datetime | None = None,
        job: bool = False,
    ) -> ModelRecord:
        """The compare-and-swap of ``commit`` (and of a `job`'s checkpoint, which the model's
        active job does not refuse), inside `tx`, on an encoded bundle."""
        current, created_at = self._lock_state(tx, name)
        if not job:
            # Before the version check: a job's checkpoints would otherwise show as conflicts.
            self.jobs.refuse_if_busy(tx, name)
        if current != expected_version or (created is not None and created_at != created):
            raise VersionConflict(name, expected_version, current)
        new = expected_version + 1
        row = self.dialect.write_version(tx, name, new, reason, blob, new - self.keep_versions)
        return self._model_record(row)

    def create(
        self, name: str, spec: dict[str, Any], arrays: Arrays | Encoded, reason: str = "create"
    ) -> ModelRecord:
        """Store a new model at version 1; ModelExists if the name is taken."""
        spec_text, blob = encode_spec(spec), encode_arrays(arrays)
        at, params = self.dialect.now()
        with self._tx(write=True) as tx:
            # ON CONFLICT is the unique violation without an aborted transaction: a concurrent
            # creator of the same name is waited for, then this insert does nothing.
            rows = tx.rows(
                f"INSERT INTO models ({MODEL_COLUMNS}) VALUES (%s, %s, 1, {at}, {at})"
                f" ON CONFLICT (name) DO NOTHING RETURNING {MODEL_COLUMNS}",
                (name, spec_text, *params, *params),
            )
            if not rows:
                raise ModelExists(name)
            tx.rows(
                "INSERT INTO versions (model, version, created_at, reason, arrays)"
                " VALUES (%s, 1, %s, %s, %s)",
                (name, rows[0][3], reason, blob),
            )
        self._stored()
        return self._model_record(rows[0])

    def get(self, name: str) -> ModelRecord:
        """Return the model's current record; ModelNotFound."""
        rows = self._query(f"SELECT {MODEL_COLUMNS} FROM models WHERE name = %s", (name,))
        if not rows:
            raise ModelNotFound(name)
        return self._model_record(rows[0])

    def list(self, limit: int, after: str | None = None) -> builtins.list[ModelRecord]:
        """Return at most `limit` models with names > `after` (all if None), ordered by name."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        where, params = ("WHERE name > %s ", [after]) if after is not None else ("", [])
        rows = self._query(
            f"SELECT {MODEL_COLUMNS} FROM models {where}ORDER BY name LIMIT %s", (*params, limit)
        )
        return [self._model_record(row) for row in rows]

    def count(self) -> int:
        """Return the number of models."""
        count: int = self._query("SELECT count(*) FROM models")[0][0]
        return count

    def delete(self, name: str, expected_version: int | None = None) -> None:
        """Delete the model and all its versions; ModelNotFound, VersionConflict."""
        with self._tx(write=True) as tx:
            current = self._lock_model(tx, name)
            self.jobs.refuse_if_busy(tx, name)
            if expected_version is not None and expected_version != current:
                raise VersionConflict(name, expected_version, current)
            tx.rows("DELETE FROM versions WHERE model = %s", (name,))
            tx.rows("DELETE FROM models WHERE name = %s", (name,))  # cascades to history

    def snapshot(self, name: str, version: int | None = None) -> Snapshot:
        """Return the arrays of the current or a kept version; ModelNotFound, VersionNotFound."""
        with self._tx(write=False) as tx:
            rows = tx.rows(f"SELECT {MODEL_COLUMNS} FROM models WHERE name = %s", (name,))
            if not rows:
                raise ModelNotFound(name)
            wanted: int = rows[0][2] if version is None else version
            found = []
            # A version beyond the column's integers never existed (and would not even bind
            # as a parameter).
            if wanted in self.dialect.integers:
                found = tx.rows(
                    "SELECT arrays FROM versions WHERE model = %s AND version = %s",
                    (name, wanted),
                    binary=True,
                )
            if not found:
                [(oldest, newest)] = tx.rows(
                    "SELECT min(version), max(version) FROM versions WHERE model = %s", (name,)
                )
                raise VersionNotFound(name, wanted, (oldest, newest))
        return self._snapshot(self._model_record(rows[0]), wanted, found[0][0])

    @staticmethod
    def _snapshot(model: ModelRecord, version: int, blob: bytes) -> Snapshot:
        try:
            arrays = decode_arrays(blob)
        except ValueError as exc:
            raise RegistryError(f"stored arrays of model {model.name!r} v{version}: {exc}") from exc
        return Snapshot(model=model, version=version, arrays=arrays)

    def commit(
        self,
        name: str,
        arrays: Arrays,
        expected_version: int,
        reason: str,
        created: datetime | None = None,
    ) -> ModelRecord:
        """Compare-and-swap `arrays` in as version `expected_version + 1`; VersionConflict."""
        blob = encode_arrays(arrays)
        with self._tx(write=True) as tx:
            record = self._swap(tx, name, blob, expected_version, reason, created)
        self._stored()
        return record

    def versions(self, name: str) -> builtins.list[VersionInfo]:
        """Return the kept versions, newest first; ModelNotFound."""
        with self._tx(write=False) as tx:
            rows = tx.rows(
                "SELECT v.version, v.created_at, v.reason FROM models m"
                " LEFT JOIN versions v ON v.model = m.name"
                " WHERE m.name = %s ORDER BY v.version DESC",
                (name,),
            )
        if not rows:
            raise ModelNotFound(name)
        return [
            VersionInfo(v, self.dialect.time(at), reason) for v, at, reason in rows if v is not None
        ]

    def ping(self) -> None:
        """Raise RegistryUnavailable unless the database answers and has the registry tables."""
        self._query("SELECT 1 FROM models LIMIT 1")
