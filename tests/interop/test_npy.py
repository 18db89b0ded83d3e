"""Binary batches on the /v1 compute endpoints: .npy inputs and outputs for forward, .npz inputs
and targets for gradient and train-step, each giving exactly the numbers of the JSON form."""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray

from service.api.app import create_app
from service.settings import DEFAULT_LIMITS as LIMITS
from service.settings import Settings
from tests.api.support import SEED, SEED_PARAMETERS, assert_problem, client_for, create_seed
from tests.v2.support import random_model

pytestmark = pytest.mark.anyio

NPY = "application/x-npy"
NPZ = "application/x-npz"
FORWARD = "/v1/models/seed/forward"
X = np.array([SEED["input"], [1.0, -2.0], [0.0, 3.5]])
T = np.array([SEED["target"], [0.5], [0.9]])


def npy(array: NDArray[Any], *, allow_pickle: bool = False) -> bytes:
    stream = io.BytesIO()
    np.save(stream, array, allow_pickle=allow_pickle)
    return stream.getvalue()


def npz(**arrays: NDArray[Any]) -> bytes:
    stream = io.BytesIO()
    np.savez(stream, allow_pickle=False, **arrays)
    return stream.getvalue()


def load(content: bytes) -> NDArray[Any]:
    array: NDArray[Any] = np.load(io.BytesIO(content), allow_pickle=False)
    return array


async def json_forward(client: httpx.AsyncClient, inputs: NDArray[Any]) -> dict[str, Any]:
    response = await client.post(FORWARD, json={"inputs": inputs.tolist(), "trace": True})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- forward ----------------------------------------------------------------------------------


async def test_npy_inputs_give_the_json_outputs(client: httpx.AsyncClient) -> None:
    response = await client.post(FORWARD, content=npy(X), headers={"Content-Type": NPY})
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    body = response.json()
    assert body == {
        "model": "seed",
        "version": 1,
        "outputs": (await json_forward(client, X))["outputs"],
    }
    assert body["outputs"][0] == [SEED["forward"]["out"][-1][0]]


async def test_npy_in_and_out_gives_the_json_outputs_bit_for_bit(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        FORWARD, content=npy(X), headers={"Content-Type": NPY, "Accept": NPY}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == NPY
    assert response.headers["etag"] == '"1"'
    outputs = load(response.content)
    assert outputs.dtype == np.float64 and outputs.shape == (3, 1)
    assert outputs.tolist() == (await json_forward(client, X))["outputs"]


async def test_json_inputs_can_ask_for_npy_outputs(client: httpx.AsyncClient) -> None:
    response = await client.post(FORWARD, json={"inputs": X.tolist()}, headers={"Accept": NPY})
    assert response.status_code == 200, response.text
    assert load(response.content).tolist() == (await json_forward(client, X))["outputs"]


@pytest.mark.parametrize(
    "accept", ["*/*", "application/json", f"application/json, {NPY};q=0.5", f"{NPY};q=0"]
)
async def test_json_stays_the_answer_unless_npy_is_preferred(
    client: httpx.AsyncClient, accept: str
) -> None:
    response = await client.post(
        FORWARD, content=npy(X), headers={"Content-Type": NPY, "Accept": accept}
    )
    assert response.headers["content-type"].startswith("application/json")


async def test_a_trace_with_an_npy_body_comes_as_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        FORWARD,
        params={"trace": "true", "notation": "named"},
        content=npy(X),
        headers={"Content-Type": NPY},
    )
    expected = await client.post(
        FORWARD, params={"notation": "named"}, json={"inputs": X.tolist(), "trace": True}
    )
    assert response.json() == expected.json()


async def test_a_trace_cannot_be_answered_as_npy(client: httpx.AsyncClient) -> None:
    response = await client.post(
        FORWARD, json={"inputs": X.tolist(), "trace": True}, headers={"Accept": NPY}
    )
    assert_problem(response, 406)


async def test_integer_and_fortran_order_inputs_give_the_same_outputs(
    client: httpx.AsyncClient,
) -> None:
    ints = np.array([[1, 2], [-3, 4]], dtype=np.int16)
    for array in (ints, np.asfortranarray(ints.astype(np.float32))):
        response = await client.post(FORWARD, content=npy(array), headers={"Content-Type": NPY})
        assert response.status_code == 200, response.text
        expected = (await json_forward(client, ints.astype(np.float64)))["outputs"]
        assert response.json()["outputs"] == expected


async def test_stateless_forward_can_answer_npy(client: httpx.AsyncClient) -> None:
    model = random_model("m", [3, 4, 2], ["relu", "softmax"])
    x = np.random.default_rng(0).normal(size=(7, 3))
    body = {"network": model["network"], "parameters": model["parameters"], "inputs": x.tolist()}
    as_json = await client.post("/v1/forward", json=body)
    as_npy = await client.post("/v1/forward", json=body, headers={"Accept": NPY})
    assert as_npy.headers["content-type"] == NPY
    assert load(as_npy.content).tolist() == as_json.json()["outputs"]


