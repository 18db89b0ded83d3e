"""The abstract storage of datasets, training jobs, their events and model history.

Every registry owns one such store, ``registry.jobs`` (:mod:`.jobs_memory`, :mod:`.jobs_sql`).
The store works under the registry's lock or in its transactions and calls the registry's
compare-and-swap, so that a job's checkpoint (a new model version, the job's position and its
progress event) commits in one transaction; and the registry asks its store whether a model
has an active job before it changes the model. The store does not interpret
a job's ``config``, ``progress`` or ``checkpoint``: they are JSON objects owned by the jobs
package. It enforces what must hold across processes:

- at most one *active* job (``queued`` or ``running``) per model, and while there is one, no
  other write may change the model (:class:`ModelBusy`);
- only the replica that owns a running job may checkpoint or finish it (:class:`JobLost`);
- the state machine::

      queued ──start──> running ──finish──> succeeded | failed | cancelled | interrupted
        │                  │
        ├──cancel──> cancelled <──cancel── interrupted <──interrupt── (queued, running)
        └──interrupt──> interrupted ──resume──> queued      cancelled ──resume──> queued

Every change of state and every checkpoint appends an event to the job (numbered 1, 2, ...);
a running job's ``cancel`` only sets ``cancel_requested``, which its owner acts on. The
transitions are pure functions (:mod:`.transitions`) that every backend's store calls.

A job's ``progress`` is the last one its owner stored; heartbeats may carry it past the last
checkpoint. The registry keeps the progress saved with the last checkpoint (with the job
before its first), and a job that ``interrupt_jobs`` stops short of its end reports that one
again: it is where the model was left and where a resumed job continues.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from numpy.typing import NDArray

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
)


class JobStorage(ABC):
    """Storage of datasets, jobs, job events and model training history (see module doc)."""

    # -- datasets -----------------------------------------------------------------------------

    @abstractmethod
    def create_dataset(self, name: str, info: JSONObject, arrays: Arrays) -> DatasetRecord:
        """Store a dataset (bit-exact arrays); DatasetExists if the name is taken."""

    @abstractmethod
    def get_dataset(self, name: str) -> DatasetRecord:
        """Return the dataset's record; DatasetNotFound."""

    @abstractmethod
    def dataset_arrays(self, name: str) -> tuple[DatasetRecord, dict[str, NDArray[Any]]]:
        """Return the record and the read-only arrays of a dataset; DatasetNotFound."""

    @abstractmethod
    def list_datasets(self, limit: int, after: str | None = None) -> builtins.list[DatasetRecord]:
        """Return at most `limit` datasets with names > `after`, ordered by name."""

    @abstractmethod
    def count_datasets(self) -> int:
        """Return the number of datasets."""

    @abstractmethod
    def delete_dataset(self, name: str) -> None:
        """Delete a dataset; DatasetNotFound, DatasetInUse if an active job trains on it."""

    # -- jobs ---------------------------------------------------------------------------------

    @abstractmethod
    def create_job(self, job: NewJob) -> JobRecord:
        """Store ``job``, ``queued`` at the model's current version. ModelNotFound; ModelBusy
        if another job is active on the model. Appends event 1 (``state``).
        """

    @abstractmethod
    def active_job(self, model: str) -> str | None:
        """The id of the queued or running job of `model`, if any (a cheap read)."""

    @abstractmethod
    def get_job(self, job_id: str) -> JobRecord:
        """Return the job; JobNotFound."""

    @abstractmethod
    def list_jobs(
        self, limit: int, before: str | None = None, model: str | None = None
    ) -> builtins.list[JobRecord]:
        """Return at most `limit` jobs with ids < `before`, newest (largest id) first."""

    @abstractmethod
    def count_jobs(self, model: str | None = None) -> int:
        """Return the number of jobs (of `model` if given)."""

    @abstractmethod
    def count_jobs_by_state(self) -> dict[JobState, int]:
        """Return the number of jobs in each state (states with no job left out)."""

    @abstractmethod
    def job_data(self, job_id: str) -> dict[str, NDArray[Any]] | None:
        """Return the job's own arrays, None if it trains on a dataset; JobNotFound."""

    @abstractmethod
    def start_job(self, job_id: str, owner: str) -> JobRecord:
        """``queued`` -> ``running`` for its owner; JobStateConflict, JobLost."""

    @abstractmethod
    def checkpoint(
        self, job_id: str, owner: str, point: Checkpoint
    ) -> tuple[JobRecord, ModelRecord]:
        """Atomically commit the ``point``'s arrays as the model's next version and save the
        job's position.

        Its ``progress`` becomes the job's progress and the one kept with this checkpoint. The
        model must still be at the job's ``version`` (VersionConflict otherwise) and the job
        running for `owner` (JobLost). With ``history``, appends an entry to the model's
        history. Appends a ``progress`` event. Durable when it returns.
        """

    @abstractmethod
    def finish_job(
        self, job_id: str, owner: str, state: JobState, progress: JSONObject, error: str | None
    ) -> JobRecord:
        """``running`` -> `state` (succeeded, failed, cancelled, or interrupted: stopped short
        by its owner) for its owner; JobLost."""

    @abstractmethod
    def cancel_job(self, job_id: str) -> JobRecord:
        """Cancel: ``queued`` and ``interrupted`` jobs become ``cancelled`` at once; a running
        job gets ``cancel_requested``; cancelling a cancelled job changes nothing.
        JobStateConflict for succeeded and failed jobs."""

    @abstractmethod
    def resume_job(self, job_id: str, owner: str) -> JobRecord:
        """``interrupted`` or ``cancelled`` -> ``queued``, now owned by `owner`.

        JobStateConflict; ModelNotFound; ModelBusy if another job is active on the model;
        ModelChanged if the model is no longer at the job's version.
        """

    @abstractmethod
    def interrupt_jobs(
        self, *, owner: str | None = None, stale_before: datetime | None = None
    ) -> builtins.list[JobRecord]:
        """Mark active jobs ``interrupted`` (``cancelled`` if a cancel was requested): those
        of `owner`, or those whose heartbeat is older than `stale_before`, their progress
        back at their last checkpoint's. Returns them."""

    @abstractmethod
    def heartbeat(self, owner: str, progress: Mapping[str, JSONObject]) -> builtins.list[JobRecord]:
        """Refresh the heartbeat of the active jobs `owner` runs, with their live `progress`
        where given; returns those jobs as updated."""

    @abstractmethod
    def job_events(self, job_id: str, after: int = 0) -> builtins.list[JobEvent]:
        """Return the job's events numbered above `after`, in order; JobNotFound."""

    @abstractmethod
    def history(
        self, model: str, limit: int, after: int | None = None
    ) -> builtins.list[HistoryEntry]:
        """Return at most `limit` history entries of the model numbered above `after`, oldest
        first; ModelNotFound."""
