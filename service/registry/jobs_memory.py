"""Datasets and jobs of the in-process registry: dicts under the registry's one lock.

JSON fields are kept as text and arrays as encoded bundles, as the persistent backends keep
them, so that what goes in is checked the same way and what comes out is a fresh copy.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from numpy.typing import NDArray

from . import transitions
from .codec import decode_arrays, decode_spec, encode_arrays, encode_spec
from .errors import DatasetExists, DatasetInUse, DatasetNotFound, JobNotFound
from .jobs import JobStorage
from .records import (
    ACTIVE,
    Arrays,
    Checkpoint,
    DatasetRecord,
    EventKind,
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


@dataclass
class _Dataset:
    record: DatasetRecord
    info: str
    blob: bytes


@dataclass
class _Job:
    id: str
    model: str
    dataset: str | None
    state: JobState
    config: str
    progress: str
    checkpoint: str | None
    version: int
    owner: str | None
    error: str | None
    created_at: float
    updated_at: float
    heartbeat_at: float | None
    data: bytes | None
    kept_progress: str  # the progress saved with the last checkpoint (at creation before it)
    cancel_requested: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    events: list[tuple[EventKind, str, float]] = field(default_factory=list)

    def record(self) -> JobRecord:
        return JobRecord(
            id=self.id,
            model=self.model,
            dataset=self.dataset,
            state=self.state,
            config=decode_spec(self.config),
            progress=decode_spec(self.progress),
            checkpoint=None if self.checkpoint is None else decode_spec(self.checkpoint),
            version=self.version,
            owner=self.owner,
            cancel_requested=self.cancel_requested,
            error=self.error,
            last_event=len(self.events),
            created_at=timestamp(self.created_at),
            updated_at=timestamp(self.updated_at),
            started_at=timestamp(self.started_at),
            finished_at=timestamp(self.finished_at),
            heartbeat_at=timestamp(self.heartbeat_at),
        )

    def event(self, kind: EventKind, now: float) -> None:
        # The event's data is the job after the change: build the record with it counted.
        self.events.append((kind, "", now))
        self.events[-1] = (kind, encode_spec(event_data(self.record())), now)


class _Models(Protocol):
    """What the job store uses of its registry (a MemoryRegistry): its lock, and under it
    whether it is open, a model's version and the compare-and-swap of its next version."""

    _lock: threading.Lock

    def _check_open(self) -> None: ...
    def _model_version(self, name: str) -> int: ...
    def _commit_locked(
        self, name: str, blob: bytes, expected_version: int, reason: str
    ) -> ModelRecord: ...


