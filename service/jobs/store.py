"""The operations on datasets and training jobs that the HTTP layer calls.

Everything that touches the registry or large arrays runs in a worker thread; training itself
runs in the :class:`~service.jobs.runner.JobRunner`'s threads.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from starlette.concurrency import run_in_threadpool

from service import specs
from service.core import CoreError, Network, Optimizer
from service.jobs import datasets, events
from service.jobs.datasets import Dataset
from service.jobs.runner import JobRunner, RunnerConfig, progress
from service.jobs.training import TrainConfig, Trainer
from service.registry import DatasetRecord, HistoryEntry, JobRecord, NewJob, Registry
from service.settings import Settings


@dataclass(frozen=True)
class TrainSpec:
    """A request to train a model: a stored dataset's name or data of its own, and how."""

    dataset: str | Dataset
    epochs: int
    batch_size: int
    learning_rate: float
    optimizer: Optimizer | None = None
    seed: int | None = None
    validation_split: float | None = None
    patience: int | None = None
    restore_best: bool = True  # with patience: end at the best epoch's parameters


def open_jobs(registry: Registry, settings: Settings) -> JobStore:
    """The job store of an app: a runner configured by the settings, not yet started."""
    config = RunnerConfig(
        max_jobs=settings.max_jobs,
        checkpoint_steps=settings.job_checkpoint_steps,
        heartbeat_seconds=settings.job_heartbeat_seconds,
        stale_seconds=settings.job_stale_seconds,
        nice=settings.job_nice,
        idle=settings.job_idle,
    )
    return JobStore(
        registry,
        JobRunner(registry, config, events.Notifier()),
        max_dataset_bytes=settings.max_dataset_bytes,
        checkpoint_steps=settings.job_checkpoint_steps,
    )


def new_job_id() -> str:
    """24 hex digits: microseconds since the epoch, then 40 random bits. Sorted by creation."""
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(5)}"