# -- bodies refused ---------------------------------------------------------------------------


async def test_an_object_array_is_refused_without_unpickling(client: httpx.AsyncClient) -> None:
    objects = np.array([[0.1, {"x": 1}]], dtype=object)
    response = await client.post(
        FORWARD, content=npy(objects, allow_pickle=True), headers={"Content-Type": NPY}
    )
    body = assert_problem(response, 422)
    assert "object" in body["error"] or "'|O'" in body["error"]


@pytest.mark.parametrize(
    "array", [np.array([["a", "b"]]), np.array([[True, False]]), np.array([[1 + 2j, 3j]])]
)
async def test_arrays_of_other_than_numbers_are_a_422(
    client: httpx.AsyncClient, array: NDArray[Any]
) -> None:
    response = await client.post(FORWARD, content=npy(array), headers={"Content-Type": NPY})
    assert_problem(response, 422, pointer="/inputs")


async def test_bytes_that_are_no_npy_file_are_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(FORWARD, content=b"[[0.23, 0.55]]", headers={"Content-Type": NPY})
    assert_problem(response, 400, type_suffix="malformed-body")


async def test_a_header_that_claims_more_data_than_sent_is_a_400(
    client: httpx.AsyncClient,
) -> None:
    content = npy(X)
    truncated = await client.post(FORWARD, content=content[:-8], headers={"Content-Type": NPY})
    assert_problem(truncated, 400)
    stream = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**12, 2)}
    np.lib.format.write_array_header_1_0(stream, header)
    huge = stream.getvalue() + X.tobytes()
    response = await client.post(FORWARD, content=huge, headers={"Content-Type": NPY})
    body = assert_problem(response, 400)
    assert "[1000000000000, 2]" in body["error"]


@pytest.mark.parametrize(
    ("array", "pointer"),
    [(np.zeros((2, 3)), "/inputs/0"), (np.zeros(2), "/inputs"), (np.zeros((0, 2)), "/inputs")],
)
async def test_npy_inputs_of_the_wrong_shape_are_a_422(
    client: httpx.AsyncClient, array: NDArray[Any], pointer: str
) -> None:
    response = await client.post(FORWARD, content=npy(array), headers={"Content-Type": NPY})
    assert_problem(response, 422, pointer=pointer)


async def test_non_finite_npy_inputs_are_a_422(client: httpx.AsyncClient) -> None:
    array = np.array([[0.23, 0.55], [np.inf, 0.0]])
    response = await client.post(FORWARD, content=npy(array), headers={"Content-Type": NPY})
    assert_problem(response, 422, pointer="/inputs/1/0")


async def test_more_rows_than_the_limit_are_a_422() -> None:
    rows = LIMITS.max_batch_rows
    app = create_app(Settings(registry="memory://", max_body_bytes=32 * rows))
    try:
        async with client_for(app) as client:
            await create_seed(client)
            array = np.zeros((rows + 1, 2))
            response = await client.post(FORWARD, content=npy(array), headers={"Content-Type": NPY})
    finally:
        app.state.store.close()
    body = assert_problem(response, 422, pointer="/inputs")
    assert str(rows) in body["error"]


async def test_an_npy_body_over_the_limit_is_a_413(client: httpx.AsyncClient) -> None:
    array = np.zeros((20_000, 2))
    response = await client.post(FORWARD, content=npy(array), headers={"Content-Type": NPY})
    assert_problem(response, 413)


async def test_an_unknown_model_is_a_404_for_npy_too(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/models/nope/forward", content=npy(X), headers={"Content-Type": NPY}
    )
    assert_problem(response, 404)


# -- gradient and train-step ------------------------------------------------------------------


async def test_npz_gradient_equals_the_json_gradient(client: httpx.AsyncClient) -> None:
    params = {"notation": "named", "deltas": "true", "trace": "true"}
    response = await client.post(
        "/v1/models/seed/gradient",
        params=params,
        content=npz(inputs=X, targets=T),
        headers={"Content-Type": NPZ},
    )
    assert response.status_code == 200, response.text
    expected = await client.post(
        "/v1/models/seed/gradient",
        params={"notation": "named"},
        json={"inputs": X.tolist(), "targets": T.tolist(), "deltas": True, "trace": True},
    )
    assert response.json() == expected.json()
    assert response.headers["etag"] == '"1"'


