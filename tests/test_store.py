"""The model store: parameters cached by version, compare-and-swap writes retried."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from service import specs
from service.core import Layer, Network, initialize
from service.operations import Limits, Operations
from service.registry import MemoryRegistry, Snapshot, VersionConflict, open_registry
from service.store import ModelStore, StepOutcome

NETWORK = Network(2, (Layer(3, "tanh"), Layer(1, "sigmoid")), "half_squared_error")
SPEC: dict[str, Any] = {
    "network": specs.network_to_dict(NETWORK),
    "optimizer": {"kind": "sgd", "learning_rate": 0.1},
}


class CountingRegistry(MemoryRegistry):
    """Counts the reads of parameter arrays."""

    def __init__(self) -> None:
        super().__init__()
        self.snapshots = 0

    def snapshot(self, name: str, version: int | None = None) -> Snapshot:
        self.snapshots += 1
        return super().snapshot(name, version)


LIMITS = Limits(max_seconds=30.0, rate=1e9, max_memory=1 << 30, max_answer=1 << 28)


async def train_step(
    store: ModelStore, name: str, X: Any, T: Any, rate: float | None
) -> StepOutcome:
    """A train-step as the service makes one: through the operations layer, on ``store``."""
    return await Operations(store, LIMITS).train_step(name, X, T, rate, None)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_loads_read_parameters_once_per_version() -> None:
    registry = CountingRegistry()
    store = ModelStore(registry)
    await store.create("m", SPEC, initialize(NETWORK, "xavier_uniform", 1))
    for _ in range(10):
        await store.load("m")
    assert registry.snapshots == 1
    await train_step(store, "m", [[0.5, -0.5]], [[1.0]], None)
    loaded = await store.load("m")
    assert loaded.version == 2
    assert registry.snapshots == 1, "a write of this process refreshes the cache itself"
    store.close()


@pytest.mark.anyio
async def test_a_change_made_elsewhere_is_seen_at_once() -> None:
    registry = CountingRegistry()
    store = ModelStore(registry)
    other = ModelStore(registry)  # another replica on the same storage
    await store.create("m", SPEC, initialize(NETWORK, "xavier_uniform", 1))
    before = await store.load("m")
    await train_step(other, "m", [[0.5, -0.5]], [[1.0]], None)
    after = await store.load("m")
    assert after.version == 2
    assert not np.array_equal(before.params[0].W, after.params[0].W)
    store.close()


class InterferingRegistry(MemoryRegistry):
    """Makes another process's commit land between a read and the first commit."""

    def __init__(self) -> None:
        super().__init__()
        self.interfere = False

    def commit(
        self,
        name: str,
        arrays: Any,
        expected_version: int,
        reason: str,
        created: datetime | None = None,
    ) -> Any:
        if self.interfere:
            self.interfere = False
            current = super().snapshot(name)
            super().commit(name, current.arrays, current.version, "other process")
        return super().commit(name, arrays, expected_version, reason, created)


@pytest.mark.anyio
async def test_train_step_retries_when_another_process_wrote_first() -> None:
    registry = InterferingRegistry()
    store = ModelStore(registry)
    await store.create("m", SPEC, initialize(NETWORK, "xavier_uniform", 1))
    registry.interfere = True
    outcome = await train_step(store, "m", [[0.5, -0.5]], [[1.0]], None)
    assert outcome.record.version == 3
    assert [v.reason for v in registry.versions("m")] == ["train-step", "other process", "create"]
    store.close()


def _priority_and_thread() -> tuple[int, int]:
    thread = threading.get_native_id()
    return os.getpriority(os.PRIO_PROCESS, thread), thread


def _policy_and_thread() -> tuple[int, int]:
    return os.sched_getscheduler(0), threading.get_native_id()


async def _seen_by(
    probe: Callable[[], tuple[int, int]], **settings: Any
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """What ``probe`` sees on the event loop, in a small computation and in a large one, on a
    store built with ``settings``."""
    store = ModelStore(MemoryRegistry(), **settings)
    try:
        loop = probe()
        small = await store.compute(NETWORK, probe, data=np.zeros((1, 2)))
        large = await store.compute(NETWORK, probe, data=np.zeros((100_000, 2)))
    finally:
        store.close()
    return loop, small, large


@pytest.mark.skipif(sys.platform != "linux", reason="thread priorities are per thread on Linux")
@pytest.mark.anyio
async def test_large_computations_run_below_the_event_loops_priority() -> None:
    loop, small, large = await _seen_by(_priority_and_thread, compute_nice=3)
    loop_priority, loop_thread = loop
    assert small == (loop_priority, loop_thread)  # inline, on the loop
    assert large[1] != loop_thread
    assert large[0] == min(19, loop_priority + 3)


@pytest.mark.skipif(sys.platform != "linux", reason="SCHED_IDLE is Linux's")
@pytest.mark.anyio
async def test_with_compute_idle_large_computations_run_in_the_idle_class() -> None:
    loop, small, large = await _seen_by(_policy_and_thread, compute_idle=True)
    loop_policy, loop_thread = loop
    assert small == (loop_policy, loop_thread) and loop_policy == os.SCHED_OTHER
    assert large[1] != loop_thread
    assert large[0] == os.SCHED_IDLE


@pytest.mark.anyio
async def test_a_model_created_again_elsewhere_is_not_served_or_overwritten_from_the_cache(
    tmp_path: Any,
) -> None:
    """Two processes on one registry: B caches model m, A deletes it and creates another m
    (a wider network, at version 1 again). B must serve the new one, and its train-step must
    be computed on the new one."""
    url = f"sqlite:///{tmp_path}/shared.db"
    a, b = ModelStore(open_registry(url)), ModelStore(open_registry(url))
    wide = Network(2, (Layer(7, "tanh"), Layer(1, "sigmoid")), "half_squared_error")
    wide_spec = {**SPEC, "network": specs.network_to_dict(wide)}
    try:
        await a.create("m", SPEC, initialize(NETWORK, "xavier_uniform", 1))
        assert (await b.load("m")).network == NETWORK  # now in B's cache
        await a.delete("m", None)
        await a.create("m", wide_spec, initialize(wide, "xavier_uniform", 2))
        loaded = await b.load("m")
        assert loaded.network == wide and loaded.params[0].W.shape == (2, 7)
        outcome = await train_step(b, "m", [[0.1, 0.2]], [[0.5]], 0.1)
        assert outcome.record.version == 2
        stored = await a.load("m")
        assert stored.network == wide and stored.params[0].W.shape == (2, 7)
    finally:
        a.close()
        b.close()


def test_a_commit_on_a_model_created_again_is_a_conflict(tmp_path: Any) -> None:
    registry = open_registry(f"sqlite:///{tmp_path}/r.db")
    try:
        first = registry.create("m", SPEC, specs.pack(initialize(NETWORK, "zeros", 0), None))
        registry.delete("m")
        registry.create("m", SPEC, specs.pack(initialize(NETWORK, "zeros", 0), None))
        arrays = specs.pack(initialize(NETWORK, "uniform", 1), None)
        with pytest.raises(VersionConflict):
            registry.commit("m", arrays, 1, "stale", created=first.created_at)
        assert registry.current_version("m") == 1
    finally:
        registry.close()
