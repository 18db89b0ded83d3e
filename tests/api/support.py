"""Shared helpers of the HTTP tests: apps closed after use, the seed's worked example, an
independent NumPy reference of backpropagation, tolerant comparisons and problem-response
checks."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Protocol

import httpx
import numpy as np
from fastapi import FastAPI
from numpy.typing import NDArray

from service.api.app import create_app
from service.settings import Settings
from tests.seed import SEED as SEED

JSON = Any
Array = NDArray[np.float64]
Layers = list[tuple[Array, Array]]

TOL = 1e-12
PROBLEM_JSON = "application/problem+json"


SEED_NETWORK: dict[str, JSON] = {**SEED["network"], "loss": "half_squared_error"}
SEED_INPUTS: list[list[float]] = [SEED["input"]]
SEED_TARGETS: list[list[float]] = [SEED["target"]]
SEED_DATA: dict[str, JSON] = {"inputs": SEED_INPUTS, "targets": SEED_TARGETS}
SEED_LR: float = SEED["learning_rate"]
SEED_ACTIVATIONS: list[str] = [layer["activation"] for layer in SEED_NETWORK["layers"]]
NODES = [f"n{k}" for k in range(3, 10)]  # n3..n9: the non-input nodes of the 2-3-3-1 network


def layered(weights: Sequence[JSON], biases: Sequence[JSON]) -> dict[str, JSON]:
    """The API's layered notation from the file's separate weight and bias lists."""
    return {"layers": [{"weights": w, "biases": b} for w, b in zip(weights, biases, strict=True)]}


SEED_PARAMETERS = layered(SEED["parameters"]["weights"], SEED["parameters"]["biases"])
SEED_PARAMETERS_NAMED: dict[str, float] = SEED["parameters_named"]
SEED_GRADIENTS = layered(SEED["gradients"]["weights"], SEED["gradients"]["biases"])
AFTER_STEP = layered(SEED["after_one_sgd_step"]["weights"], SEED["after_one_sgd_step"]["biases"])
AFTER_STEP_NAMED: dict[str, float] = SEED["after_one_sgd_step"]["named"]


def seed_model(name: str = "seed", *, named: bool = False, **extra: JSON) -> dict[str, JSON]:
    """The body that creates the seed network with the seed's parameters."""
    parameters = SEED_PARAMETERS_NAMED if named else SEED_PARAMETERS
    return {"name": name, "network": SEED_NETWORK, "parameters": parameters, **extra}


def client_for(app: FastAPI) -> httpx.AsyncClient:
    """An HTTP client on the app, in process; server errors come back as 500 responses."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


class AppFactory(Protocol):
    """Builds an app with the settings given (the factory's registry, and the defaults for the
    rest, where they name none); every app built is closed at teardown."""

    def __call__(self, **settings: Any) -> FastAPI: ...


@contextmanager
def closing_apps(registry: str) -> Iterator[AppFactory]:
    """A factory of apps on ``registry`` that closes every app it built on exit."""
    apps: list[FastAPI] = []

    def make(**settings: Any) -> FastAPI:
        app = create_app(Settings(**{"registry": registry, **settings}))
        apps.append(app)
        return app

    try:
        yield make
    finally:
        for app in apps:
            app.state.store.close()


@asynccontextmanager
async def seeded_client(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a new app on a memory registry that holds the seed model ``seed``, built with
    the settings given; the app is closed on exit."""
    with closing_apps("memory://") as make:
        async with client_for(make(**settings)) as client:
            await create_seed(client)
            yield client


async def create_seed(
    client: httpx.AsyncClient, name: str = "seed", *, named: bool = False, **extra: JSON
) -> dict[str, JSON]:
    response = await client.post("/v1/models", json=seed_model(name, named=named, **extra))
    assert response.status_code == 201, response.text
    body: dict[str, JSON] = response.json()
    return body


async def parameters_of(
    client: httpx.AsyncClient, name: str, *, notation: str = "layered", version: int | None = None
) -> JSON:
    params: dict[str, str | int] = {"notation": notation}
    if version is not None:
        params["version"] = version
    response = await client.get(f"/v1/models/{name}/parameters", params=params)
    assert response.status_code == 200, response.text
    return response.json()["parameters"]