async def test_npz_gradient_of_the_worked_example(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/models/seed/gradient",
        params={"notation": "named"},
        content=npz(inputs=X[:1], targets=T[:1]),
        headers={"Content-Type": NPZ},
    )
    body = response.json()
    assert abs(body["loss"] - SEED["loss"]) <= 1e-12
    for name, value in SEED["gradients_named"].items():
        assert abs(body["gradients"][name] - value) <= 1e-12, name


async def test_npz_train_step_makes_the_json_train_steps_version(
    client: httpx.AsyncClient,
) -> None:
    await create_seed(client, "twin")
    by_npz = await client.post(
        "/v1/models/seed/train-step",
        params={"learning_rate": 0.1},
        content=npz(inputs=X, targets=T),
        headers={"Content-Type": NPZ},
    )
    by_json = await client.post(
        "/v1/models/twin/train-step",
        json={"inputs": X.tolist(), "targets": T.tolist(), "learning_rate": 0.1},
    )
    assert by_npz.status_code == 200, by_npz.text
    assert by_npz.json() == {**by_json.json(), "model": "seed"}
    assert by_npz.headers["etag"] == '"2"'
    after = [(await client.get(f"/v1/models/{m}/parameters")).json() for m in ("seed", "twin")]
    assert after[0]["parameters"] == after[1]["parameters"]
    assert after[0]["parameters"] != SEED_PARAMETERS


async def test_npz_train_step_checks_if_match(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/models/seed/train-step",
        content=npz(inputs=X, targets=T),
        headers={"Content-Type": NPZ, "If-Match": '"7"'},
    )
    assert_problem(response, 412)


@pytest.mark.parametrize(
    ("arrays", "pointer"),
    [
        ({"inputs": X}, "/targets"),
        ({"inputs": X, "targets": T, "weights": T}, "/weights"),
        ({"inputs": X, "targets": T[:2]}, "/targets"),
        ({"inputs": X, "targets": np.array([["a"], ["b"], ["c"]])}, "/targets"),
    ],
)
async def test_npz_without_the_right_arrays_is_a_422(
    client: httpx.AsyncClient, arrays: dict[str, NDArray[Any]], pointer: str
) -> None:
    response = await client.post(
        "/v1/models/seed/gradient", content=npz(**arrays), headers={"Content-Type": NPZ}
    )
    assert_problem(response, 422, pointer=pointer)


async def test_bytes_that_are_no_npz_file_are_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/models/seed/gradient", content=npy(X), headers={"Content-Type": NPZ}
    )
    assert_problem(response, 400)


async def test_a_bad_learning_rate_query_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/models/seed/train-step",
        params={"learning_rate": "-1"},
        content=npz(inputs=X, targets=T),
        headers={"Content-Type": NPZ},
    )
    assert_problem(response, 422, parameter="learning_rate")


def _arrays(content: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(content), allow_pickle=False) as loaded:
        return {key: loaded[key] for key in loaded.files}


async def test_a_gradient_answers_npz_when_asked_with_the_json_figures(
    client: httpx.AsyncClient,
) -> None:
    body = {"inputs": [SEED["input"]], "targets": [SEED["target"]], "deltas": True}
    as_json = (await client.post("/v1/models/seed/gradient", json=body)).json()
    response = await client.post(
        "/v1/models/seed/gradient", json=body, headers={"Accept": "application/x-npz"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-npz"
    assert response.headers["etag"] == '"1"'
    arrays = _arrays(response.content)
    assert set(arrays) == {"loss", "W0", "b0", "W1", "b1", "W2", "b2", "delta0", "delta1", "delta2"}
    assert arrays["loss"].shape == () and float(arrays["loss"]) == as_json["loss"]
    for i, layer in enumerate(as_json["gradients"]["layers"]):
        assert arrays[f"W{i}"].tolist() == layer["weights"]  # the same doubles, bit for bit
        assert arrays[f"b{i}"].tolist() == layer["biases"]
        assert arrays[f"delta{i}"].tolist() == as_json["deltas"]["layers"][i]
    # An .npz request body answers .npz the same way.
    npz_body = io.BytesIO()
    np.savez(npz_body, inputs=np.array([SEED["input"]]), targets=np.array([SEED["target"]]))
    both = await client.post(
        "/v1/models/seed/gradient",
        content=npz_body.getvalue(),
        headers={"Content-Type": "application/x-npz", "Accept": "application/x-npz"},
    )
    assert both.status_code == 200
    assert _arrays(both.content)["W0"].tobytes() == arrays["W0"].tobytes()
    assert "delta0" not in _arrays(both.content)


async def test_a_gradient_with_a_trace_has_no_npz_form(client: httpx.AsyncClient) -> None:
    body = {"inputs": [SEED["input"]], "targets": [SEED["target"]], "trace": True}
    response = await client.post(
        "/v1/models/seed/gradient", json=body, headers={"Accept": "application/x-npz"}
    )
    assert_problem(response, 406)
