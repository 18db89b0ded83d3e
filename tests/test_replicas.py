"""Several server processes on one registry: every train-step counted once, none lost, and
every replica serving the newest version at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx
import numpy as np

from service.core import SGD, Layer, Network, check_parameters, gradient, step
from tests.api.support import seed_model
from tests.seed import SEED
from tests.servers import running

NETWORK = Network(
    2, (Layer(3, "relu"), Layer(3, "relu"), Layer(1, "sigmoid")), "half_squared_error"
)
SAMPLE = {"inputs": [SEED["input"]], "targets": [SEED["target"]], "learning_rate": 0.01}


def sequential_steps(n: int) -> list[list[float]]:
    """The seed's parameters after ``n`` SGD steps on its sample, computed in this process."""
    weights, biases = SEED["parameters"]["weights"], SEED["parameters"]["biases"]
    params = check_parameters(NETWORK, list(zip(weights, biases, strict=True)))
    for _ in range(n):
        result = gradient(NETWORK, params, [SEED["input"]], [SEED["target"]])
        params, _state = step(SGD(0.01), params, result.gradients)
    return [np.concatenate([p.W.ravel(), p.b]).tolist() for p in params]


def flat(parameters: dict[str, Any]) -> list[list[float]]:
    return [
        [w for row in layer["weights"] for w in row] + layer["biases"]
        for layer in parameters["layers"]
    ]


def test_three_replicas_lose_no_train_step(shared_registry: str) -> None:
    registry = shared_registry
    steps = 300
    with ExitStack() as stack:
        clients = [stack.enter_context(running("--registry", registry)) for _ in range(3)]
        assert clients[0].post("/v1/models", json=seed_model(named=True)).status_code == 201

        def train(i: int) -> int:
            response = clients[i % 3].post("/v1/models/seed/train-step", json=SAMPLE)
            assert response.status_code == 200, response.text
            version: int = response.json()["version"]
            return version

        with ThreadPoolExecutor(max_workers=24) as pool:
            versions = list(pool.map(train, range(steps)))
        assert sorted(versions) == list(range(2, steps + 2)), "each step made its own version"

        expected = sequential_steps(steps)
        for client in clients:
            forward = client.post("/v1/models/seed/forward", json={"inputs": SAMPLE["inputs"]})
            assert forward.json()["version"] == steps + 1
            got = client.get("/v1/models/seed/parameters").json()
            assert got["version"] == steps + 1
            np.testing.assert_allclose(
                np.concatenate(flat(got["parameters"])),
                np.concatenate(expected),
                rtol=0,
                atol=1e-12,
            )


def test_several_workers_share_one_registry(shared_registry: str) -> None:
    with running("--registry", shared_registry, "--workers", "2") as client:
        assert client.post("/v1/models", json=seed_model(named=True)).status_code == 201

        def train(_: int) -> int:
            with httpx.Client(base_url=str(client.base_url), timeout=30) as own:
                response = own.post("/v1/models/seed/train-step", json=SAMPLE)
                assert response.status_code == 200, response.text
                version: int = response.json()["version"]
                return version

        with ThreadPoolExecutor(max_workers=8) as pool:
            versions = list(pool.map(train, range(40)))
        assert sorted(versions) == list(range(2, 42))
        for _ in range(10):  # whichever worker answers, it serves the newest version
            forward = client.post("/v1/models/seed/forward", json={"inputs": SAMPLE["inputs"]})
            assert forward.json()["version"] == 41
