"""Heavy but valid requests on a real server: served within the memory setting (the whole
process tree measured) or refused with the estimate, never 5xx, while another client's
``/healthz`` keeps being answered."""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests import servers
from tests.api.support import assert_problem
from tests.health_probe import polling_health

MIB = 1 << 20
LIMIT = 256 * MIB
# Generous behavioural bound for the health check (the container's HEALTHCHECK gives up at
# 5 s); the benchmark suite reports the figures.
HEALTH_BOUND = 1.5


def network(*units: int, activation: str = "identity") -> dict[str, object]:
    return {
        "inputs": 1,
        "layers": [{"units": u, "activation": activation} for u in units],
        "loss": "half_squared_error",
    }


@pytest.fixture(scope="module")
def server() -> Iterator[servers.Server]:
    env = {
        "BACKPROP_REGISTRY": "memory://",
        "BACKPROP_MAX_REQUEST_MEMORY_BYTES": str(LIMIT),
        "BACKPROP_MAX_ANSWER_BYTES": str(64 * MIB),
    }
    server = servers.start(env=env)
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            for name, net in (("wide", network(4096, 1)), ("deep", network(1024, 1024, 1))):
                body = {"name": name, "network": net, "init": {"seed": 1}}
                assert client.post("/v1/models", json=body).status_code == 201
        yield server
    finally:
        server.stop()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_heavy_requests_stay_within_the_memory_setting(server: servers.Server) -> None:
    pid = server.process.pid
    before = servers.memory_kib(pid, "VmRSS") * 1024
    with (
        httpx.Client(base_url=server.url, timeout=120) as client,
        polling_health(server.url) as probe,
    ):
        # 100,000 rows of 4096 units: 6.5 GB of activations at once; served in blocks.
        X = np.linspace(-1, 1, 100_000).reshape(-1, 1)
        answer = client.post(
            "/v1/models/wide/forward",
            content=npy(X),
            headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"},
        )
        assert answer.status_code == 200, answer.text
        assert np.load(io.BytesIO(answer.content)).shape == (100_000, 1)
        # A deeper network of that kind, as JSON.
        deep = client.post("/v1/models/deep/forward", json={"inputs": X[:10_000].tolist()})
        assert deep.status_code == 200, deep.text
        assert len(deep.json()["outputs"]) == 10_000
        # A gradient over many rows, accumulated in blocks.
        T = np.zeros((20_000, 1))
        gradient = client.post(
            "/v1/models/wide/gradient", json={"inputs": X[:20_000].tolist(), "targets": T.tolist()}
        )
        assert gradient.status_code == 200, gradient.text
        # The answer that was 533 MB: refused before any work, saying what to change.
        rows = {"inputs": X[:1500].tolist(), "targets": T[:1500].tolist()}
        refused = client.post(
            "/v1/models/wide/gradient", json={**rows, "trace": True, "deltas": True}
        )
        problem = assert_problem(refused, 413, type_suffix="/work-too-large")
        assert "leave out trace and deltas" in problem["detail"]
    peak = servers.memory_kib(pid, "VmHWM") * 1024
    assert peak - before <= LIMIT, f"the server grew by {(peak - before) / MIB:.0f} MiB"
    assert set(probe.statuses) == {200}, probe.statuses
    assert probe.worst < HEALTH_BOUND, probe.describe()
    assert os.path.exists(f"/proc/{pid}")  # still serving


def test_json_bodies_over_8_mib_are_parsed_in_a_worker_from_their_chunks(
    server: servers.Server,
) -> None:
    """A JSON body over 8 MiB arrives in many chunks and goes to a worker process as they are
    (not joined on the event loop): it answers as a small body would, the valid one with the
    numbers of an independent computation, the invalid one with the pointer of its error."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60_000, 10))
    body = json.dumps({"inputs": X.tolist()}).encode()
    assert len(body) > 8 * MIB
    ten = {"inputs": 10, "layers": [{"units": 3, "activation": "identity"}] * 2}
    with httpx.Client(base_url=server.url, timeout=120) as client:
        created = client.post(
            "/v1/models",
            json={"name": "ten", "network": {**ten, "loss": "half_squared_error"}},
        )
        assert created.status_code == 201, created.text
        params = client.get("/v1/models/ten/parameters").json()["parameters"]["layers"]
        answer = client.post(
            "/v1/models/ten/forward",
            content=body,
            headers={"Content-Type": "application/json", "Accept": "application/x-npy"},
        )
        assert answer.status_code == 200, answer.text
        (W0, b0), (W1, b1) = ((np.array(p["weights"]), np.array(p["biases"])) for p in params)
        expected = (X @ W0 + b0) @ W1 + b1
        np.testing.assert_allclose(np.load(io.BytesIO(answer.content)), expected, rtol=1e-9)
        rows = X.tolist()
        rows[12_345] = [1.0, 2.0]
        invalid = client.post(
            "/v1/models/ten/forward",
            content=json.dumps({"inputs": rows}).encode(),
            headers={"Content-Type": "application/json"},
        )
        problem = assert_problem(invalid, 422, pointer="/inputs")
        assert "row 12345 has 2" in problem["detail"], problem["detail"]


def test_a_server_killed_leaves_no_worker_behind() -> None:
    server = servers.start(env={"BACKPROP_REGISTRY": "memory://"})
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            body = {"name": "wide", "network": network(4096, 1), "init": {"seed": 1}}
            assert client.post("/v1/models", json=body).status_code == 201
            X = np.linspace(-1, 1, 20_000).reshape(-1, 1)
            answer = client.post("/v1/models/wide/forward", json={"inputs": X.tolist()})
            assert answer.status_code == 200, answer.text
        below = set(servers.processes(server.process.pid)) - {server.process.pid}
        assert below, "the forward ran in a worker process"
    finally:
        server.kill()  # SIGKILL: no shutdown of the pool
    for _ in range(100):
        alive = [pid for pid in below if os.path.exists(f"/proc/{pid}")]
        if not alive:
            break
        time.sleep(0.1)
    assert not alive, f"left behind: {alive}"
    assert server.log() is not None  # the log's pipe was closed: nothing holds it open
