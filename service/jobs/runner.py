"""Runs training jobs in worker threads, off the event loop, and keeps them recoverable.

Each process has one runner with an ``owner`` id of its own. A job runs in one of at most
``max_jobs`` worker threads; the others wait, queued. While it runs:

- every epoch end (and every ``checkpoint_steps`` steps, if set) it commits the model's next
  version together with its position (:meth:`Registry.checkpoint`), one transaction;
- a heartbeat thread refreshes, every ``heartbeat_seconds``, the heartbeat and live progress
  of the jobs this process owns, picks up cancellations requested through other processes,
  and marks jobs whose heartbeat is older than ``stale_seconds`` (their process died)
  ``interrupted``; so does :meth:`start`;
- a cancellation stops the job before its next step; the model keeps the last checkpoint,
  and the job reports that checkpoint's progress (where a resumed job continues);
- with ``patience`` and ``restore_best``, a job that ends with its best epoch behind it
  commits one more version: a copy of the best epoch's (parameters and optimizer state);
- the worker threads run at a lower CPU priority (SCHED_IDLE or ``nice``, Linux), so that
  requests served by the event loop stay quick while a job trains.

On :meth:`stop` (server shutdown) running jobs stop before their next step and are marked
``interrupted``, to be resumed later. A job whose registry becomes unreachable stops quietly;
its heartbeat then goes stale and some replica marks it ``interrupted``. A job whose
checkpoint finds the registry's storage full is marked ``interrupted`` with that error, to be
resumed once space has been freed. A job's end that the registry does not take (the storage
full, the database unreachable) is stored at a later heartbeat.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np

from service import specs
from service.core import CoreError, OptimizerState
from service.jobs.errors import InvalidDataset
from service.jobs.events import Notifier
from service.jobs.training import Position, Step, TrainConfig, Trainer
from service.registry import (
    Checkpoint,
    DatasetNotFound,
    JobLost,
    JobNotFound,
    JobRecord,
    JobStateConflict,
    Registry,
    RegistryError,
    RegistryUnavailable,
    StorageFull,
    VersionConflict,
    VersionNotFound,
)
from service.registry.records import Arrays
from service.threads import lower_priority

log = logging.getLogger("service.jobs")

JSON = dict[str, Any]
Outcome = Literal["succeeded", "cancelled"]
EndState = Literal["succeeded", "failed", "cancelled", "interrupted"]


@dataclass(frozen=True)
class RunnerConfig:
    max_jobs: int = 2
    checkpoint_steps: int = 0  # 0: checkpoint at epoch ends only
    heartbeat_seconds: float = 2.0
    stale_seconds: float = 30.0
    nice: int = 10  # how much lower the worker threads' CPU priority is (Linux)
    idle: bool = False  # instead, the SCHED_IDLE class: only the CPU requests leave


class _Handle:
    """What the runner's threads share about one job of this process."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.cancel = threading.Event()  # a cancellation was requested
        self.lost = threading.Event()  # another process declared the job interrupted
        self.live: JSON | None = None  # the latest progress, published by the heartbeat
        self.kept: JSON | None = None  # the progress of the last checkpoint


class _Clock:
    """Estimates the time left from the pace of the steps run by this process."""

    def __init__(self, step: int, total: int) -> None:
        self.started, self.first, self.total = time.monotonic(), step, total

    def eta(self, step: int) -> float | None:
        if step <= self.first:
            return None
        per_step = (time.monotonic() - self.started) / (step - self.first)
        return round(per_step * (self.total - step), 3)


@dataclass(frozen=True)
class Best:
    """The best epoch so far: where it ended and the model version its checkpoint committed.

    ``arrays`` is that version's bundle while this process holds it (the version may be
    pruned before the job ends); None in a run resumed after it, which reads it back.
    """

    epoch: int
    step: int
    version: int
    arrays: Arrays | None = None

    def to_json(self) -> JSON:
        return {"epoch": self.epoch, "step": self.step, "version": self.version}

    @classmethod
    def from_json(cls, data: JSON | None) -> Best | None:
        return None if data is None else cls(data["epoch"], data["step"], data["version"])