class MemoryJobs(JobStorage):
    """The job storage of a :class:`~service.registry.memory.MemoryRegistry`: dicts under the
    registry's lock."""

    def __init__(self, models: _Models) -> None:
        self._models = models
        self._lock = models._lock  # one lock: a checkpoint changes a model and a job at once
        self._datasets: dict[str, _Dataset] = {}
        self._jobs: dict[str, _Job] = {}
        self._history: dict[str, list[HistoryEntry]] = {}

    def clear(self) -> None:
        """Drop everything (the registry is closing); callers hold the lock."""
        self._datasets.clear()
        self._jobs.clear()
        self._history.clear()

    def _check_open(self) -> None:
        self._models._check_open()

    def _job(self, job_id: str) -> _Job:
        self._check_open()
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def _active_job(self, model: str) -> str | None:
        for job in self._jobs.values():
            if job.model == model and job.state in ACTIVE:
                return job.id
        return None

    def refuse_if_busy(self, model: str) -> None:
        """ModelBusy if a job is active on `model`; callers hold the lock."""
        transitions.refuse_if_busy(model, self._active_job(model))

    @staticmethod
    def _apply(job: _Job, change: transitions.Change | None, now: float) -> JobRecord:
        """Store a transition's change in the job; callers hold the lock."""
        if change is not None:
            for name, value in change.fields.items():
                setattr(job, name, value)
            job.updated_at = now
            if change.event is not None:
                job.event(change.event, now)
        return job.record()

    def drop_history(self, model: str) -> None:
        """Forget the history of a deleted model; callers hold the lock."""
        self._history.pop(model, None)

    # -- datasets -----------------------------------------------------------------------------

    def create_dataset(self, name: str, info: JSONObject, arrays: Arrays) -> DatasetRecord:
        """Store a dataset; DatasetExists."""
        info_text, blob = encode_spec(info), encode_arrays(arrays)
        with self._lock:
            self._check_open()
            if name in self._datasets:
                raise DatasetExists(name)
            created = timestamp(time.time())
            record = DatasetRecord(name, decode_spec(info_text), len(blob), digest(blob), created)
            self._datasets[name] = _Dataset(record, info_text, blob)
            return self._dataset_record(self._datasets[name])

    @staticmethod
    def _dataset_record(stored: _Dataset) -> DatasetRecord:
        r = stored.record
        return DatasetRecord(r.name, decode_spec(stored.info), r.size_bytes, r.digest, r.created_at)

    def _dataset(self, name: str) -> _Dataset:
        self._check_open()
        stored = self._datasets.get(name)
        if stored is None:
            raise DatasetNotFound(name)
        return stored

    def get_dataset(self, name: str) -> DatasetRecord:
        """Return the dataset's record; DatasetNotFound."""
        with self._lock:
            return self._dataset_record(self._dataset(name))

    def dataset_arrays(self, name: str) -> tuple[DatasetRecord, dict[str, NDArray[Any]]]:
        """Return the dataset's record and arrays; DatasetNotFound."""
        with self._lock:
            stored = self._dataset(name)
            record = self._dataset_record(stored)
        return record, decode_arrays(stored.blob)

    def list_datasets(self, limit: int, after: str | None = None) -> builtins.list[DatasetRecord]:
        """Return at most `limit` datasets with names > `after`, ordered by name."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        with self._lock:
            self._check_open()
            names = sorted(n for n in self._datasets if after is None or n > after)[:limit]
            return [self._dataset_record(self._datasets[n]) for n in names]

    def count_datasets(self) -> int:
        """Return the number of datasets."""
        with self._lock:
            self._check_open()
            return len(self._datasets)

    def delete_dataset(self, name: str) -> None:
        """Delete a dataset; DatasetNotFound, DatasetInUse."""
        with self._lock:
            self._dataset(name)
            for job in self._jobs.values():
                if job.dataset == name and job.state in ACTIVE:
                    raise DatasetInUse(name, job.id)
            del self._datasets[name]

    # -- jobs ---------------------------------------------------------------------------------

    def create_job(self, job: NewJob) -> JobRecord:
        """Store a new queued job; ModelNotFound, ModelBusy."""
        stored = transitions.encoded(job)
        with self._lock:
            self._check_open()
            version = self._models._model_version(job.model)
            self.refuse_if_busy(job.model)
            if job.id in self._jobs:
                raise ValueError(f"job id {job.id!r} is taken")
            now = time.time()
            new = transitions.new_job(job, stored, version, now)
            row = self._jobs[job.id] = _Job(**new.fields, updated_at=now)
            return self._apply(row, transitions.Change({}, new.event), now)

    def active_job(self, model: str) -> str | None:
        """The id of the model's queued or running job, if any."""
        with self._lock:
            self._check_open()
            return self._active_job(model)

    def get_job(self, job_id: str) -> JobRecord:
        """Return the job; JobNotFound."""
        with self._lock:
            return self._job(job_id).record()

    def list_jobs(
        self, limit: int, before: str | None = None, model: str | None = None
    ) -> builtins.list[JobRecord]:
        """Return at most `limit` jobs with ids < `before`, newest first."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        with self._lock:
            self._check_open()
            ids = sorted(
                (
                    j.id
                    for j in self._jobs.values()
                    if (before is None or j.id < before) and (model is None or j.model == model)
                ),
                reverse=True,
            )[:limit]
            return [self._jobs[i].record() for i in ids]

    def count_jobs(self, model: str | None = None) -> int:
        """Return the number of jobs (of `model` if given)."""
        with self._lock:
            self._check_open()
            return sum(1 for j in self._jobs.values() if model is None or j.model == model)

    def count_jobs_by_state(self) -> dict[JobState, int]:
        """Return the number of jobs in each state (states with no job left out)."""
        with self._lock:
            self._check_open()
            return dict(Counter(j.state for j in self._jobs.values()))

    def job_data(self, job_id: str) -> dict[str, NDArray[Any]] | None:
        """Return the job's own arrays or None; JobNotFound."""
        with self._lock:
            blob = self._job(job_id).data
        return None if blob is None else decode_arrays(blob)

    def start_job(self, job_id: str, owner: str) -> JobRecord:
        """queued -> running; JobStateConflict, JobLost."""
        with self._lock:
            job, now = self._job(job_id), time.time()
            return self._apply(job, transitions.start(job, owner, now), now)

    def checkpoint(
        self, job_id: str, owner: str, point: Checkpoint
    ) -> tuple[JobRecord, ModelRecord]:
        """Commit the next model version and the job's position together."""
        blob = encode_arrays(point.arrays)
        progress_text, position_text = encode_spec(point.progress), encode_spec(point.position)
        history_data = None if point.history is None else decode_spec(encode_spec(point.history))
        with self._lock:
            job = self._job(job_id)
            transitions.check_owner(job, owner)
            model = self._models._commit_locked(job.model, blob, job.version, point.reason)
            now = time.time()
            change = transitions.checkpoint(
                job, owner, model.version, progress_text, position_text, now
            )
            record = self._apply(job, change, now)
            if history_data is not None:
                entries = self._history.setdefault(job.model, [])
                seq, created = len(entries) + 1, timestamp(now)
                entries.append(
                    HistoryEntry(job.model, seq, job.id, model.version, history_data, created)
                )
            return record, model

    def finish_job(
        self, job_id: str, owner: str, state: JobState, progress: JSONObject, error: str | None
    ) -> JobRecord:
        """running -> succeeded, failed, cancelled or interrupted; JobLost."""
        transitions.check_final(state)
        progress_text = encode_spec(progress)
        with self._lock:
            job, now = self._job(job_id), time.time()
            change = transitions.finish(job, owner, state, progress_text, error, now)
            return self._apply(job, change, now)

    def cancel_job(self, job_id: str) -> JobRecord:
        """Cancel now (queued, interrupted) or at the next step (running)."""
        with self._lock:
            job, now = self._job(job_id), time.time()
            return self._apply(job, transitions.cancel(job, now), now)

    def resume_job(self, job_id: str, owner: str) -> JobRecord:
        """interrupted or cancelled -> queued; JobStateConflict, ModelBusy, ModelChanged."""
        with self._lock:
            job = self._job(job_id)
            transitions.check_resumable(job)
            current, now = self._models._model_version(job.model), time.time()
            change = transitions.resume(job, owner, current, self._active_job(job.model), now)
            return self._apply(job, change, now)

    def interrupt_jobs(
        self, *, owner: str | None = None, stale_before: datetime | None = None
    ) -> builtins.list[JobRecord]:
        """Mark the active jobs of `owner`, or with a stale heartbeat, interrupted."""
        limit = None if stale_before is None else stale_before.timestamp()
        out: builtins.list[JobRecord] = []
        with self._lock:
            self._check_open()
            now = time.time()
            for job in self._jobs.values():
                if job.state not in ACTIVE:
                    continue
                mine = owner is not None and job.owner == owner
                stale = limit is not None and (job.heartbeat_at or 0.0) < limit
                if not (mine or stale):
                    continue
                change = transitions.interrupt(job.cancel_requested, job.kept_progress, now)
                out.append(self._apply(job, change, now))
        return out

    def heartbeat(self, owner: str, progress: Mapping[str, JSONObject]) -> builtins.list[JobRecord]:
        """Refresh the heartbeat (and live progress) of `owner`'s active jobs."""
        texts = {job_id: encode_spec(p) for job_id, p in progress.items()}
        out: builtins.list[JobRecord] = []
        with self._lock:
            self._check_open()
            now = time.time()
            for job in self._jobs.values():
                if job.owner == owner and job.state in ACTIVE:
                    change = transitions.heartbeat(texts.get(job.id), now)
                    out.append(self._apply(job, change, now))
        return out

    def job_events(self, job_id: str, after: int = 0) -> builtins.list[JobEvent]:
        """Return the job's events numbered above `after`."""
        with self._lock:
            events = self._job(job_id).events[max(after, 0) :]
        return [
            JobEvent(seq, kind, decode_spec(text), timestamp(at))
            for seq, (kind, text, at) in enumerate(events, start=max(after, 0) + 1)
        ]

    def history(
        self, model: str, limit: int, after: int | None = None
    ) -> builtins.list[HistoryEntry]:
        """Return at most `limit` entries of the model's history numbered above `after`."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        with self._lock:
            self._models._model_version(model)
            entries = self._history.get(model, [])
            start = 0 if after is None else max(after, 0)
            return [
                HistoryEntry(
                    e.model, e.seq, e.job, e.version, decode_spec(encode_spec(e.data)), e.created_at
                )
                for e in entries[start : start + limit]
            ]
