"""Helpers of the job tests: networks and data, waiting for a job, holding a job's worker after
a given step, and an independent reference of mini-batch training (NumPy, the chain rule of
tests.api.support, the documented shuffle)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import httpx
import numpy as np
from numpy.random import PCG64, Generator

from service.jobs.runner import JobRunner
from tests.api.support import Layers, reference_gradient

JSON = Any
ENDED = ("succeeded", "failed", "cancelled", "interrupted")

XOR: dict[str, JSON] = {
    "inputs": [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]],
    "targets": [[0.0], [1.0], [1.0], [0.0]],
}


def model(name: str, layers: Sequence[tuple[int, str]], inputs: int = 2, **extra: JSON) -> JSON:
    """The body creating a half-squared-error network with xavier_uniform, seed 1."""
    return {
        "name": name,
        "network": {
            "inputs": inputs,
            "layers": [{"units": u, "activation": a} for u, a in layers],
            "loss": "half_squared_error",
        },
        "init": {"scheme": "xavier_uniform", "seed": 1},
        **extra,
    }


SMALL = [(3, "relu"), (3, "relu"), (1, "sigmoid")]  # the seed's 2-3-3-1 shape
WIDE = [(32, "relu"), (32, "relu"), (1, "sigmoid")]


def noisy(rows: int, inputs: int = 2, seed: int = 0) -> dict[str, JSON]:
    """``rows`` random samples whose target is a smooth function of the inputs."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (rows, inputs))
    T = 1 / (1 + np.exp(-X.sum(axis=1, keepdims=True)))
    return {"inputs": X.tolist(), "targets": T.tolist()}


async def create(client: httpx.AsyncClient, body: JSON) -> JSON:
    response = await client.post("/v1/models", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def train(client: httpx.AsyncClient, name: str, **body: JSON) -> JSON:
    """Start a job; asserts the 202 and its Location."""
    response = await client.post(f"/v1/models/{name}/train", json=body)
    assert response.status_code == 202, response.text
    job: JSON = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    return job


async def job_of(client: httpx.AsyncClient, job_id: str) -> JSON:
    response = await client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def wait_for(
    client: httpx.AsyncClient,
    job_id: str,
    states: Sequence[str] = ENDED,
    *,
    step: int | None = None,
    timeout: float = 60.0,
) -> JSON:
    """Poll the job until its state is one of `states` (and, with `step`, its last checkpoint
    has reached that step)."""
    deadline = time.monotonic() + timeout
    while True:
        job = await job_of(client, job_id)
        if job["state"] in states and (
            step is None or (job["checkpoint"] or {"step": -1})["step"] >= step
        ):
            return job
        assert time.monotonic() < deadline, f"job still {job['state']}: {job}"
        await anyio.sleep(0.02)


async def parameters_text(client: httpx.AsyncClient, name: str) -> str:
    """The model's parameters as JSON text: equal texts are bit-identical floats."""
    response = await client.get(f"/v1/models/{name}/parameters")
    assert response.status_code == 200, response.text
    return json.dumps(response.json()["parameters"])


def events_of(text: str) -> list[dict[str, JSON]]:
    """The events of a ``text/event-stream`` body: ``{"id", "event", "data"}`` each."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value
        if "data" in fields:
            events.append(
                {
                    "id": int(fields["id"]),
                    "event": fields["event"],
                    "data": json.loads(fields["data"]),
                }
            )
    return events


def reference_training(
    layers: Layers,
    activations: Sequence[str],
    inputs: JSON,
    targets: JSON,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    validation_split: float | None = None,
) -> tuple[Layers, list[float], list[float | None]]:
    """Plain-SGD mini-batch training as the API documents it, written independently: the
    parameters after it, each epoch's mean batch loss (weighted by rows) and validation loss."""
    X, T = np.array(inputs), np.array(targets)
    n = len(X)
    rng = Generator(PCG64(seed))
    train, validation = np.arange(n), None
    if validation_split:
        order = rng.permutation(n)
        held = max(1, round(validation_split * n))
        validation, train = order[:held], np.sort(order[held:])
    losses: list[float] = []
    validation_losses: list[float | None] = []
    for _ in range(epochs):
        order = train[rng.permutation(len(train))]
        total = 0.0
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            loss, grads = reference_gradient(layers, activations, X[rows], T[rows])
            total += loss * len(rows)
            layers = [
                (W - learning_rate * gW, b - learning_rate * gb)
                for (W, b), (gW, gb) in zip(layers, grads, strict=True)
            ]
        losses.append(total / len(train))
        if validation is None:
            validation_losses.append(None)
        else:
            v = validation
            validation_losses.append(reference_gradient(layers, activations, X[v], T[v])[0])
    return layers, losses, validation_losses


class Pause:
    """Holds a job's worker thread right after its `step`-th optimizer step, until released.

    Installed as the runner's step hook, in front of the metrics' counter.
    """

    def __init__(self, runner: JobRunner, step: int) -> None:
        self.runner, self.step, self.seen = runner, step, 0
        self.reached, self.released = threading.Event(), threading.Event()
        self.count: Callable[[], None] = runner.count_steps
        runner.count_steps = self

    def __call__(self) -> None:
        self.count()
        self.seen += 1
        if self.seen == self.step:
            self.reached.set()
            assert self.released.wait(30), "the test never released the job"

    async def wait(self) -> None:
        assert await anyio.to_thread.run_sync(self.reached.wait, 30), "the job never got there"

    def release(self) -> None:
        self.runner.count_steps = self.count
        self.released.set()