def progress(
    position: Position, eta: float | None, best: Best | None = None, restored: bool = False
) -> JSON:
    """The job's progress as stored and served."""
    return {
        "epoch": position.epoch,
        "step": position.step,
        "loss": position.latest_loss,
        "best_loss": position.best_loss,
        "validation_loss": position.validation_loss,
        "eta_seconds": eta,
        "stopped_early": position.stopped_early,
        "best": None if best is None else best.to_json(),
        "restored_best": restored,
    }


def train_config(config: JSON) -> TrainConfig:
    """The training loop's configuration from a job's stored ``config``."""
    return TrainConfig(
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        optimizer=specs.optimizer_from_dict(config["optimizer"]),
        seed=config["seed"],
        validation_split=config["validation_split"],
        patience=config["patience"],
    )


class JobRunner:
    """The worker threads and the heartbeat thread of one process (see the module doc)."""

    def __init__(self, registry: Registry, config: RunnerConfig, notifier: Notifier) -> None:
        self.registry = registry
        self.config = config
        self.notifier = notifier
        # Called by a worker thread after every optimizer step; the app's metrics count them.
        self.count_steps: Callable[[], None] = lambda: None
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._lock = threading.Lock()
        self._handles: dict[str, _Handle] = {}
        # Ends the registry did not take (unreachable, storage full), retried every heartbeat.
        self._unfinished: dict[str, tuple[EndState, JSON, str | None]] = {}
        # Daemon threads: a runner that is never stopped (an app driven without its lifespan)
        # must not keep the interpreter from exiting.
        self._queue: queue.SimpleQueue[_Handle | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._ticker: threading.Thread | None = None
        self._closing = threading.Event()

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the threads (once) and mark jobs left by dead processes ``interrupted``."""
        self._start_threads()
        try:
            self.sweep()
        except RegistryError as exc:
            log.warning("could not look for interrupted jobs: %s", exc)

    def _start_threads(self) -> None:
        with self._lock:
            if self._workers or self._closing.is_set():
                return
            self._workers = [
                threading.Thread(target=self._work, name=f"backprop-job-{i}", daemon=True)
                for i in range(self.config.max_jobs)
            ]
            self._ticker = threading.Thread(
                target=self._beat, name="backprop-job-heartbeat", daemon=True
            )
            for thread in [*self._workers, self._ticker]:
                thread.start()

    def stop(self) -> None:
        """Stop every job of this process before its next step and mark it ``interrupted``."""
        self._closing.set()
        with self._lock:
            workers, ticker = list(self._workers), self._ticker
        for _ in workers:
            self._queue.put(None)
        for thread in [*workers, *([ticker] if ticker else [])]:
            thread.join()
        self._retry_ends()
        try:
            for job in self.registry.jobs.interrupt_jobs(owner=self.owner):
                log.info("job %s of model %s: %s at shutdown", job.id, job.model, job.state)
                self.notifier.notify(job.id)
        except RegistryError as exc:
            log.warning("could not mark this process's jobs interrupted: %s", exc)

    def submit(self, job: JobRecord) -> None:
        """Run a queued job of this process when a worker thread is free."""
        self._start_threads()  # without a lifespan (tests), the threads start on first use
        with self._lock:
            if self._closing.is_set():
                return  # shutting down: stop() marks the job interrupted
            handle = _Handle(job.id)
            self._handles[job.id] = handle
        self._queue.put(handle)

    def cancel(self, job_id: str) -> None:
        """Stop a job of this process before its next step (its cancel is already stored)."""
        with self._lock:
            handle = self._handles.get(job_id)
        if handle is not None:
            handle.cancel.set()

    def sweep(self) -> list[JobRecord]:
        """Mark active jobs whose heartbeat is stale ``interrupted``; returns them."""
        before = datetime.now(UTC) - timedelta(seconds=self.config.stale_seconds)
        stale = self.registry.jobs.interrupt_jobs(stale_before=before)
        for job in stale:
            log.warning(
                "job %s of model %s had no heartbeat for %g s: %s",
                job.id,
                job.model,
                self.config.stale_seconds,
                job.state,
            )
            self.notifier.notify(job.id)
        return stale

    def _beat(self) -> None:
        while not self._closing.wait(self.config.heartbeat_seconds):
            self._retry_ends()
            with self._lock:
                handles = dict(self._handles)
            live = {job_id: h.live for job_id, h in handles.items() if h.live is not None}
            try:
                alive = {job.id: job for job in self.registry.jobs.heartbeat(self.owner, live)}
                for job_id, handle in handles.items():
                    job = alive.get(job_id)
                    if job is None:
                        handle.lost.set()
                    elif job.cancel_requested:
                        handle.cancel.set()
                self.sweep()
            except RegistryError as exc:
                log.warning("job heartbeat failed: %s", exc)

    # -- one job ------------------------------------------------------------------------------

    def _work(self) -> None:
        lower_priority(self.config.nice, self.config.idle)
        while (handle := self._queue.get()) is not None:
            self._run(handle)

    def _run(self, handle: _Handle) -> None:
        try:
            self._run_job(handle)
        except Exception:
            log.exception("job %s: unexpected error in its worker", handle.job_id)
        finally:
            with self._lock:
                self._handles.pop(handle.job_id, None)
            self.notifier.notify(handle.job_id)

    def _run_job(self, handle: _Handle) -> None:
        job_id = handle.job_id
        if self._closing.is_set():
            return
        try:
            job = self.registry.jobs.start_job(job_id, self.owner)
        except (JobStateConflict, JobLost, JobNotFound) as exc:
            log.info("job %s not started: %s", job_id, exc)
            return
        self.notifier.notify(job_id)
        try:
            outcome = self._train(handle, job)
        except (JobLost, RegistryUnavailable) as exc:
            log.warning("job %s stopped: %s", job_id, exc)
            return
        except StorageFull as exc:
            log.warning("job %s stopped: %s", job_id, exc)
            self._finish(
                handle,
                "interrupted",
                "the registry's storage is full, so the job's checkpoint could not be written; "
                "resume the job once space has been freed",
            )
            return
        except (CoreError, InvalidDataset) as exc:
            self._finish(handle, "failed", exc.message)
            return
        except (DatasetNotFound, VersionConflict) as exc:
            self._finish(handle, "failed", str(exc))
            return
        except Exception as exc:
            log.exception("job %s failed", job_id)
            self._finish(handle, "failed", f"internal error: {type(exc).__name__}: {exc}")
            return
        if outcome is not None:
            self._finish(handle, outcome, None)

    def _finish(self, handle: _Handle, state: EndState, error: str | None) -> None:
        """End the job as `state`. A job stopped short (cancelled, interrupted) reports the
        progress of its last checkpoint: the model keeps it and a resumed job continues there."""
        shown = handle.live
        if state in ("cancelled", "interrupted") and handle.kept is not None:
            shown = {**handle.kept, "eta_seconds": None}
        self._end(handle.job_id, state, shown or {}, error)

    def _end(self, job_id: str, state: EndState, shown: JSON, error: str | None) -> None:
        """Store the job's end; one the registry does not take is retried every heartbeat."""
        try:
            job = self.registry.jobs.finish_job(job_id, self.owner, state, shown, error)
            log.info("job %s of model %s %s", job.id, job.model, state)
        except JobLost as exc:
            log.warning("job %s could not be marked %s: %s", job_id, state, exc)
        except RegistryError as exc:
            log.warning("job %s could not be marked %s yet: %s", job_id, state, exc)
            with self._lock:
                self._unfinished[job_id] = (state, shown, error)
            return
        with self._lock:
            self._unfinished.pop(job_id, None)
        self.notifier.notify(job_id)

    def _retry_ends(self) -> None:
        with self._lock:
            unfinished = dict(self._unfinished)
        for job_id, (state, shown, error) in unfinished.items():
            self._end(job_id, state, shown, error)

    def _train(self, handle: _Handle, job: JobRecord) -> Outcome | None:
        """Train from the job's checkpoint to its end; None if stopped for shutdown or lost."""
        snapshot = self.registry.snapshot(job.model, job.version)
        network = specs.network_from_dict(snapshot.model.spec["network"])
        params, state = specs.unpack(network, snapshot.arrays)
        config = train_config(job.config)
        if job.checkpoint is None and type(config.optimizer) is not type(
            specs.optimizer_from_dict(snapshot.model.spec["optimizer"])
        ):
            state = OptimizerState()  # another kind of optimizer: its state starts afresh
        X, T = self._data(job)
        trainer = Trainer(network, X, T, config)
        position = (
            trainer.start()
            if job.checkpoint is None
            else Position.from_json(job.checkpoint["position"])
        )
        saved = job.checkpoint or {}
        best = Best.from_json(saved.get("best"))
        restore = config.patience is not None and job.config.get("restore_best", False)
        version = job.version
        clock = _Clock(position.step, trainer.total_steps)
        handle.live = handle.kept = progress(
            position, None, best, saved.get("restored_best", False)
        )
        every = job.config["checkpoint_steps"]
        for s in trainer.run(params, state, position):
            position = p = s.position
            if s.epoch_end and p.best_epoch == p.epoch:
                # This epoch's checkpoint, the next version, holds the best parameters so far.
                arrays = specs.pack(s.params, s.state) if restore else None
                best = Best(p.epoch, p.step, version + 1, arrays)
            eta = 0.0 if p.step == trainer.total_steps else clock.eta(p.step)
            handle.live = progress(p, eta, best)
            self.count_steps()
            if s.epoch_end or (every and p.step % every == 0):
                version = self._checkpoint(handle, job, s, best)
            if handle.cancel.is_set():
                return "cancelled"
            if self._closing.is_set() or handle.lost.is_set():
                return None
        restored = saved.get("restored_best", False)
        if restore and best is not None and best.version != version and not restored:
            self._restore(handle, job, best, position)
        if handle.live is not None:
            handle.live = {**handle.live, "eta_seconds": 0.0}
        return "succeeded"

    def _checkpoint(self, handle: _Handle, job: JobRecord, s: Step, best: Best | None) -> int:
        """Commit the step's parameters and position as the model's next version; its number."""
        p = s.position
        where = f"epoch {p.epoch}" if s.epoch_end else f"step {p.step}"
        history = None
        if s.epoch_end:
            history = {
                "epoch": p.epoch,
                "step": p.step,
                "loss": p.loss,
                "validation_loss": p.validation_loss,
            }
        saved = {
            "epoch": p.epoch,
            "step": p.step,
            "position": p.to_json(),
            "best": None if best is None else best.to_json(),
        }
        shown = handle.live or {}
        _, record = self.registry.jobs.checkpoint(
            job.id,
            self.owner,
            Checkpoint(
                arrays=specs.pack(s.params, s.state),
                reason=f"job {job.id} {where}",
                progress=shown,
                position=saved,
                history=history,
            ),
        )
        handle.kept = shown
        self.notifier.notify(job.id)
        return record.version

    def _restore(self, handle: _Handle, job: JobRecord, best: Best, position: Position) -> None:
        """Commit a copy of the best epoch's version as the model's next version."""
        arrays = best.arrays
        if arrays is None:  # a run resumed after the best epoch: read its version back
            try:
                arrays = self.registry.snapshot(job.model, best.version).arrays
            except VersionNotFound as exc:
                log.warning("job %s cannot restore its best epoch %d: %s", job.id, best.epoch, exc)
                return
        shown = progress(position, 0.0, best, restored=True)
        self.registry.jobs.checkpoint(
            job.id,
            self.owner,
            Checkpoint(
                arrays=arrays,
                reason=f"job {job.id} restores epoch {best.epoch} (version {best.version})",
                progress=shown,
                position={
                    "epoch": position.epoch,
                    "step": position.step,
                    "position": position.to_json(),
                    "best": best.to_json(),
                    "restored_best": True,
                },
            ),
        )
        handle.live = handle.kept = shown
        self.notifier.notify(job.id)

    def _data(self, job: JobRecord) -> tuple[np.ndarray, np.ndarray]:
        if job.dataset is None:
            arrays = self.registry.jobs.job_data(job.id)
            if arrays is None:
                raise InvalidDataset(f"job {job.id!r} has neither a dataset nor data of its own")
        else:
            record, arrays = self.registry.jobs.dataset_arrays(job.dataset)
            if record.digest != job.config["dataset_digest"]:
                raise InvalidDataset(
                    f"dataset {job.dataset!r} was replaced after the job was created; the job "
                    "cannot continue on other data"
                )
        return arrays["inputs"], arrays["targets"]
