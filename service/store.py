"""The model store: the registry, a cache of loaded parameters, and the operations that change a
model's parameters (put, train-step, rollback), each one compare-and-swap on the version.

Reads of the current parameters come from the cache, validated against the registry's current
version (one cheap read), so a change made by another process is never missed and parameters
are not decoded on every request.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike
from starlette.concurrency import run_in_threadpool

from service import specs
from service.cache import LRUCache
from service.core import (
    GradientResult,
    Network,
    Optimizer,
    OptimizerState,
    Params,
    gradient,
)
from service.registry import Encoded, ModelBusy, ModelRecord, Registry, VersionConflict, VersionInfo
from service.threads import LowPriorityPool
from service.workers import WorkerPool

T = TypeVar("T")

# Above this many multiply-adds a computation leaves the event loop for a worker thread; below
# it the thread hop (100-300 µs) would cost more than the arithmetic.
INLINE_COMPUTE_LIMIT = 200_000
CAS_RETRIES = 100


@dataclass(frozen=True)
class LoadedModel:
    """A model's record with its decoded network, parameters and optimizer at ``version``."""

    record: ModelRecord
    version: int
    network: Network
    params: Params
    optimizer: Optimizer
    state: OptimizerState


@dataclass(frozen=True)
class StepOutcome:
    """A committed train-step: the loss before it and the model after it."""

    loss: float
    record: ModelRecord


