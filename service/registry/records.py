"""The records the registry stores and returns: models, versions, datasets, jobs, events.

Plain frozen dataclasses and the names of a job's states; no storage and no behaviour, so
that the interfaces (:mod:`.base`, :mod:`.jobs`), the state machine (:mod:`.transitions`) and
the backends all import them from here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, overload

from numpy.typing import NDArray

Arrays = Mapping[str, NDArray[Any]]
StorageState = Literal["ok", "full"]
JSONObject = dict[str, Any]

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
ACTIVE: tuple[JobState, ...] = ("queued", "running")
ENDED: tuple[JobState, ...] = ("succeeded", "failed", "cancelled")
RESUMABLE: tuple[JobState, ...] = ("interrupted", "cancelled")
EventKind = Literal["state", "progress", "end"]


@dataclass(frozen=True)
class ModelRecord:
    """A stored model as of its current version; `spec` is a fresh copy owned by the caller."""

    name: str
    spec: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class VersionInfo:
    """One kept version of a model's arrays."""

    version: int
    created_at: datetime
    reason: str


@dataclass(frozen=True)
class Snapshot:
    """The arrays of one version, read consistently with the model's current record."""

    model: ModelRecord
    version: int
    arrays: dict[str, NDArray[Any]]


@dataclass(frozen=True)
class DatasetRecord:
    """A stored dataset; ``info`` (rows, columns, dtype, source) belongs to the jobs package."""

    name: str
    info: JSONObject
    size_bytes: int
    digest: str  # sha256 of the stored bundle: a job notices a dataset replaced under it
    created_at: datetime


@dataclass(frozen=True)
class NewJob:
    """A job to store (:meth:`~service.registry.jobs.JobStorage.create_job`): ``id``, the
    ``model`` it trains, the stored ``dataset`` it trains on or its own arrays ``data`` (inline
    training data), its ``config`` and first ``progress``, and the replica that ``owner``s it."""

    id: str
    model: str
    dataset: str | None
    config: JSONObject
    owner: str
    progress: JSONObject
    data: Arrays | None = None


@dataclass(frozen=True)
class Checkpoint:
    """What a job's checkpoint commits in one transaction
    (:meth:`~service.registry.jobs.JobStorage.checkpoint`): ``arrays`` as the model's next
    version, made for ``reason``; the job's ``progress`` (shown, and kept with this checkpoint)
    and ``position`` (where a resumed run continues: the job's ``checkpoint``); with
    ``history``, an entry of the model's training history."""

    arrays: Arrays
    reason: str
    progress: JSONObject
    position: JSONObject
    history: JSONObject | None = None


@dataclass(frozen=True)
class JobRecord:
    """A training job as stored.

    ``version`` is the model version the job last left the model at: the version it started
    from, then that of its latest checkpoint. ``checkpoint`` is the position saved with that
    version (None before the first). ``last_event`` is the number of the job's latest event.
    """

    id: str
    model: str
    dataset: str | None
    state: JobState
    config: JSONObject
    progress: JSONObject
    checkpoint: JSONObject | None
    version: int
    owner: str | None
    cancel_requested: bool
    error: str | None
    last_event: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None


@dataclass(frozen=True)
class JobEvent:
    """Event ``seq`` of a job: ``kind`` and a snapshot of the job (:func:`event_data`)."""

    seq: int
    kind: EventKind
    data: JSONObject
    created_at: datetime


@dataclass(frozen=True)
class HistoryEntry:
    """One epoch of training of a model: the version it produced and its ``data`` (losses)."""

    model: str
    seq: int
    job: str
    version: int
    data: JSONObject
    created_at: datetime


def event_data(job: JobRecord) -> JSONObject:
    """The data of an event: the job's state, version, error and progress after the change."""
    data: JSONObject = {"job": job.id, "state": job.state, "version": job.version}
    data.update(job.progress)
    if job.error is not None:
        data["error"] = job.error
    return data


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


@overload
def timestamp(seconds: float) -> datetime: ...
@overload
def timestamp(seconds: float | None) -> datetime | None: ...
def timestamp(seconds: float | None) -> datetime | None:
    """A stored time (seconds since the epoch) as an aware UTC datetime (None stays None)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
