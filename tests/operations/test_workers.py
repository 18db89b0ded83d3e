"""The worker processes of the large computations: the answers are those of the server's own
process, parameters are shared through a file rather than sent per request (and the file goes
when the parameters do), a computation past a worker's memory is a 413, and a worker that dies
is a 503 after which the pool serves again."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.api import endpoint
from service.api.problems import kind_of
from service.core import (
    Layer,
    Network,
    NonFiniteValue,
    ShapeMismatch,
    forward_outputs,
    gradient,
    initialize,
    mean_gradient,
)
from service.operations import Limits, Operations
from service.operations.sizes import LARGE_BODY
from service.registry import MemoryRegistry
from service.store import ModelStore
from service.workers import (
    SHARE_BYTES,
    SharedParams,
    WorkerLost,
    WorkerOutOfMemory,
    WorkerPool,
)
from tests.api.support import AppFactory, client_for

MIB = 1 << 20
LIMITS = Limits(max_seconds=30.0, rate=1e9, max_memory=256 * MIB, max_answer=64 * MIB)
WIDE = Network(
    4, (Layer(512, "tanh"), Layer(512, "sigmoid"), Layer(3, "identity")), "half_squared_error"
)


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    workers = WorkerPool(1, 10, False, 128 * MIB)
    yield workers
    workers.close()


def worker_pids(pool: WorkerPool) -> list[int]:
    executor = pool._executor
    assert executor is not None
    return list(executor._processes)


@pytest.mark.anyio
async def test_a_computation_runs_in_another_process(pool: WorkerPool) -> None:
    assert await pool.run(os.getpid) != os.getpid()


@pytest.mark.anyio
async def test_large_parameters_are_shared_through_one_file_per_version(pool: WorkerPool) -> None:
    params = initialize(WIDE, "xavier_uniform", 1)
    assert sum(p.W.nbytes + p.b.nbytes for p in params) >= SHARE_BYTES
    shared = pool.share(params)
    assert pool.share(params) is shared, "the same parameters are written once"
    assert isinstance(shared, SharedParams)
    path = Path(shared.path)
    assert path.stat().st_size == sum(p.W.nbytes + p.b.nbytes for p in params)
    X = np.random.default_rng(0).normal(size=(300, 4))
    ours = await pool.run(forward_outputs, WIDE, shared, X, 64)
    np.testing.assert_array_equal(ours, forward_outputs(WIDE, params, X, 64))
    del params, shared
    gc.collect()
    assert not path.exists(), "the file goes with the parameters it holds"


@pytest.mark.anyio
async def test_small_parameters_travel_with_the_request(pool: WorkerPool) -> None:
    net = Network(2, (Layer(3, "sigmoid"), Layer(1, "sigmoid")), "half_squared_error")
    params = initialize(net, "xavier_uniform", 1)
    assert pool.share(params) is params


def _digest(data: bytes | list[bytes]) -> tuple[str, int, str]:
    """In a worker: what it received (its kind, size and a hash of its bytes)."""
    import hashlib

    whole = data if isinstance(data, bytes) else b"".join(data)
    kind = "bytes" if isinstance(data, bytes) else f"list of {len(data)}"
    return kind, len(whole), hashlib.sha256(whole).hexdigest()


def _made(kind: str, size: int) -> Any:
    """In a worker: a result of ``size`` bytes of that kind."""
    data = bytes(range(256)) * (size // 256)
    if kind == "bytes":
        return data
    if kind == "chunks":
        return [data[: size // 2], data[size // 2 :]]
    return {"array": np.frombuffer(data, np.float64).copy(), "small": [1, "two"]}


def _files(pool: WorkerPool) -> list[Path]:
    return sorted(pool._directory().glob("*.in")) + sorted(pool._directory().glob("*.out"))


@pytest.mark.anyio
async def test_large_bytes_go_to_a_worker_through_a_file(pool: WorkerPool) -> None:
    import hashlib

    body = os.urandom(3 * MIB)
    digest = hashlib.sha256(body).hexdigest()
    assert await pool.run(_digest, body) == ("bytes", 3 * MIB, digest)
    # The chunks of a body arrive as one, in a list: what a decoder of joined chunks expects.
    chunks = [body[:MIB], body[MIB:]]
    assert await pool.run(_digest, chunks) == ("list of 1", 3 * MIB, digest)
    assert await pool.run(_digest, body[:1000]) == (
        "bytes",
        1000,
        hashlib.sha256(body[:1000]).hexdigest(),
    )
    assert _files(pool) == [], "the files go once the call is answered"


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["bytes", "chunks", "array"])
async def test_large_results_come_back_through_a_file_as_they_are(
    pool: WorkerPool, kind: str
) -> None:
    expected = _made(kind, 4 * MIB)
    result = await pool.run(_made, kind, 4 * MIB)
    if kind == "bytes":
        assert isinstance(result, memoryview) and bytes(result) == expected
    elif kind == "chunks":
        assert isinstance(expected, list)
        assert [bytes(part) for part in result] == expected
    else:
        assert isinstance(expected, dict)
        assert result["small"] == [1, "two"]
        np.testing.assert_array_equal(result["array"], expected["array"])
        result["array"][0] = 1.5  # a private mapping: writable, as a received array is
    assert _files(pool) == [], "the server removes a result's file once it has mapped it"
    small = await pool.run(_made, "bytes", 1024)
    assert isinstance(small, bytes) and len(small) == 1024, "small results travel as they are"


@pytest.mark.anyio
async def test_errors_of_the_core_cross_back_with_their_pointer(pool: WorkerPool) -> None:
    params = initialize(WIDE, "xavier_uniform", 1)
    X = np.ones((10, 4))
    X[7, 2] = np.nan
    with pytest.raises(NonFiniteValue) as raised:
        await pool.run(forward_outputs, WIDE, pool.share(params), X, 64)
    assert raised.value.pointer == "/inputs/7/2"
    with pytest.raises(ShapeMismatch) as wrong:
        await pool.run(gradient, WIDE, pool.share(params), np.ones((2, 4)), np.ones((3, 3)))
    assert wrong.value.pointer == "/targets"


@pytest.mark.anyio
async def test_an_allocation_past_the_worker_limit_is_work_too_large(pool: WorkerPool) -> None:
    with pytest.raises(WorkerOutOfMemory) as raised:
        await pool.run(np.ones, (64 * MIB,))  # 512 MiB of float64, over the 128 MiB limit
    kind = kind_of(raised.value)
    assert kind is not None and kind.status == 413
    assert await pool.run(sum, [1, 2]) == 3, "the worker serves on"


@pytest.mark.anyio
async def test_a_worker_that_dies_is_a_503_and_is_replaced(pool: WorkerPool) -> None:
    assert await pool.run(sum, [1, 2]) == 3
    (pid,) = worker_pids(pool)
    sleeping = asyncio.ensure_future(pool.run(time.sleep, 30))
    await asyncio.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(WorkerLost) as raised:
        await asyncio.wait_for(sleeping, 20)
    kind = kind_of(raised.value)
    assert kind is not None and kind.status == 503
    assert await pool.run(sum, [1, 2]) == 3
    assert worker_pids(pool) != [pid]


@pytest.mark.anyio
async def test_operations_place_large_work_in_the_workers_with_the_same_numbers(
    pool: WorkerPool,
) -> None:
    store = ModelStore(MemoryRegistry(), workers=pool)
    inline = Operations(ModelStore(MemoryRegistry()), LIMITS)
    isolated = Operations(store, LIMITS, process_seconds=0.0)
    params = initialize(WIDE, "xavier_uniform", 2)
    rng = np.random.default_rng(3)
    X, T = rng.normal(size=(500, 4)), rng.normal(size=(500, 3))
    np.testing.assert_array_equal(
        await isolated.outputs(WIDE, params, X), await inline.outputs(WIDE, params, X)
    )
    ours = await isolated.gradient(WIDE, params, X, T)
    theirs = mean_gradient(WIDE, params, X, T, 1 << 30)
    assert ours.loss == pytest.approx(theirs[0], rel=1e-13)
    for a, b in zip(ours.gradients, theirs[1], strict=True):
        np.testing.assert_allclose(a.W, b.W, rtol=1e-12, atol=1e-15)
    assert pool._executor is not None, "the work went to the pool"
    store.close()


def large_bodies() -> dict[str, bytes]:
    """JSON bodies above sizes.LARGE_BODY, valid and not, of the compute routes."""
    rng = np.random.default_rng(4)
    X, T = rng.normal(size=(15_000, 8)).round(6), rng.normal(size=(15_000, 2)).round(6)
    inputs, targets = X.tolist(), T.tolist()
    wrong = [*inputs[:-1], [*inputs[-1][:-1], "x"]]
    ragged = [*inputs[:-1], inputs[-1][:-1]]
    bodies = {
        "forward": {"inputs": inputs},
        "forward trace": {"inputs": inputs, "trace": True},
        "gradient": {"inputs": inputs, "targets": targets},
        "gradient deltas": {"inputs": inputs, "targets": targets, "deltas": True},
        "train-step": {"inputs": inputs, "targets": targets, "learning_rate": 0.1},
        "gradient wrong": {"inputs": wrong, "targets": targets},
        "gradient ragged": {"inputs": ragged, "targets": targets},
        "forward extra": {"inputs": inputs, "unknown": 1},
    }
    encoded = {name: json.dumps(body).encode() for name, body in bodies.items()}
    encoded["forward broken"] = encoded["forward"][:-7]
    assert all(len(b) > LARGE_BODY for b in encoded.values())
    return encoded


@pytest.mark.anyio
async def test_large_json_bodies_parsed_in_a_worker_answer_as_in_the_server(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(endpoint, "PROCESS_BODY", LARGE_BODY)  # these bodies: a worker's
    network = {
        "inputs": 8,
        "layers": [{"units": 16, "activation": "tanh"}, {"units": 2, "activation": "identity"}],
        "loss": "half_squared_error",
    }
    apps = {"processes": make_app(compute_processes=1), "threads": make_app(compute_processes=0)}
    answers: dict[str, list[tuple[int, object]]] = {}
    for side, app in apps.items():
        async with client_for(app) as client:
            created = await client.post(
                "/v1/models", json={"name": "m", "network": network, "init": {"seed": 1}}
            )
            assert created.status_code == 201, created.text
            answers[side] = []
            for name, body in large_bodies().items():
                path = name.split()[0]
                response = await client.post(
                    f"/v1/models/m/{path}",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                answers[side].append((response.status_code, response.json()))
    statuses = [status for status, _ in answers["processes"]]
    assert statuses == [200, 200, 200, 200, 200, 422, 422, 422, 400], statuses
    assert answers["processes"] == answers["threads"]
    assert apps["processes"].state.store.workers._executor is not None, "parsed in a worker"


@pytest.mark.anyio
@pytest.mark.skipif(sys.platform != "linux", reason="SCHED_IDLE and per-process nice: Linux")
async def test_workers_run_below_the_server(pool: WorkerPool) -> None:
    assert await pool.run(os.sched_getscheduler, 0) == os.SCHED_OTHER
    assert await pool.run(os.getpriority, os.PRIO_PROCESS, 0) >= 10
    idle = WorkerPool(1, 10, True, 128 * MIB)
    try:
        assert await idle.run(os.sched_getscheduler, 0) == os.SCHED_IDLE
    finally:
        idle.close()
