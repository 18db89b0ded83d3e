"""The abstract `Registry` interface every storage backend implements."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from .codec import Encoded
from .jobs import JobStorage
from .records import Arrays, ModelRecord, Snapshot, StorageState, VersionInfo


class Registry(ABC):
    """Thread-safe storage of model specs and versioned array bundles; its :attr:`jobs` store
    the datasets and training jobs.

    Arrays returned by any method are read-only and never mutated later, so callers may cache
    them. Inputs are copied, so callers may mutate them after a call returns.
    """

    #: The datasets, jobs, job events and training history
    #: (:class:`~service.registry.jobs.JobStorage`), kept on the registry's own connections
    #: (or lock), so that a job's checkpoint commits the model's next version with the job.
    jobs: JobStorage

    #: Whether ``current_version`` is quick enough to call on an event loop (a dict or a local
    #: file read); a backend that goes over the network sets it False.
    inline_reads: bool = True

    def __init__(self, keep_versions: int = 20) -> None:
        if type(keep_versions) is not int or keep_versions < 1:
            raise ValueError(f"keep_versions must be an int >= 1, got {keep_versions!r}")
        self.keep_versions = keep_versions
        # Set when an operation meets StorageFull; cleared when new data is stored again.
        self._storage_full = False

    def storage_state(self) -> StorageState:
        """``"full"`` from an operation refused because the storage is full (StorageFull)
        until this process stores new data again (a model, version, dataset, job or
        checkpoint; updates in place such as heartbeats do not tell); else ``"ok"``. No I/O."""
        return "full" if self._storage_full else "ok"

    def _stored(self) -> None:
        """New data was stored (a model, version, dataset, job or checkpoint): there is room
        again (see :meth:`storage_state`)."""
        self._storage_full = False

    @abstractmethod
    def create(
        self, name: str, spec: dict[str, Any], arrays: Arrays | Encoded, reason: str = "create"
    ) -> ModelRecord:
        """Store a new model at version 1; ModelExists if the name is taken."""

    @abstractmethod
    def get(self, name: str) -> ModelRecord:
        """Return the model's current record; ModelNotFound."""

    @abstractmethod
    def list(self, limit: int, after: str | None = None) -> builtins.list[ModelRecord]:
        """Return at most `limit` models with names > `after` (all if None), ordered by name."""

    @abstractmethod
    def count(self) -> int:
        """Return the number of models."""

    @abstractmethod
    def delete(self, name: str, expected_version: int | None = None) -> None:
        """Delete the model and all its versions.

        ModelNotFound; VersionConflict if `expected_version` is given and is not current.
        """

    def current_version(self, name: str) -> int:
        """Return the model's current version (cheap); ModelNotFound."""
        return self.current_state(name)[0]

    @abstractmethod
    def current_state(self, name: str) -> tuple[int, datetime]:
        """Return the model's current version and when it was created (cheap): a model deleted
        and created again under its name starts at version 1 again, and only its creation
        time tells it from the one before. ModelNotFound."""

    @abstractmethod
    def snapshot(self, name: str, version: int | None = None) -> Snapshot:
        """Return the arrays of the current or the given kept version with the current record.

        ModelNotFound; VersionNotFound if `version` was pruned or never existed.
        """

    @abstractmethod
    def commit(
        self,
        name: str,
        arrays: Arrays,
        expected_version: int,
        reason: str,
        created: datetime | None = None,
    ) -> ModelRecord:
        """Atomically store `arrays` as version `expected_version + 1` and return the new record.

        Compare-and-swap: VersionConflict (and nothing changes) if the current version is not
        `expected_version`, or with `created` if the model is not the one created then (it was
        deleted and created again); ModelNotFound. Prunes all but the newest `keep_versions`
        versions. Durable when it returns.
        """

    @abstractmethod
    def versions(self, name: str) -> builtins.list[VersionInfo]:
        """Return the kept versions, newest first; ModelNotFound."""

    @abstractmethod
    def ping(self) -> None:
        """Return if the storage is reachable, else raise RegistryUnavailable."""

    @abstractmethod
    def close(self) -> None:
        """Release the storage; idempotent. Later calls raise RegistryUnavailable."""

    def __enter__(self) -> Self:
        """Return self; the registry is closed when the block exits."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the registry."""
        self.close()