class ModelStore:
    """Operations on stored models; safe for many concurrent requests in one event loop."""

    def __init__(
        self,
        registry: Registry,
        *,
        cache_models: int = 256,
        cache_bytes: int = 1 << 30,
        compute_threads: int = 2,
        compute_nice: int = 10,
        compute_idle: bool = False,
        workers: WorkerPool | None = None,
    ) -> None:
        self.registry = registry
        #: The worker processes of the largest computations (placed by the operations layer).
        self.workers = workers
        # Large computations run here, below the event loop's priority, so that the small
        # requests the loop serves meanwhile keep their latency.
        self._pool = LowPriorityPool(
            compute_threads, compute_nice, "backprop-compute", idle=compute_idle
        )
        self._cache: LRUCache[str, LoadedModel] = LRUCache(cache_models, cache_bytes, _nbytes)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # -- records ------------------------------------------------------------------------------

    async def create(self, name: str, spec: specs.JSON, params: Params | Encoded) -> ModelRecord:
        """A new model at version 1 with ``params`` (or their bundle, encoded already)."""

        def create() -> ModelRecord:  # packing megabytes of arrays is work for a thread too
            arrays = params if isinstance(params, Encoded) else specs.pack(params)
            return self.registry.create(name, spec, arrays, "create")

        return await run_in_threadpool(create)

    async def get(self, name: str) -> ModelRecord:
        return await run_in_threadpool(self.registry.get, name)

    async def page(self, limit: int, after: str | None) -> tuple[list[ModelRecord], int]:
        records = await run_in_threadpool(self.registry.list, limit, after)
        total = await run_in_threadpool(self.registry.count)
        return records, total

    async def delete(self, name: str, expected_version: int | None) -> None:
        async with self._lock(name):
            await run_in_threadpool(self.registry.delete, name, expected_version)
            self._cache.pop(name)

    async def versions(self, name: str) -> tuple[ModelRecord, list[VersionInfo]]:
        record = await run_in_threadpool(self.registry.get, name)
        return record, await run_in_threadpool(self.registry.versions, name)

    # -- parameters ---------------------------------------------------------------------------

    async def load(self, name: str, version: int | None = None) -> LoadedModel:
        """The model at its current version (from the cache when it is current) or ``version``."""
        if version is None:
            # The version check keeps the cache exact when other processes write; for a local
            # registry it is one quick read, cheaper on the loop than a hop to a thread.
            # The creation time too: a model deleted and created again elsewhere starts at
            # version 1 again, and must not be served from the cache of the one before.
            current = await self._current_state(name)
            cached = self._cache.get(name)
            if cached is not None and (cached.version, cached.record.created_at) == current:
                return cached
        snapshot = await run_in_threadpool(self.registry.snapshot, name, version)
        network = specs.network_from_dict(snapshot.model.spec["network"])
        params, state = specs.unpack(network, snapshot.arrays)
        loaded = LoadedModel(
            record=snapshot.model,
            version=snapshot.version,
            network=network,
            params=params,
            optimizer=specs.optimizer_from_dict(snapshot.model.spec["optimizer"]),
            state=state,
        )
        if version is None or version == snapshot.model.version:
            self._remember(loaded)
        return loaded

    async def put_parameters(
        self, name: str, params: Params, expected_version: int | None
    ) -> ModelRecord:
        """Store ``params`` as a new version; the optimizer state starts afresh."""

        async def put(_: LoadedModel) -> tuple[Params, OptimizerState]:
            return params, OptimizerState()

        return await self._commit(name, expected_version, "put", put)

    async def rollback(self, name: str, version: int, expected_version: int | None) -> ModelRecord:
        """A new version whose parameters and optimizer state equal those of ``version``."""
        await self.refuse_if_training(name)  # before the old version is looked for
        old = await self.load(name, version)

        async def restore(_: LoadedModel) -> tuple[Params, OptimizerState]:
            return old.params, old.state

        return await self._commit(name, expected_version, f"rollback to {version}", restore)

    async def train_step(
        self,
        name: str,
        expected_version: int | None,
        update: Callable[[LoadedModel], Awaitable[tuple[float, Params, OptimizerState]]],
    ) -> StepOutcome:
        """One update of the model: ``update(model)`` gives the loss before it and the new
        parameters and optimizer state (computed where the operations layer places it), which
        are committed as the next version."""
        losses: list[float] = []

        async def step(model: LoadedModel) -> tuple[Params, OptimizerState]:
            loss, params, state = await update(model)
            losses.append(loss)
            return params, state

        record = await self._commit(name, expected_version, "train-step", step)
        return StepOutcome(losses[-1], record)

    async def compute(
        self, network: Network, fn: Callable[..., T], *args: Any, data: ArrayLike | None = None
    ) -> T:
        """Run ``fn(*args)`` inline when it is small, in a worker thread when it is large."""
        rows = len(data) if isinstance(data, list) else 1
        if isinstance(data, np.ndarray) and data.ndim:
            rows = int(data.shape[0])
        return await self.execute(rows * network.parameter_count, fn, *args)

    async def execute(self, multiply_adds: int, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, a computation of ``multiply_adds``: inline when that is small (a hop to
        a thread would cost more), in a worker thread when it is large."""
        if multiply_adds <= INLINE_COMPUTE_LIMIT:
            return fn(*args)
        return await self._pool.run(fn, *args)

    async def isolate(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, large work that is not one of the core's computations (drawing,
        writing or reading a file): in a worker process when the store has them (``fn`` and
        ``args`` must pickle; parameters among ``args`` are shared, not copied), else in a
        worker thread below the event loop's priority."""
        if self.workers is None:
            return await self._pool.run(fn, *args)
        return await self.workers.run(fn, *args)

    async def offload(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a worker thread below the event loop's priority (for large work that is
        not a computation of the core: serialising a large answer)."""
        return await self._pool.run(fn)

    async def gradient(
        self, network: Network, params: Params, X: ArrayLike, T: ArrayLike
    ) -> GradientResult:
        return await self.compute(network, gradient, network, params, X, T, data=X)

    # -- internals ----------------------------------------------------------------------------

    async def _commit(
        self,
        name: str,
        expected_version: int | None,
        reason: str,
        update: Callable[[LoadedModel], Awaitable[tuple[Params, OptimizerState]]],
    ) -> ModelRecord:
        """Read, compute, compare-and-swap; retried when another process got in between.

        The per-model lock serialises writers in this process, so retries happen only when
        other processes write to the same model.
        """
        async with self._lock(name):
            for _ in range(CAS_RETRIES):
                model = await self.load(name)
                if expected_version is not None and model.version != expected_version:
                    raise VersionConflict(name, expected_version, model.version)
                params, state = await update(model)
                try:
                    record = await run_in_threadpool(
                        self._pack_and_commit, name, params, state, model, reason
                    )
                except VersionConflict:
                    if expected_version is not None:
                        raise
                    continue
                self._remember(
                    replace(
                        model, record=record, version=record.version, params=params, state=state
                    )
                )
                return record
        raise VersionConflict(name, model.version, await self.current_version(name))

    def _pack_and_commit(
        self, name: str, params: Params, state: OptimizerState, base: LoadedModel, reason: str
    ) -> ModelRecord:
        """Commit on top of ``base``: refused if the model changed, or is another one now."""
        arrays = specs.pack(params, state)
        return self.registry.commit(
            name, arrays, base.version, reason, created=base.record.created_at
        )

    async def refuse_if_training(self, name: str) -> None:
        """ModelBusy naming the job if a training job is changing the model.

        The registry refuses every other write while a job runs (atomically, in the write
        itself); this early check only answers before work whose result would be refused.
        """
        job = await run_in_threadpool(self.registry.jobs.active_job, name)
        if job is not None:
            raise ModelBusy(name, job)

    async def _current_state(self, name: str) -> tuple[int, datetime]:
        if self.registry.inline_reads:
            return self.registry.current_state(name)
        return await run_in_threadpool(self.registry.current_state, name)

    async def current_version(self, name: str) -> int:
        """The model's current version (ModelNotFound if none)."""
        if self.registry.inline_reads:
            return self.registry.current_version(name)
        return await run_in_threadpool(self.registry.current_version, name)

    def _remember(self, loaded: LoadedModel) -> None:
        self._cache.put(loaded.record.name, loaded)

    def _lock(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[name] = lock
        return lock

    def close(self) -> None:
        self._pool.close()
        if self.workers is not None:
            self.workers.close()
        self._cache.clear()
        self.registry.close()


def _nbytes(model: LoadedModel) -> int:
    """Bytes of a loaded model's arrays: its parameters and its optimizer state."""
    arrays = [a for layer in model.params for a in (layer.W, layer.b)]
    arrays += [
        a for slot in model.state.slots.values() for layer in slot for a in (layer.W, layer.b)
    ]
    return sum(a.nbytes for a in arrays)