class JobStore:
    """Datasets and jobs over one registry and one runner; safe for concurrent requests."""

    def __init__(
        self,
        registry: Registry,
        runner: JobRunner,
        *,
        max_dataset_bytes: int,
        checkpoint_steps: int = 0,
    ) -> None:
        self.registry = registry
        self.runner = runner
        self.max_dataset_bytes = max_dataset_bytes
        self.checkpoint_steps = checkpoint_steps

    async def start(self) -> None:
        """Start the runner: jobs left by dead processes are marked interrupted."""
        await run_in_threadpool(self.runner.start)

    async def stop(self) -> None:
        """Stop this process's jobs before their next step; they become interrupted."""
        await run_in_threadpool(self.runner.stop)

    # -- datasets -----------------------------------------------------------------------------

    async def parse_csv(self, data: bytes, input_columns: int) -> Dataset:
        return await run_in_threadpool(
            datasets.from_csv, data, input_columns, self.max_dataset_bytes
        )

    async def parse_npz(self, data: bytes) -> Dataset:
        return await run_in_threadpool(datasets.from_npz, data, self.max_dataset_bytes)

    async def parse_npy(self, data: bytes, input_columns: int) -> Dataset:
        return await run_in_threadpool(
            datasets.from_npy, data, input_columns, self.max_dataset_bytes
        )

    async def parse_rows(
        self, inputs: list[list[float]], targets: list[list[float]], where: str = ""
    ) -> Dataset:
        return await run_in_threadpool(
            datasets.from_rows, inputs, targets, self.max_dataset_bytes, where
        )

    async def create_dataset(self, name: str, dataset: Dataset) -> DatasetRecord:
        return await run_in_threadpool(
            self.registry.jobs.create_dataset, name, dataset.info(), dataset.arrays()
        )

    async def dataset(self, name: str) -> DatasetRecord:
        return await run_in_threadpool(self.registry.jobs.get_dataset, name)

    async def dataset_data(self, name: str) -> tuple[DatasetRecord, Dataset]:
        record, arrays = await run_in_threadpool(self.registry.jobs.dataset_arrays, name)
        return record, datasets.from_arrays(arrays, record.info.get("source", "json"))

    async def page_datasets(self, limit: int, after: str | None) -> tuple[list[DatasetRecord], int]:
        records = await run_in_threadpool(self.registry.jobs.list_datasets, limit, after)
        return records, await run_in_threadpool(self.registry.jobs.count_datasets)

    async def delete_dataset(self, name: str) -> None:
        await run_in_threadpool(self.registry.jobs.delete_dataset, name)

    # -- jobs ---------------------------------------------------------------------------------

    async def train(self, model: str, spec: TrainSpec) -> JobRecord:
        """Check the request against the model and data, store a queued job and submit it.

        Core errors about the data carry pointers under ``/dataset``; ModelNotFound,
        DatasetNotFound, ModelBusy.
        """
        record = await run_in_threadpool(self.registry.get, model)
        network = specs.network_from_dict(record.spec["network"])
        if isinstance(spec.dataset, str):
            stored, arrays = await run_in_threadpool(
                self.registry.jobs.dataset_arrays, spec.dataset
            )
            data = datasets.from_arrays(arrays, "json")
            name: str | None = spec.dataset
            digest: str | None = stored.digest
        else:
            data, name, digest = spec.dataset, None, None
        optimizer = spec.optimizer or specs.optimizer_from_dict(record.spec["optimizer"])
        config = TrainConfig(
            epochs=spec.epochs,
            batch_size=spec.batch_size,
            optimizer=replace(optimizer, learning_rate=spec.learning_rate),
            seed=spec.seed if spec.seed is not None else secrets.randbits(63),
            validation_split=spec.validation_split,
            patience=spec.patience,
        )
        trainer = await run_in_threadpool(_plan, network, data, config, name)
        job_config: dict[str, Any] = {
            "dataset": name,
            "dataset_digest": digest,
            "rows": data.rows,
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "learning_rate": spec.learning_rate,
            "optimizer": specs.optimizer_to_dict(config.optimizer),
            "seed": config.seed,
            "validation_split": config.validation_split,
            "patience": config.patience,
            "restore_best": spec.restore_best,
            "checkpoint_steps": self.checkpoint_steps,
            "steps_per_epoch": trainer.batches,
            "total_steps": trainer.total_steps,
        }
        new = NewJob(
            new_job_id(),
            model,
            name,
            job_config,
            self.runner.owner,
            progress(trainer.start(), None),
            None if name is not None else data.arrays(),
        )
        job = await run_in_threadpool(self.registry.jobs.create_job, new)
        self.runner.submit(job)
        return job

    async def job(self, job_id: str) -> JobRecord:
        return await run_in_threadpool(self.registry.jobs.get_job, job_id)

    async def page_jobs(
        self, limit: int, before: str | None, model: str | None
    ) -> tuple[list[JobRecord], int]:
        records = await run_in_threadpool(self.registry.jobs.list_jobs, limit, before, model)
        return records, await run_in_threadpool(self.registry.jobs.count_jobs, model)

    async def cancel(self, job_id: str) -> JobRecord:
        """Cancel a job: at once if it is not running, else before its next step."""
        job = await run_in_threadpool(self.registry.jobs.cancel_job, job_id)
        self.runner.cancel(job_id)
        self.runner.notifier.notify(job_id)
        return job

    async def resume(self, job_id: str) -> JobRecord:
        """Queue an interrupted or cancelled job again, on this process, from its checkpoint."""
        job = await run_in_threadpool(self.registry.jobs.resume_job, job_id, self.runner.owner)
        self.runner.submit(job)
        self.runner.notifier.notify(job_id)
        return job

    async def events(self, job_id: str, after: int) -> AsyncIterator[bytes]:
        """The job's Server-Sent Events after event `after` (JobNotFound before streaming)."""
        await run_in_threadpool(self.registry.jobs.get_job, job_id)
        return events.stream(self.registry, self.runner.notifier, job_id, after)

    async def history(self, model: str, limit: int, after: int | None) -> list[HistoryEntry]:
        return await run_in_threadpool(self.registry.jobs.history, model, limit, after)


def _plan(network: Network, data: Dataset, config: TrainConfig, name: str | None) -> Trainer:
    try:
        return Trainer(network, data.inputs, data.targets, config)
    except CoreError as exc:
        if exc.pointer.startswith(("/inputs", "/targets")):
            if name is None:
                exc.pointer = "/dataset" + exc.pointer
            else:
                exc.message = f"dataset {name!r}: {exc.message} (at {exc.pointer})"
                exc.pointer = "/dataset"
            exc.args = (exc.message,)
        raise
