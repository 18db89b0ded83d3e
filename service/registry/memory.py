"""In-process registry backend: nothing survives the process. For tests and demos."""

from __future__ import annotations

import builtins
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .base import Registry
from .codec import Encoded, decode_arrays, decode_spec, encode_arrays, encode_spec
from .errors import (
    ModelExists,
    ModelNotFound,
    RegistryUnavailable,
    VersionConflict,
    VersionNotFound,
)
from .jobs_memory import MemoryJobs
from .records import Arrays, ModelRecord, Snapshot, VersionInfo


@dataclass
class _Version:
    created_at: datetime
    reason: str
    # encoded, so neither the caller's input nor our output can alias it (a memoryview: a
    # read-only one of an imported file's mapping, see codec.Encoded)
    blob: bytes | memoryview


@dataclass
class _Model:
    spec: str
    created_at: datetime
    version: int = 0
    versions: dict[int, _Version] = field(default_factory=dict)  # ascending by version

    def record(self, name: str) -> ModelRecord:
        return ModelRecord(
            name=name,
            spec=decode_spec(self.spec),
            version=self.version,
            created_at=self.created_at,
            updated_at=self.versions[self.version].created_at,
        )


class MemoryRegistry(Registry):
    """A dict guarded by one lock, shared with its job store; same contract as the persistent
    backends."""

    jobs: MemoryJobs

    def __init__(self, keep_versions: int = 20) -> None:
        """Create an empty registry keeping the newest `keep_versions` versions per model."""
        super().__init__(keep_versions)
        self._lock = threading.Lock()
        self._models: dict[str, _Model] = {}
        self._closed = False
        self.jobs = MemoryJobs(self)

    def _model(self, name: str) -> _Model:
        # Callers hold self._lock.
        self._check_open()
        model = self._models.get(name)
        if model is None:
            raise ModelNotFound(name)
        return model

    def _check_open(self) -> None:
        if self._closed:
            raise RegistryUnavailable("registry is closed")

    def _append(self, model: _Model, blob: bytes | memoryview, reason: str, now: datetime) -> None:
        model.version += 1
        model.versions[model.version] = _Version(now, reason, blob)
        while len(model.versions) > self.keep_versions:
            del model.versions[next(iter(model.versions))]

    def create(
        self, name: str, spec: dict[str, Any], arrays: Arrays | Encoded, reason: str = "create"
    ) -> ModelRecord:
        """Store a new model at version 1; ModelExists if the name is taken."""
        spec_text, blob = encode_spec(spec), encode_arrays(arrays)
        with self._lock:
            self._check_open()
            if name in self._models:
                raise ModelExists(name)
            now = datetime.now(UTC)
            model = _Model(spec_text, now)
            self._append(model, blob, reason, now)
            self._models[name] = model
            return model.record(name)

    def get(self, name: str) -> ModelRecord:
        """Return the model's current record; ModelNotFound."""
        with self._lock:
            return self._model(name).record(name)

    def list(self, limit: int, after: str | None = None) -> builtins.list[ModelRecord]:
        """Return at most `limit` models with names > `after` (all if None), ordered by name."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        with self._lock:
            self._check_open()
            names = sorted(n for n in self._models if after is None or n > after)[:limit]
            return [self._models[n].record(n) for n in names]

    def count(self) -> int:
        """Return the number of models."""
        with self._lock:
            self._check_open()
            return len(self._models)

    def delete(self, name: str, expected_version: int | None = None) -> None:
        """Delete the model and all its versions; ModelNotFound, VersionConflict."""
        with self._lock:
            model = self._model(name)
            self.jobs.refuse_if_busy(name)
            if expected_version is not None and expected_version != model.version:
                raise VersionConflict(name, expected_version, model.version)
            del self._models[name]
            self.jobs.drop_history(name)

    def current_state(self, name: str) -> tuple[int, datetime]:
        """Return the model's current version and creation time; ModelNotFound."""
        with self._lock:
            model = self._model(name)
            return model.version, model.created_at

    def snapshot(self, name: str, version: int | None = None) -> Snapshot:
        """Return the arrays of the current or a kept version; ModelNotFound, VersionNotFound."""
        with self._lock:
            model = self._model(name)
            wanted = model.version if version is None else version
            stored = model.versions.get(wanted)
            if stored is None:
                raise VersionNotFound(name, wanted, (next(iter(model.versions)), model.version))
            record = model.record(name)
        return Snapshot(model=record, version=wanted, arrays=decode_arrays(stored.blob))

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
        with self._lock:
            model = self._model(name)
            self.jobs.refuse_if_busy(name)
            if created is not None and model.created_at != created:
                raise VersionConflict(name, expected_version, model.version)
            return self._commit_locked(name, blob, expected_version, reason)

    def _model_version(self, name: str) -> int:
        return self._model(name).version

    def _commit_locked(
        self, name: str, blob: bytes, expected_version: int, reason: str
    ) -> ModelRecord:
        model = self._model(name)
        if model.version != expected_version:
            raise VersionConflict(name, expected_version, model.version)
        self._append(model, blob, reason, datetime.now(UTC))
        return model.record(name)

    def versions(self, name: str) -> builtins.list[VersionInfo]:
        """Return the kept versions, newest first; ModelNotFound."""
        with self._lock:
            kept = self._model(name).versions
            return [VersionInfo(v, s.created_at, s.reason) for v, s in reversed(kept.items())]

    def ping(self) -> None:
        """Raise RegistryUnavailable if the registry is closed."""
        with self._lock:
            self._check_open()

    def close(self) -> None:
        """Drop all models; later calls raise RegistryUnavailable."""
        with self._lock:
            self._closed = True
            self._models.clear()
            self.jobs.clear()
