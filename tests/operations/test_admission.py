"""Every computation is admitted by its estimated memory and answer size before it runs:
large batches without a trace are served in blocks within the memory limit; work that would
pass a limit gets a 413 problem that says the estimate, the limit and what to change, and
changes nothing."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest

from tests.api.support import AppFactory, assert_problem, client_for

MIB = 1 << 20
SMALL = {"max_request_memory_bytes": 16 * MIB, "max_answer_bytes": 4 * MIB}
WIDE = {
    "inputs": 1,
    "layers": [{"units": 2048, "activation": "tanh"}, {"units": 1, "activation": "identity"}],
    "loss": "half_squared_error",
}

# 1-1024-1024-1: 1,052,673 parameters.
BIG = {
    "inputs": 1,
    "layers": [
        {"units": 1024, "activation": "relu"},
        {"units": 1024, "activation": "relu"},
        {"units": 1, "activation": "identity"},
    ],
    "loss": "half_squared_error",
}


async def create_wide(client: httpx.AsyncClient) -> list[np.ndarray]:
    created = await client.post(
        "/v1/models", json={"name": "wide", "network": WIDE, "init": {"seed": 1}}
    )
    assert created.status_code == 201, created.text
    layers = (await client.get("/v1/models/wide/parameters")).json()["parameters"]["layers"]
    return [
        np.array(layer[key], dtype=np.float64) for layer in layers for key in ("weights", "biases")
    ]


def reference_outputs(params: list[np.ndarray], X: np.ndarray) -> np.ndarray:
    W0, b0, W1, b1 = params
    outputs: np.ndarray = np.tanh(X @ W0.reshape(1, -1) + b0) @ W1.reshape(-1, 1) + b1
    return outputs


@pytest.mark.anyio
async def test_a_batch_larger_than_the_memory_limit_is_served_in_blocks(
    make_app: AppFactory,
) -> None:
    # 20,000 rows of 2048 units: 1.3 GB of activations at once, served within 16 MiB.
    async with client_for(make_app(**SMALL)) as client:
        params = await create_wide(client)
        X = np.linspace(-2, 2, 20_000).reshape(-1, 1)
        response = await client.post("/v1/models/wide/forward", json={"inputs": X.tolist()})
        assert response.status_code == 200, response.text
        outputs = np.array(response.json()["outputs"])
        np.testing.assert_allclose(outputs, reference_outputs(params, X), rtol=1e-12, atol=1e-12)


@pytest.mark.anyio
async def test_a_large_npy_batch_is_served_in_blocks(make_app: AppFactory) -> None:
    async with client_for(make_app(**SMALL)) as client:
        params = await create_wide(client)
        X = np.linspace(-1, 1, 30_000).reshape(-1, 1)
        body = io.BytesIO()
        np.save(body, X)
        response = await client.post(
            "/v1/models/wide/forward",
            content=body.getvalue(),
            headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"},
        )
        assert response.status_code == 200, response.text
        outputs = np.load(io.BytesIO(response.content))
        np.testing.assert_allclose(outputs, reference_outputs(params, X), rtol=1e-12, atol=1e-12)


@pytest.mark.anyio
async def test_a_gradient_over_many_rows_accumulates_blocks(make_app: AppFactory) -> None:
    async with client_for(make_app(**SMALL)) as client:
        params = await create_wide(client)
        X = np.linspace(-1, 1, 5000).reshape(-1, 1)
        T = np.sin(X)
        response = await client.post(
            "/v1/models/wide/gradient", json={"inputs": X.tolist(), "targets": T.tolist()}
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        # Independent reference: the whole batch at once, in NumPy.
        W0, b0, W1, b1 = params
        h = np.tanh(X @ W0.reshape(1, -1) + b0)
        y = h @ W1.reshape(-1, 1) + b1
        delta2 = (y - T) / len(X)
        assert answer["loss"] == pytest.approx(
            0.5 * np.mean(np.sum((y - T) ** 2, axis=1)), rel=1e-12
        )
        dW1 = np.array(answer["gradients"]["layers"][1]["weights"])
        np.testing.assert_allclose(dW1, h.T @ delta2, rtol=1e-10, atol=1e-15)
        delta1 = (delta2 @ W1.reshape(1, -1)) * (1 - h**2)
        dW0 = np.array(answer["gradients"]["layers"][0]["weights"])
        np.testing.assert_allclose(dW0, X.T @ delta1, rtol=1e-10, atol=1e-15)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "body", "setting", "advice"),
    [
        (
            "/v1/models/wide/forward",
            {"inputs": [[0.5]] * 2000, "trace": True},
            "BACKPROP_MAX_REQUEST_MEMORY_BYTES",
            "leave out trace",
        ),
        (
            "/v1/models/wide/gradient",
            {"inputs": [[0.5]] * 200, "targets": [[0.1]] * 200, "trace": True, "deltas": True},
            "BACKPROP_MAX_ANSWER_BYTES",
            "leave out trace and deltas",
        ),
        (
            "/v1/models/wide/forward",
            {"inputs": [[0.5]] * 100_000},
            "BACKPROP_MAX_ANSWER_BYTES",
            "application/x-npy",
        ),
    ],
)
async def test_work_over_a_limit_gets_413_saying_what_to_change(
    make_app: AppFactory, path: str, body: dict[str, object], setting: str, advice: str
) -> None:
    answer_limit = 256 * MIB if "MEMORY" in setting else MIB
    async with client_for(make_app(**{**SMALL, "max_answer_bytes": answer_limit})) as client:
        await create_wide(client)
        before = (await client.get("/v1/models/wide")).json()
        response = await client.post(path, json=body)
        problem = assert_problem(response, 413, type_suffix="/work-too-large")
        assert setting in problem["detail"] and advice in problem["detail"], problem["detail"]
        assert isinstance(problem["estimate"], int) and isinstance(problem["limit"], int)
        assert problem["estimate"] > problem["limit"]
        assert (await client.get("/v1/models/wide")).json() == before


@pytest.mark.anyio
async def test_a_train_step_over_the_memory_limit_commits_nothing(make_app: AppFactory) -> None:
    async with client_for(make_app(**SMALL)) as client:
        created = await client.post(
            "/v1/models", json={"name": "big", "network": BIG, "init": {"seed": 1}}
        )
        assert created.status_code == 201
        response = await client.post(
            "/v1/models/big/train-step", json={"inputs": [[0.5]], "targets": [[0.1]]}
        )
        problem = assert_problem(response, 413, type_suffix="/work-too-large")
        assert "BACKPROP_MAX_REQUEST_MEMORY_BYTES" in problem["detail"]
        assert "job" in problem["detail"]
        assert (await client.get("/v1/models/big")).json()["version"] == 1


@pytest.mark.anyio
async def test_v2_infer_of_a_large_batch_is_served_in_blocks(make_app: AppFactory) -> None:
    async with client_for(make_app(**SMALL)) as client:
        params = await create_wide(client)
        X = np.linspace(-1, 1, 20_000).reshape(-1, 1)
        request = {
            "inputs": [
                {
                    "name": "input",
                    "shape": [20_000, 1],
                    "datatype": "FP64",
                    "data": X.ravel().tolist(),
                }
            ]
        }
        response = await client.post("/v2/models/wide/infer", json=request)
        assert response.status_code == 200, response.text
        data = np.array(response.json()["outputs"][0]["data"]).reshape(-1, 1)
        np.testing.assert_allclose(data, reference_outputs(params, X), rtol=1e-12, atol=1e-12)


@pytest.mark.anyio
async def test_an_export_is_admitted_by_its_size_before_it_is_written(
    make_app: AppFactory,
) -> None:
    # 1-1024-1024-1: 1,052,673 parameters, 24 MiB as JSON text, 8 MiB as .npz, 4 MiB as float32.
    limits = {"max_request_memory_bytes": 64 * MIB, "max_answer_bytes": 16 * MIB}
    async with client_for(make_app(**limits)) as client:
        created = await client.post(
            "/v1/models", json={"name": "big", "network": BIG, "init": {"seed": 1}}
        )
        assert created.status_code == 201, created.text
        refused = await client.get("/v1/models/big/export?format=json")
        problem = assert_problem(refused, 413, type_suffix="/work-too-large")
        assert "BACKPROP_MAX_ANSWER_BYTES" in problem["detail"]
        assert "format=npz" in problem["detail"], problem["detail"]
        assert problem["estimate"] == 1_052_673 * 24 and problem["limit"] == 16 * MIB
        served = await client.get("/v1/models/big/export?format=npz")
        assert served.status_code == 200, served.text
        with np.load(io.BytesIO(served.content)) as archive:
            assert archive["W1"].shape == (1024, 1024)
        # What the estimate counts is what is written: the binary file holds each number once.
        assert 1_052_673 * 8 <= len(served.content) < 1_052_673 * 8 + 64 * 1024