async def version_of(client: httpx.AsyncClient, name: str) -> int:
    response = await client.get(f"/v1/models/{name}")
    assert response.status_code == 200, response.text
    version: int = response.json()["version"]
    return version


# -- comparisons ----------------------------------------------------------------------------


def assert_close(actual: JSON, expected: JSON, tol: float = TOL, where: str = "") -> None:
    """Same structure (dict keys, list lengths) and every number within ``tol`` (absolute,
    relative above 1)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where or '/'}: expected an object, got {actual!r}"
        assert set(actual) == set(expected), f"{where or '/'}: keys {sorted(actual)}"
        for key, value in expected.items():
            assert_close(actual[key], value, tol, f"{where}/{key}")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, list), f"{where or '/'}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), f"{where or '/'}: length {len(actual)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_close(a, e, tol, f"{where}/{i}")
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), (
            f"{where or '/'}: expected a number, got {actual!r}"
        )
        assert math.isfinite(actual), f"{where or '/'}: {actual!r} is not finite"
        assert abs(actual - expected) <= tol * max(1.0, abs(expected)), (
            f"{where or '/'}: {actual!r} != {expected!r} (tolerance {tol})"
        )
    else:
        assert actual == expected, f"{where or '/'}: {actual!r} != {expected!r}"


def assert_problem(
    response: httpx.Response,
    status: int,
    *,
    type_suffix: str | None = None,
    pointer: str | None = None,
    pointer_prefix: str | None = None,
    parameter: str | None = None,
) -> dict[str, JSON]:
    """An RFC 9457 problem with ``status``; with ``pointer`` (or ``pointer_prefix``) a
    validation problem whose ``errors`` name that place in the body, with ``parameter`` one
    whose ``errors`` name that query parameter."""
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.text[:2000]}"
    )
    content_type = response.headers.get("content-type", "")
    assert content_type.split(";")[0].strip() == PROBLEM_JSON, content_type
    body: dict[str, JSON] = response.json()
    for key in ("type", "title", "status", "detail", "error"):
        assert key in body, f"problem lacks {key!r}: {body}"
    assert isinstance(body["type"], str) and body["type"], body
    assert isinstance(body["title"], str) and body["title"], body
    assert body["status"] == status, body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert body["error"] == body["detail"], body
    if type_suffix is not None:
        assert body["type"].endswith(type_suffix), body["type"]
    if pointer is not None or pointer_prefix is not None:
        errors = body.get("errors")
        assert isinstance(errors, list) and errors, f"no errors list: {body}"
        for error in errors:
            assert isinstance(error.get("message"), str) and error["message"], error
            assert isinstance(error.get("pointer"), str), error
        pointers = [error["pointer"] for error in errors]
        if pointer is not None:
            assert pointer in pointers, f"expected pointer {pointer!r}, got {pointers}"
        if pointer_prefix is not None:
            assert any(p.startswith(pointer_prefix) for p in pointers), (
                f"expected a pointer under {pointer_prefix!r}, got {pointers}"
            )
    if parameter is not None:
        errors = body.get("errors")
        assert isinstance(errors, list) and errors, f"no errors list: {body}"
        assert parameter in [error.get("parameter") for error in errors], errors
        assert all(isinstance(error.get("message"), str) for error in errors), errors
    if status == 405:
        assert response.headers.get("allow"), "a 405 names the allowed methods in Allow"
    return body


async def snapshot(client: httpx.AsyncClient) -> dict[str, JSON]:
    """Everything a client can see of the registry: every model (as listed, with its version)
    and its current parameters."""
    models: list[JSON] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 500}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get("/v1/models", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        models.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    state: dict[str, JSON] = {"total": len(models), "models": {}}
    for model in models:
        name = model["name"]
        got = await client.get(f"/v1/models/{name}")
        assert got.status_code == 200, got.text
        state["models"][name] = {
            "listed": model,
            "model": got.json(),
            "parameters": await parameters_of(client, name),
        }
    return state


# -- an independent reference of backpropagation (checked against the worked example) -------


def arrays(parameters: JSON) -> Layers:
    """NumPy ``(W, b)`` pairs of layered JSON parameters."""
    return [
        (np.array(layer["weights"], dtype=np.float64), np.array(layer["biases"], dtype=np.float64))
        for layer in parameters["layers"]
    ]


def as_json(layers: Layers) -> dict[str, JSON]:
    return {"layers": [{"weights": W.tolist(), "biases": b.tolist()} for W, b in layers]}


def _activate(kind: str, z: Array) -> Array:
    if kind == "relu":
        return np.maximum(z, 0.0)
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if kind == "identity":
        return z
    raise AssertionError(f"the reference has no {kind}")


def _derivative(kind: str, z: Array, a: Array) -> Array:
    if kind == "relu":
        return (z > 0).astype(np.float64)
    if kind == "sigmoid":
        return a * (1.0 - a)
    if kind == "identity":
        return np.ones_like(z)
    raise AssertionError(f"the reference has no {kind}")


def reference_gradient(
    layers: Layers, activations: Sequence[str], inputs: JSON, targets: JSON
) -> tuple[float, Layers]:
    """Mean half-squared-error loss over the batch and its gradient, from the chain rule."""
    x = np.array(inputs, dtype=np.float64)
    t = np.array(targets, dtype=np.float64)
    nets: list[Array] = []
    outs: list[Array] = [x]
    for (W, b), kind in zip(layers, activations, strict=True):
        nets.append(outs[-1] @ W + b)
        outs.append(_activate(kind, nets[-1]))
    rows = x.shape[0]
    loss = float(np.mean(0.5 * np.sum((t - outs[-1]) ** 2, axis=1)))
    delta = (outs[-1] - t) / rows * _derivative(activations[-1], nets[-1], outs[-1])
    grads: Layers = []
    for l in range(len(layers) - 1, -1, -1):
        grads.insert(0, (outs[l].T @ delta, delta.sum(axis=0)))
        if l > 0:
            back = delta @ layers[l][0].T
            delta = back * _derivative(activations[l - 1], nets[l - 1], outs[l])
    return loss, grads


def reference_sgd(
    layers: Layers,
    activations: Sequence[str],
    inputs: JSON,
    targets: JSON,
    learning_rate: float,
    steps: int,
) -> tuple[Layers, list[float]]:
    """``steps`` plain SGD steps; the parameters after them and the loss before each."""
    losses: list[float] = []
    for _ in range(steps):
        loss, grads = reference_gradient(layers, activations, inputs, targets)
        losses.append(loss)
        layers = [
            (W - learning_rate * gW, b - learning_rate * gb)
            for (W, b), (gW, gb) in zip(layers, grads, strict=True)
        ]
    return layers, losses


SOFT_NETWORK = {
    "inputs": 2,
    "layers": [{"units": 2, "activation": "softmax"}],
    "loss": "cross_entropy",
}
SOFT_PARAMETERS = {"layers": [{"weights": [[0.1, -0.2], [0.3, 0.4]], "biases": [0.0, 0.1]}]}


class Pool:
    """One populated app per backend, shared by the tests of this module (building an app and
    its first requests is most of a test's time). Each test gets it only in its pristine
    state: when a test changed anything, the next one gets a new app on new storage."""

    def __init__(self, url: Callable[[int], str]) -> None:
        self._url = url
        self._built = 0
        self._app: FastAPI | None = None
        self._client: httpx.AsyncClient | None = None
        self._pristine: JSON = None

    async def client(self) -> httpx.AsyncClient:
        if self._client is not None and await snapshot(self._client) == self._pristine:
            return self._client
        await self.close()
        self._app = create_app(Settings(registry=self._url(self._built)))
        self._built += 1
        self._client = client_for(self._app)
        await self._client.__aenter__()
        await create_seed(self._client)
        created = await self._client.post(
            "/v1/models",
            json={"name": "soft", "network": SOFT_NETWORK, "parameters": SOFT_PARAMETERS},
        )
        assert created.status_code == 201, created.text
        self._pristine = await snapshot(self._client)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._app is not None:
            self._app.state.store.close()
            self._app = None
