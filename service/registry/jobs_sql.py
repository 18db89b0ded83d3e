"""Datasets and jobs in SQL, shared by the SQLite and PostgreSQL backends.

The statements are written once, with ``%s`` placeholders (the SQLite backend's transaction
turns them into ``?``). Times are seconds since the epoch (REAL / DOUBLE PRECISION), JSON
objects are text, arrays the codec's bundles. Every transaction that touches both a model and
its job locks the model's row first (PostgreSQL), so two of them cannot deadlock; SQLite
serialises writers on the file.

Tables (created by the backends' migrations)::

    datasets   (name PK, info, size_bytes, digest, created_at, arrays)
    jobs       (id PK, model, dataset, state, config, progress, checkpoint, version, owner,
                cancel_requested, error, last_event, created_at, updated_at, started_at,
                finished_at, heartbeat_at, data, kept_progress)
                -- unique index: one active job per model
    job_events (job, seq, kind, data, created_at)           PK (job, seq)
    history    (model -> models ON DELETE CASCADE, seq, job, version, data, created_at)
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, cast

from numpy.typing import NDArray

from . import transitions
from .codec import decode_arrays, decode_spec, encode_arrays, encode_spec
from .dialects import Dialect, Params, Row, Tx
from .errors import (
    DatasetExists,
    DatasetInUse,
    DatasetNotFound,
    JobNotFound,
    ModelNotFound,
    RegistryError,
)
from .jobs import JobStorage
from .records import (
    Arrays,
    Checkpoint,
    DatasetRecord,
    HistoryEntry,
    JobEvent,
    JobRecord,
    JobState,
    JSONObject,
    ModelRecord,
    NewJob,
    digest,
    event_data,
    timestamp,
)

ACTIVE_SQL = "('queued', 'running')"
JOB_COLUMNS = (
    "id, model, dataset, state, config, progress, checkpoint, version, owner, cancel_requested,"
    " error, last_event, created_at, updated_at, started_at, finished_at, heartbeat_at"
)
DATASET_COLUMNS = "name, info, size_bytes, digest, created_at"


def _job(row: Row) -> JobRecord:
    return JobRecord(
        id=row[0],
        model=row[1],
        dataset=row[2],
        state=cast(JobState, row[3]),
        config=decode_spec(row[4]),
        progress=decode_spec(row[5]),
        checkpoint=None if row[6] is None else decode_spec(row[6]),
        version=row[7],
        owner=row[8],
        cancel_requested=bool(row[9]),
        error=row[10],
        last_event=row[11],
        created_at=timestamp(row[12]),
        updated_at=timestamp(row[13]),
        started_at=timestamp(row[14]),
        finished_at=timestamp(row[15]),
        heartbeat_at=timestamp(row[16]),
    )


def _given(conditions: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
    """The conditions (SQL with one ``%s``) whose parameter is given (not None), and those
    parameters."""
    given = {sql: value for sql, value in conditions.items() if value is not None}
    return list(given), list(given.values())


def _dataset(row: Row) -> DatasetRecord:
    return DatasetRecord(row[0], decode_spec(row[1]), row[2], row[3], timestamp(row[4]))


class _Models(Protocol):
    """What the job store uses of its registry (a SqlRegistry): its dialect, transactions,
    the lock of a model's row, the compare-and-swap of a model's version inside a transaction
    (a job's: one the model's active job does not refuse), and the storage-full flag."""

    @property
    def dialect(self) -> Dialect: ...
    def _tx(self, write: bool) -> AbstractContextManager[Tx]: ...
    def _lock_model(self, tx: Tx, name: str) -> int: ...
    def _swap(
        self, tx: Tx, name: str, blob: bytes, expected_version: int, reason: str, /, *, job: bool
    ) -> ModelRecord: ...
    def _stored(self) -> None: ...


class SqlJobs(JobStorage):
    """The job storage of a :class:`~service.registry.sql.SqlRegistry`, in its transactions."""

    def __init__(self, models: _Models) -> None:
        self._models = models

    @property
    def dialect(self) -> Dialect:
        return self._models.dialect

    def _tx(self, write: bool) -> AbstractContextManager[Tx]:
        return self._models._tx(write)

    # -- helpers ------------------------------------------------------------------------------

    def _active_job(self, tx: Tx, model: str) -> str | None:
        rows = tx.rows(f"SELECT id FROM jobs WHERE model = %s AND state IN {ACTIVE_SQL}", (model,))
        return rows[0][0] if rows else None

    def refuse_if_busy(self, tx: Tx, model: str) -> None:
        """ModelBusy if a job is active on `model`."""
        transitions.refuse_if_busy(model, self._active_job(tx, model))

    def _read_job(self, tx: Tx, job_id: str, lock: bool = False) -> JobRecord:
        suffix = self.dialect.for_update if lock else ""
        rows = tx.rows(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s{suffix}", (job_id,))
        if not rows:
            raise JobNotFound(job_id)
        return _job(rows[0])

    def _apply(self, tx: Tx, job_id: str, change: transitions.Change, now: float) -> JobRecord:
        """Store a transition's change (its field names are ours, never a caller's) and
        append its event."""
        # Flags are INTEGER columns: PostgreSQL takes no bool for them.
        sets = {k: int(v) if isinstance(v, bool) else v for k, v in change.fields.items()}
        kind = change.event
        assignments = [f"{column} = %s" for column in sets]
        assignments.append("updated_at = %s")
        if kind is not None:
            assignments.append("last_event = last_event + 1")
        tx.rows(
            f"UPDATE jobs SET {', '.join(assignments)} WHERE id = %s",
            (*sets.values(), now, job_id),
        )
        job = self._read_job(tx, job_id)
        if kind is not None:
            tx.rows(
                "INSERT INTO job_events (job, seq, kind, data, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (job_id, job.last_event, kind, encode_spec(event_data(job)), now),
            )
        return job

    # -- datasets -----------------------------------------------------------------------------

    def create_dataset(self, name: str, info: JSONObject, arrays: Arrays) -> DatasetRecord:
        """Store a dataset; DatasetExists."""
        info_text, blob, now = encode_spec(info), encode_arrays(arrays), time.time()
        with self._tx(write=True) as tx:
            if tx.rows(f"SELECT 1 FROM datasets WHERE name = %s{self.dialect.for_update}", (name,)):
                raise DatasetExists(name)
            tx.rows(
                f"INSERT INTO datasets ({DATASET_COLUMNS}, arrays) VALUES (%s, %s, %s, %s, %s, %s)",
                (name, info_text, len(blob), digest(blob), now, blob),
            )
        self._models._stored()
        return _dataset((name, info_text, len(blob), digest(blob), now))

    def get_dataset(self, name: str) -> DatasetRecord:
        """Return the dataset's record; DatasetNotFound."""
        with self._tx(write=False) as tx:
            rows = tx.rows(f"SELECT {DATASET_COLUMNS} FROM datasets WHERE name = %s", (name,))
        if not rows:
            raise DatasetNotFound(name)
        return _dataset(rows[0])

    def dataset_arrays(self, name: str) -> tuple[DatasetRecord, dict[str, NDArray[Any]]]:
        """Return the dataset's record and arrays; DatasetNotFound."""
        with self._tx(write=False) as tx:
            rows = tx.rows(
                f"SELECT {DATASET_COLUMNS}, arrays FROM datasets WHERE name = %s",
                (name,),
                binary=True,
            )
        if not rows:
            raise DatasetNotFound(name)
        try:
            arrays = decode_arrays(rows[0][5])
        except ValueError as exc:
            raise RegistryError(f"stored arrays of dataset {name!r}: {exc}") from exc
        return _dataset(rows[0]), arrays

    def list_datasets(self, limit: int, after: str | None = None) -> builtins.list[DatasetRecord]:
        """Return at most `limit` datasets with names > `after`, ordered by name."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        where, params = ("WHERE name > %s ", [after]) if after is not None else ("", [])
        with self._tx(write=False) as tx:
            rows = tx.rows(
                f"SELECT {DATASET_COLUMNS} FROM datasets {where}ORDER BY name LIMIT %s",
                (*params, limit),
            )
        return [_dataset(row) for row in rows]

    def count_datasets(self) -> int:
        """Return the number of datasets."""
        with self._tx(write=False) as tx:
            count: int = tx.rows("SELECT count(*) FROM datasets")[0][0]
        return count

    def delete_dataset(self, name: str) -> None:
        """Delete a dataset; DatasetNotFound, DatasetInUse."""
        with self._tx(write=True) as tx:
            lock = self.dialect.for_update
            if not tx.rows(f"SELECT 1 FROM datasets WHERE name = %s{lock}", (name,)):
                raise DatasetNotFound(name)
            users = tx.rows(
                f"SELECT id FROM jobs WHERE dataset = %s AND state IN {ACTIVE_SQL}", (name,)
            )
            if users:
                raise DatasetInUse(name, users[0][0])
            tx.rows("DELETE FROM datasets WHERE name = %s", (name,))

    # -- jobs ---------------------------------------------------------------------------------

    def create_job(self, job: NewJob) -> JobRecord:
        """Store a new queued job; ModelNotFound, ModelBusy."""
        stored = transitions.encoded(job)
        now = time.time()
        with self._tx(write=True) as tx:
            version = self._models._lock_model(tx, job.model)
            self.refuse_if_busy(tx, job.model)
            if tx.rows("SELECT 1 FROM jobs WHERE id = %s", (job.id,)):
                raise ValueError(f"job id {job.id!r} is taken")
            new = transitions.new_job(job, stored, version, now)
            columns = {**new.fields, "updated_at": now, "last_event": 0}
            values = [int(v) if isinstance(v, bool) else v for v in columns.values()]
            tx.rows(
                f"INSERT INTO jobs ({', '.join(columns)})"
                f" VALUES ({', '.join(['%s'] * len(columns))})",
                values,
            )
            record = self._apply(tx, job.id, transitions.Change({}, new.event), now)
        self._models._stored()
        return record

    def active_job(self, model: str) -> str | None:
        """The id of the model's queued or running job, if any."""
        with self._tx(write=False) as tx:
            rows = tx.rows(
                f"SELECT id FROM jobs WHERE model = %s AND state IN {ACTIVE_SQL}", (model,)
            )
        return rows[0][0] if rows else None

    def get_job(self, job_id: str) -> JobRecord:
        """Return the job; JobNotFound."""
        with self._tx(write=False) as tx:
            return self._read_job(tx, job_id)

    def list_jobs(
        self, limit: int, before: str | None = None, model: str | None = None
    ) -> builtins.list[JobRecord]:
        """Return at most `limit` jobs with ids < `before`, newest first."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        conditions, params = _given({"id < %s": before, "model = %s": model})
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        with self._tx(write=False) as tx:
            rows = tx.rows(
                f"SELECT {JOB_COLUMNS} FROM jobs {where}ORDER BY id DESC LIMIT %s",
                (*params, limit),
            )
        return [_job(row) for row in rows]

    def count_jobs(self, model: str | None = None) -> int:
        """Return the number of jobs (of `model` if given)."""
        with self._tx(write=False) as tx:
            if model is None:
                rows = tx.rows("SELECT count(*) FROM jobs")
            else:
                rows = tx.rows("SELECT count(*) FROM jobs WHERE model = %s", (model,))
        count: int = rows[0][0]
        return count

    def count_jobs_by_state(self) -> dict[JobState, int]:
        """Return the number of jobs in each state (states with no job left out)."""
        with self._tx(write=False) as tx:
            rows = tx.rows("SELECT state, count(*) FROM jobs GROUP BY state")
        return {cast(JobState, state): int(n) for state, n in rows}

    def job_data(self, job_id: str) -> dict[str, NDArray[Any]] | None:
        """Return the job's own arrays or None; JobNotFound."""
        with self._tx(write=False) as tx:
            rows = tx.rows("SELECT data FROM jobs WHERE id = %s", (job_id,), binary=True)
        if not rows:
            raise JobNotFound(job_id)
        return None if rows[0][0] is None else decode_arrays(rows[0][0])

    def start_job(self, job_id: str, owner: str) -> JobRecord:
        """queued -> running; JobStateConflict, JobLost."""
        now = time.time()
        with self._tx(write=True) as tx:
            job = self._read_job(tx, job_id, lock=True)
            return self._apply(tx, job_id, transitions.start(job, owner, now), now)

    def checkpoint(
        self, job_id: str, owner: str, point: Checkpoint
    ) -> tuple[JobRecord, ModelRecord]:
        """Commit the next model version and the job's position together."""
        blob = encode_arrays(point.arrays)
        progress_text, position_text = encode_spec(point.progress), encode_spec(point.position)
        history_text = None if point.history is None else encode_spec(point.history)
        with self._tx(write=True) as tx:
            # The job's owner first, as the memory backend checks it (a job that ended is lost
            # to its owner also once its model is gone); then the model's row is locked before
            # the job's, and the job read again.
            job = self._read_job(tx, job_id)
            transitions.check_owner(job, owner)
            self._models._lock_model(tx, job.model)
            job = self._read_job(tx, job_id, lock=True)
            transitions.check_owner(job, owner)
            record = self._models._swap(tx, job.model, blob, job.version, point.reason, job=True)
            now = time.time()
            if history_text is not None:
                (seq,) = tx.rows(
                    "SELECT coalesce(max(seq), 0) + 1 FROM history WHERE model = %s",
                    (job.model,),
                )[0]
                tx.rows(
                    "INSERT INTO history (model, seq, job, version, data, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (job.model, seq, job_id, record.version, history_text, now),
                )
            change = transitions.checkpoint(
                job, owner, record.version, progress_text, position_text, now
            )
            job = self._apply(tx, job_id, change, now)
        self._models._stored()
        return job, record

    def finish_job(
        self, job_id: str, owner: str, state: JobState, progress: JSONObject, error: str | None
    ) -> JobRecord:
        """running -> succeeded, failed, cancelled or interrupted; JobLost."""
        transitions.check_final(state)
        progress_text, now = encode_spec(progress), time.time()
        with self._tx(write=True) as tx:
            job = self._read_job(tx, job_id, lock=True)
            change = transitions.finish(job, owner, state, progress_text, error, now)
            return self._apply(tx, job_id, change, now)

    def cancel_job(self, job_id: str) -> JobRecord:
        """Cancel now (queued, interrupted) or at the next step (running)."""
        now = time.time()
        with self._tx(write=True) as tx:
            job = self._read_job(tx, job_id, lock=True)
            change = transitions.cancel(job, now)
            return job if change is None else self._apply(tx, job_id, change, now)

    def resume_job(self, job_id: str, owner: str) -> JobRecord:
        """interrupted or cancelled -> queued; JobStateConflict, ModelBusy, ModelChanged."""
        now = time.time()
        with self._tx(write=True) as tx:
            # The job's state first, as the memory backend checks it (409 before the model's
            # 404); then the model's row is locked before the job's, and the state read again.
            job = self._read_job(tx, job_id)
            transitions.check_resumable(job)
            current = self._models._lock_model(tx, job.model)
            job = self._read_job(tx, job_id, lock=True)
            active = self._active_job(tx, job.model)
            change = transitions.resume(job, owner, current, active, now)
            return self._apply(tx, job_id, change, now)

    def interrupt_jobs(
        self, *, owner: str | None = None, stale_before: datetime | None = None
    ) -> builtins.list[JobRecord]:
        """Mark the active jobs of `owner`, or with a stale heartbeat, interrupted."""
        stale = None if stale_before is None else stale_before.timestamp()
        conditions, params = _given({"owner = %s": owner, "coalesce(heartbeat_at, 0) < %s": stale})
        if not conditions:
            return []
        return self._change_active(
            " OR ".join(conditions),
            params,
            lambda row, now: transitions.interrupt(bool(row[1]), row[2], now),
        )

    def heartbeat(self, owner: str, progress: Mapping[str, JSONObject]) -> builtins.list[JobRecord]:
        """Refresh the heartbeat (and live progress) of `owner`'s active jobs."""
        texts = {job_id: encode_spec(p) for job_id, p in progress.items()}
        return self._change_active(
            "owner = %s", (owner,), lambda row, now: transitions.heartbeat(texts.get(row[0]), now)
        )

    def _change_active(
        self, condition: str, params: Params, change: Callable[[Row, float], transitions.Change]
    ) -> builtins.list[JobRecord]:
        """In one transaction, lock the active jobs that meet `condition`, in id order, and
        store in each the `change` made of its row (id, cancel_requested, kept_progress)."""
        now = time.time()
        out: builtins.list[JobRecord] = []
        with self._tx(write=True) as tx:
            rows = tx.rows(
                f"SELECT id, cancel_requested, kept_progress FROM jobs WHERE state IN {ACTIVE_SQL}"
                f" AND ({condition}) ORDER BY id{self.dialect.for_update}",
                params,
            )
            for row in rows:
                out.append(self._apply(tx, row[0], change(row, now), now))
        return out

    def job_events(self, job_id: str, after: int = 0) -> builtins.list[JobEvent]:
        """Return the job's events numbered above `after`."""
        with self._tx(write=False) as tx:
            if not tx.rows("SELECT 1 FROM jobs WHERE id = %s", (job_id,)):
                raise JobNotFound(job_id)
            rows = tx.rows(
                "SELECT seq, kind, data, created_at FROM job_events WHERE job = %s AND seq > %s"
                " ORDER BY seq",
                (job_id, after),
            )
        return [
            JobEvent(seq, kind, decode_spec(data), timestamp(at)) for seq, kind, data, at in rows
        ]

    def history(
        self, model: str, limit: int, after: int | None = None
    ) -> builtins.list[HistoryEntry]:
        """Return at most `limit` entries of the model's history numbered above `after`."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        with self._tx(write=False) as tx:
            if not tx.rows("SELECT 1 FROM models WHERE name = %s", (model,)):
                raise ModelNotFound(model)
            rows = tx.rows(
                "SELECT model, seq, job, version, data, created_at FROM history"
                " WHERE model = %s AND seq > %s ORDER BY seq LIMIT %s",
                (model, after or 0, limit),
            )
        return [
            HistoryEntry(name, seq, job, version, decode_spec(data), timestamp(at))
            for name, seq, job, version, data, at in rows
        ]
