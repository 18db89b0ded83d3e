"""Crash safety: a server killed with SIGKILL in the middle of a stream of concurrent
train-steps loses no acknowledged version and shows no partial write after a restart.

Every step uses the same sample and learning rate, so whichever client made it, version v's
parameters are the seed's parameters after v - 1 SGD steps, which this test recomputes in
process with the numeric core and compares bit for bit (JSON floats round-trip exactly).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from service.core import SGD, Layer, Network, check_parameters, gradient, step
from tests.api.support import seed_model
from tests.reliability.support import strict_json
from tests.seed import SEED
from tests.servers import Server, start

SEED_NETWORK = Network(
    2, (Layer(3, "relu"), Layer(3, "relu"), Layer(1, "sigmoid")), "half_squared_error"
)
SEED_WEIGHTS: list[Any] = SEED["parameters"]["weights"]
SEED_BIASES: list[Any] = SEED["parameters"]["biases"]
SAMPLE: dict[str, Any] = {"inputs": [[0.23, 0.55]], "targets": [[0.01]], "learning_rate": 0.01}

CLIENTS = 4
ROUNDS = 2  # kill, restart, train on, kill again, then check
ACKS_BEFORE_KILL = 40  # acknowledged steps per round before the kill
MAX_STEPS_PER_CLIENT = 2_000
ROUND_SECONDS = 60.0
ENV = {"BACKPROP_KEEP_VERSIONS": "1000", "BACKPROP_LOG_LEVEL": "warning"}


def iterates(n: int) -> list[list[dict[str, list[Any]]]]:
    """The seed's parameters after 0, 1, ..., n - 1 SGD steps, in the API's layered form."""
    params = check_parameters(SEED_NETWORK, list(zip(SEED_WEIGHTS, SEED_BIASES, strict=True)))
    out = []
    for _ in range(n):
        out.append([{"weights": p.W.tolist(), "biases": p.b.tolist()} for p in params])
        result = gradient(SEED_NETWORK, params, SAMPLE["inputs"], SAMPLE["targets"])
        params, _state = step(SGD(SAMPLE["learning_rate"]), params, result.gradients)
    return out


class TrainingStream:
    """Client threads sending train-steps until the server goes away; records every 200."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acknowledged: list[int] = []
        self.server_errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def client(self) -> None:
        deadline = time.monotonic() + ROUND_SECONDS
        with httpx.Client(base_url=self.url, timeout=10) as http:
            for _ in range(MAX_STEPS_PER_CLIENT):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    response = http.post("/v1/models/seed/train-step", json=SAMPLE)
                except httpx.TransportError:
                    return  # the server was killed; this step may or may not have committed
                with self._lock:
                    if response.status_code == 200:
                        self.acknowledged.append(strict_json(response.text)["version"])
                    else:
                        self.server_errors.append(f"{response.status_code} {response.text}")
                        return

    def acks(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def stop(self) -> None:
        self._stop.set()


def train_until_killed(server: Server) -> list[int]:
    """Train from several threads, SIGKILL the server mid-stream; the acknowledged versions."""
    stream = TrainingStream(server.url)
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(stream.client) for _ in range(CLIENTS)]
        deadline = time.monotonic() + ROUND_SECONDS
        while stream.acks() < ACKS_BEFORE_KILL and time.monotonic() < deadline:
            if any(f.done() for f in futures):
                break
            time.sleep(0.01)
        server.kill()  # SIGKILL while the clients are still sending
        log = server.log()  # also closes the pipe
        stream.stop()
        for future in futures:
            future.result()
    assert not stream.server_errors, (stream.server_errors[:3], log)
    assert len(stream.acknowledged) >= ACKS_BEFORE_KILL, "the stream ended before the kill"
    assert len(set(stream.acknowledged)) == len(stream.acknowledged), "a version acked twice"
    return stream.acknowledged


def test_sigkill_mid_training_loses_no_acknowledged_version(shared_registry: str) -> None:
    acknowledged: list[int] = []
    server = start("--registry", shared_registry, env=ENV)
    try:
        created = httpx.post(f"{server.url}/v1/models", json=seed_model(), timeout=10)
        assert created.status_code == 201, created.text
        for round_ in range(ROUNDS):
            if round_:
                server = start("--registry", shared_registry, env=ENV)
            acknowledged += train_until_killed(server)
        server = start("--registry", shared_registry, env=ENV)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            record = strict_json(http.get("/v1/models/seed").text)
            final = record["version"]
            assert final >= max(acknowledged)
            print(
                f"{len(acknowledged)} train-steps acknowledged over {ROUNDS} kills, the newest "
                f"v{max(acknowledged)}; after the restart the model is at v{final}"
            )

            # No partial write: the kept versions are exactly 1..final, and each decodes to
            # the recomputed iterate, acknowledged or not.
            kept = strict_json(http.get("/v1/models/seed/versions").text)["items"]
            assert [v["version"] for v in kept] == list(range(final, 0, -1))
            expected = iterates(final)
            for version in range(1, final + 1):
                response = http.get("/v1/models/seed/parameters", params={"version": version})
                assert response.status_code == 200, response.text
                body = strict_json(response.text)
                assert body["version"] == version
                assert body["parameters"]["layers"] == expected[version - 1], version

            # The registry still takes writes where it left off.
            after = http.post("/v1/models/seed/train-step", json=SAMPLE)
            assert after.status_code == 200, after.text
            assert strict_json(after.text)["version"] == final + 1
    finally:
        if server.process.poll() is None:
            server.stop()
