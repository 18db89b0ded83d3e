"""The job state machine (see :mod:`.jobs`): each transition a pure function of the stored job.

A transition checks that it may happen, raising the registry's error if not (nothing has
changed then), and returns the :class:`Change` to store: the job's new field values and the
kind of event to append. The memory and SQL stores read the job (and what else a transition
needs: the model's version, its active job), call the transition and store what it returns,
so every backend answers a request with the same error or the same job.

Field values are as stored: JSON objects as text (the stores encode them), times as seconds
since the epoch. Every change also sets ``updated_at``; the stores do that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .codec import encode_arrays, encode_spec
from .errors import JobLost, JobStateConflict, ModelBusy, ModelChanged
from .records import RESUMABLE, EventKind, JobState, NewJob

#: The states a running job's owner may finish it in.
FINAL: tuple[JobState, ...] = ("succeeded", "failed", "cancelled", "interrupted")


class Job(Protocol):
    """What the transitions read of a stored job (a JobRecord or a store's own row)."""

    @property
    def id(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def state(self) -> JobState: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def version(self) -> int: ...
    @property
    def started_at(self) -> object: ...


@dataclass(frozen=True)
class Change:
    """New values of a job's fields (``updated_at`` besides), and the event to append."""

    fields: dict[str, Any]
    event: EventKind | None


@dataclass(frozen=True)
class EncodedJob:
    """A new job's JSON objects and arrays as stored: encoded before a store takes its lock."""

    config: str
    progress: str
    data: bytes | None


def encoded(job: NewJob) -> EncodedJob:
    """``job``'s config, progress and own arrays as the stores keep them."""
    data = None if job.data is None else encode_arrays(job.data)
    return EncodedJob(encode_spec(job.config), encode_spec(job.progress), data)


def new_job(job: NewJob, stored: EncodedJob, version: int, now: float) -> Change:
    """``job`` created ``queued`` at the model's `version` (the store checks the model exists
    and is not busy), its fields ``stored``; its first event is a ``state`` one."""
    fields: dict[str, Any] = {
        "id": job.id,
        "model": job.model,
        "dataset": job.dataset,
        "state": "queued",
        "config": stored.config,
        "progress": stored.progress,
        "kept_progress": stored.progress,
        "checkpoint": None,
        "version": version,
        "owner": job.owner,
        "cancel_requested": False,
        "error": None,
        "created_at": now,
        "heartbeat_at": now,
        "data": stored.data,
    }
    return Change(fields, "state")


def refuse_if_busy(model: str, active: str | None) -> None:
    """ModelBusy if `active`, the model's queued or running job, is there."""
    if active is not None:
        raise ModelBusy(model, active)


def check_owner(job: Job, owner: str, state: JobState = "running") -> None:
    """JobLost unless `owner` owns the job and it is in `state`."""
    if job.owner != owner or job.state != state:
        raise JobLost(job.id, owner)


def check_final(state: JobState) -> None:
    """ValueError unless a job may finish in `state` (checked before the job is read)."""
    if state not in FINAL:
        raise ValueError(f"a job cannot finish as {state!r}")


def check_resumable(job: Job) -> None:
    """JobStateConflict unless the job is interrupted or cancelled: checked before its model,
    so an ended job whose model is gone is a conflict, not a missing model."""
    if job.state not in RESUMABLE:
        raise JobStateConflict(job.id, job.state, "be resumed")


def start(job: Job, owner: str, now: float) -> Change:
    """``queued`` -> ``running`` for its owner; JobStateConflict, JobLost."""
    if job.state != "queued":
        raise JobStateConflict(job.id, job.state, "start")
    check_owner(job, owner, "queued")
    fields: dict[str, Any] = {"state": "running", "heartbeat_at": now}
    if job.started_at is None:
        fields["started_at"] = now
    return Change(fields, "state")


def checkpoint(
    job: Job, owner: str, version: int, progress: str, position: str, now: float
) -> Change:
    """A running job's owner committed `version`: the job's position and progress move to
    it; JobLost (the store checks this before it commits the model's version too)."""
    check_owner(job, owner)
    fields = {
        "version": version,
        "progress": progress,
        "kept_progress": progress,
        "checkpoint": position,
        "heartbeat_at": now,
    }
    return Change(fields, "progress")


def finish(
    job: Job, owner: str, state: JobState, progress: str, error: str | None, now: float
) -> Change:
    """``running`` -> `state` for its owner; ValueError, JobLost."""
    check_final(state)
    check_owner(job, owner)
    return Change({"state": state, "progress": progress, "error": error, "finished_at": now}, "end")


def cancel(job: Job, now: float) -> Change | None:
    """``queued`` and ``interrupted`` -> ``cancelled`` at once; a running job is asked to stop
    (``cancel_requested``, no event); a cancelled one is left as it is (None).
    JobStateConflict for succeeded and failed jobs."""
    if job.state in ("queued", "interrupted"):
        return Change({"state": "cancelled", "finished_at": now}, "end")
    if job.state == "running":
        return Change({"cancel_requested": True}, None)
    if job.state == "cancelled":
        return None
    raise JobStateConflict(job.id, job.state, "be cancelled")


def resume(job: Job, owner: str, model_version: int, active: str | None, now: float) -> Change:
    """``interrupted`` or ``cancelled`` -> ``queued``, owned by `owner`, if the model (at
    `model_version`, with `active` its active job) is still where the job left it.
    JobStateConflict, ModelBusy, ModelChanged, in this order."""
    check_resumable(job)
    refuse_if_busy(job.model, active)
    if model_version != job.version:
        raise ModelChanged(job.model, job.id, job.version, model_version)
    fields: dict[str, Any] = {
        "state": "queued",
        "owner": owner,
        "error": None,
        "cancel_requested": False,
        "finished_at": None,
        "heartbeat_at": now,
    }
    return Change(fields, "state")


def interrupt(cancel_requested: bool, kept_progress: str | None, now: float) -> Change:
    """An active job stopped by ``interrupt_jobs``: ``cancelled`` if a cancel was requested,
    else ``interrupted``, its progress back at its last checkpoint's (`kept_progress`; None
    for a job stored before that was kept: its progress stays)."""
    state: JobState = "cancelled" if cancel_requested else "interrupted"
    fields: dict[str, Any] = {"state": state, "finished_at": now}
    if kept_progress is not None:
        fields["progress"] = kept_progress
    return Change(fields, "end")


def heartbeat(progress: str | None, now: float) -> Change:
    """An active job's owner is alive, with the job's live `progress` if given."""
    fields: dict[str, Any] = {"heartbeat_at": now}
    if progress is not None:
        fields["progress"] = progress
    return Change(fields, None)
