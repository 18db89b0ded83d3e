"""Input gradients and the gradient check over HTTP: the seed's numbers (dE/dx = W1 delta1 from
the worked example), stored and stateless answers alike, the named and .npz notations equal to
the layered one, a check that passes on the seed and fails on a broken backpropagation, bad
input as 422 problems with pointers, work over a limit as 413."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest

from service.core import FloatArray, Network, Params, Trace, propagation
from tests.api.support import (
    SEED,
    SEED_INPUTS,
    SEED_NETWORK,
    SEED_PARAMETERS,
    SEED_TARGETS,
    AppFactory,
    assert_problem,
    client_for,
    create_seed,
)

pytestmark = pytest.mark.anyio

NPZ = "application/x-npz"
STORED = "/v1/models/seed/input-gradient"
STATELESS = "/v1/input-gradient"
CHECK = "/v1/models/seed/gradient-check"
INLINE = {"network": SEED_NETWORK, "parameters": SEED_PARAMETERS}
# Three rows (the seed's first), for the batch mean and the rows' independence.
ROWS = [[0.23, 0.55], [-0.4, 0.9], [1.5, -0.2]]
ROW_TARGETS = [[0.01], [0.7], [0.3]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def registry_url() -> str:
    """These tests run on the memory registry (the endpoints read models as every backend
    does; tests/registry checks the backends alike)."""
    return "memory://"


@pytest.fixture
async def client(make_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(make_app()) as client:
        await create_seed(client)
        yield client


def by_hand() -> list[float]:
    """dE/dx_i = sum_j w_ij delta_j over the first layer's units, from the worked example."""
    W1, delta1 = SEED["parameters"]["weights"][0], SEED["deltas_dE_dnet"][0]
    return [sum(w * d for w, d in zip(row, delta1, strict=True)) for row in W1]


def npz(inputs: Any, targets: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, inputs=np.asarray(inputs), targets=np.asarray(targets))
    return buffer.getvalue()


def unpacked(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == NPZ
    with np.load(io.BytesIO(response.content), allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


# -- input gradients --------------------------------------------------------------------------


async def test_the_seeds_input_gradient_is_w1_times_delta1(client: httpx.AsyncClient) -> None:
    body = {"inputs": SEED_INPUTS, "targets": SEED_TARGETS, "jacobian": True}
    response = await client.post(STORED, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    answer = response.json()
    assert (answer["model"], answer["version"], answer["loss"]) == ("seed", 1, SEED["loss"])
    for got, want in zip(answer["input_gradients"][0], by_hand(), strict=True):
        assert abs(got - want) <= 1e-12
    # One output under the half squared error: dE/dx = (out - target) dy/dx.
    error = SEED["forward"]["nodes"]["n9"]["out"] - SEED["target"][0]
    np.testing.assert_allclose(
        np.array(answer["jacobian"][0][0]) * error, answer["input_gradients"][0], rtol=1e-12
    )


async def test_without_jacobian_the_answer_has_none(client: httpx.AsyncClient) -> None:
    response = await client.post(STORED, json={"inputs": ROWS, "targets": ROW_TARGETS})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"model", "version", "loss", "input_gradients"}


async def test_rows_are_of_the_batch_mean(client: httpx.AsyncClient) -> None:
    whole = (await client.post(STORED, json={"inputs": ROWS, "targets": ROW_TARGETS})).json()
    for r, (x, t) in enumerate(zip(ROWS, ROW_TARGETS, strict=True)):
        alone = (await client.post(STORED, json={"inputs": [x], "targets": [t]})).json()
        np.testing.assert_allclose(
            whole["input_gradients"][r], np.array(alone["input_gradients"][0]) / 3, rtol=1e-13
        )


@pytest.mark.parametrize("notation", ["layered", "named"])
async def test_stateless_and_stored_answers_are_equal(
    client: httpx.AsyncClient, notation: str
) -> None:
    body = {"inputs": ROWS, "targets": ROW_TARGETS, "jacobian": True}
    params = {"notation": notation}
    stored = (await client.post(STORED, json=body, params=params)).json()
    response = await client.post(STATELESS, json={**INLINE, **body}, params=params)
    assert response.status_code == 200, response.text
    assert "etag" not in response.headers
    assert response.json() == {k: v for k, v in stored.items() if k not in ("model", "version")}


async def test_the_named_notation_keys_rows_by_input_and_output_node(
    client: httpx.AsyncClient,
) -> None:
    body = {"inputs": ROWS, "targets": ROW_TARGETS, "jacobian": True}
    layered = (await client.post(STORED, json=body)).json()
    named = (await client.post(STORED, json=body, params={"notation": "named"})).json()
    assert named["loss"] == layered["loss"]
    assert named["input_gradients"] == [
        {"n1": row[0], "n2": row[1]} for row in layered["input_gradients"]
    ]
    assert named["jacobian"] == [
        {"n9": {"n1": m[0][0], "n2": m[0][1]}} for m in layered["jacobian"]
    ]


async def test_npz_bodies_and_answers_equal_the_layered_json(client: httpx.AsyncClient) -> None:
    layered = (
        await client.post(STORED, json={"inputs": ROWS, "targets": ROW_TARGETS, "jacobian": True})
    ).json()
    sent = await client.post(
        STORED,
        content=npz(inputs=ROWS, targets=ROW_TARGETS),
        params={"jacobian": "true"},
        headers={"content-type": NPZ, "accept": NPZ},
    )
    assert sent.headers["etag"] == '"1"'
    accepted = await client.post(
        STORED,
        json={"inputs": ROWS, "targets": ROW_TARGETS, "jacobian": True},
        headers={"accept": NPZ},
    )
    stateless = await client.post(
        STATELESS,
        json={**INLINE, "inputs": ROWS, "targets": ROW_TARGETS, "jacobian": True},
        headers={"accept": NPZ},
    )
    for response in (sent, accepted, stateless):
        arrays = unpacked(response)
        assert set(arrays) == {"loss", "input_gradients", "jacobian"}
        assert float(arrays["loss"]) == layered["loss"]
        assert arrays["input_gradients"].tolist() == layered["input_gradients"]
        assert arrays["jacobian"].tolist() == layered["jacobian"]
    # An .npz body answered as JSON, without the Jacobian unless asked.
    as_json = await client.post(
        STORED, content=npz(inputs=ROWS, targets=ROW_TARGETS), headers={"content-type": NPZ}
    )
    assert as_json.status_code == 200, as_json.text
    assert as_json.json() == {k: v for k, v in layered.items() if k != "jacobian"}


async def test_jacobian_as_a_query_parameter_with_a_json_body_is_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        STORED,
        json={"inputs": SEED_INPUTS, "targets": SEED_TARGETS},
        params={"jacobian": "true"},
    )
    assert_problem(response, 422, parameter="jacobian")


BAD_INPUT = [
    ({"inputs": [[0.23]], "targets": SEED_TARGETS}, "/inputs/0"),
    ({"inputs": SEED_INPUTS, "targets": [[0.01, 0.5]]}, "/targets/0"),
    ({"inputs": ROWS, "targets": SEED_TARGETS}, "/targets"),
    ({"inputs": [], "targets": SEED_TARGETS}, "/inputs"),
    ({"inputs": SEED_INPUTS}, "/targets"),
    ({"inputs": SEED_INPUTS, "targets": SEED_TARGETS, "jacobian": 1}, "/jacobian"),
]


@pytest.mark.parametrize(("body", "pointer"), BAD_INPUT)
@pytest.mark.parametrize("path", [STORED, STATELESS, CHECK])
async def test_bad_input_is_422_with_a_pointer(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], pointer: str
) -> None:
    if "jacobian" in body and path == CHECK:
        body, pointer = {**body, "epsilon": "small"}, "/epsilon"
        del body["jacobian"]
    response = await client.post(path, json={**INLINE, **body} if path == STATELESS else body)
    assert_problem(response, 422, pointer=pointer)


@pytest.mark.parametrize("path", [STORED, STATELESS, CHECK])
async def test_nan_and_infinity_are_422_with_a_pointer(
    client: httpx.AsyncClient, path: str
) -> None:
    extra = json.dumps(INLINE)[1:-1] + "," if path == STATELESS else ""
    for text, pointer in (
        ('{%s"inputs": [[NaN, 0.55]], "targets": [[0.01]]}', "/inputs/0/0"),
        ('{%s"inputs": [[0.23, 0.55]], "targets": [[Infinity]]}', "/targets/0/0"),
    ):
        response = await client.post(
            path, content=(text % extra).encode(), headers={"content-type": "application/json"}
        )
        assert_problem(response, 422, pointer=pointer)


async def test_an_unknown_model_is_404(client: httpx.AsyncClient) -> None:
    body = {"inputs": SEED_INPUTS, "targets": SEED_TARGETS}
    for path in ("/v1/models/nope/input-gradient", "/v1/models/nope/gradient-check"):
        assert_problem(await client.post(path, json=body), 404, type_suffix="model-not-found")


async def test_a_jacobian_whose_answer_passes_the_limit_is_413_saying_fewer_rows(
    make_app: AppFactory,
) -> None:
    async with client_for(make_app(max_answer_bytes=1024)) as client:
        await create_seed(client)
        rows = {"inputs": [[0.23, 0.55]] * 20, "targets": [[0.01]] * 20}  # 41 numbers: fits
        assert (await client.post(STORED, json=rows)).status_code == 200
        for path, body in ((STORED, rows), (STATELESS, {**INLINE, **rows})):
            response = await client.post(path, json={**body, "jacobian": True})
            problem = assert_problem(response, 413, type_suffix="work-too-large")
            assert "send fewer rows for the Jacobian" in problem["detail"]
            assert problem["estimate"] > problem["limit"] == 1024


# -- the gradient check ------------------------------------------------------------------------


async def test_the_seed_passes_the_check_with_the_gradients_values(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(CHECK, json={"inputs": SEED_INPUTS, "targets": SEED_TARGETS})
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    check = response.json()
    assert (check["model"], check["version"], check["epsilon"]) == ("seed", 1, 1e-6)
    assert check["loss"] == SEED["loss"]
    assert check["max_relative_error"] < 1e-7
    assert check["max_relative_error"] == max(p["relative_error"] for p in check["parameters"])
    gradient = await client.post(
        "/v1/models/seed/gradient",
        json={"inputs": SEED_INPUTS, "targets": SEED_TARGETS},
        params={"notation": "named"},
    )
    assert {p["name"]: p["backprop"] for p in check["parameters"]} == gradient.json()["gradients"]
    places = {p["name"]: p["layered_name"] for p in check["parameters"]}
    assert (places["w1"], places["w7"], places["w18"]) == ("W0[0][0]", "W1[0][0]", "W2[2][0]")
    assert (places["b1"], places["b4"], places["b7"]) == ("b0[0]", "b1[0]", "b2[0]")


async def test_a_broken_backpropagation_is_caught(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    right = propagation.backward

    def broken(
        network: Network, params: Params, trace: Trace, delta: FloatArray
    ) -> tuple[FloatArray, ...]:
        deltas = right(network, params, trace, delta)
        return (*(-d for d in deltas[:-1]), deltas[-1])  # wrong sign below the last layer

    monkeypatch.setattr(propagation, "backward", broken)
    response = await client.post(CHECK, json={"inputs": SEED_INPUTS, "targets": SEED_TARGETS})
    assert response.status_code == 200, response.text
    check = response.json()
    assert check["max_relative_error"] > 1.99  # opposite signs: 2, to rounding
    wrong = {p["name"] for p in check["parameters"] if p["relative_error"] > 1e-7}
    assert wrong == {"w1", "w3", "w4", "w6", "w7", "w8", "w9", "w13", "w14", "w15"} | {
        "b1",
        "b3",
        "b4",
        "b5",
        "b6",
    }


@pytest.mark.parametrize("sample", [1, 5, 24, 25, 1000])
async def test_sample_checks_exactly_that_many_distinct_parameters(
    client: httpx.AsyncClient, sample: int
) -> None:
    body = {"inputs": SEED_INPUTS, "targets": SEED_TARGETS, "sample": sample}
    first = (await client.post(CHECK, json=body)).json()
    names = [p["name"] for p in first["parameters"]]
    assert len(names) == len(set(names)) == min(sample, 25)
    assert [p["name"] for p in (await client.post(CHECK, json=body)).json()["parameters"]] == names


@pytest.mark.parametrize(
    ("options", "pointer"),
    [
        ({"epsilon": 0}, "/epsilon"),
        ({"epsilon": -1e-6}, "/epsilon"),
        ({"epsilon": 1e999}, "/epsilon"),
        ({"sample": 0}, "/sample"),
        ({"sample": 1.5}, "/sample"),
        ({"sample": "3"}, "/sample"),
        ({"delta": 1e-6}, "/delta"),
    ],
)
async def test_bad_options_are_422_with_a_pointer(
    client: httpx.AsyncClient, options: dict[str, Any], pointer: str
) -> None:
    body = json.dumps({"inputs": SEED_INPUTS, "targets": SEED_TARGETS, **options})
    response = await client.post(
        CHECK, content=body.replace("Infinity", "1e999"), headers={"content-type": JSON_TYPE}
    )
    assert_problem(response, 422, pointer=pointer)


JSON_TYPE = "application/json"


async def test_an_epsilon_that_overflows_the_loss_is_422_at_epsilon(
    client: httpx.AsyncClient,
) -> None:
    line = {
        "name": "line",
        "network": {
            "inputs": 1,
            "layers": [{"units": 1, "activation": "identity"}],
            "loss": "half_squared_error",
        },
        "parameters": {"layers": [{"weights": [[1.0]], "biases": [0.0]}]},
    }
    assert (await client.post("/v1/models", json=line)).status_code == 201
    body = {"inputs": [[1e10]], "targets": [[0.0]], "epsilon": 1e300}
    response = await client.post("/v1/models/line/gradient-check", json=body)
    problem = assert_problem(response, 422, type_suffix="numeric-overflow", pointer="/epsilon")
    assert "smaller epsilon" in problem["detail"]


async def test_a_check_over_a_limit_says_pass_sample(make_app: AppFactory) -> None:
    async with client_for(make_app(max_answer_bytes=1024)) as client:
        await create_seed(client)
        body = {"inputs": SEED_INPUTS, "targets": SEED_TARGETS}
        problem = assert_problem(await client.post(CHECK, json=body), 413)
        assert "pass sample" in problem["detail"]
        assert (await client.post(CHECK, json={**body, "sample": 5})).status_code == 200
    async with client_for(make_app(max_compute_seconds=1e-6)) as client:
        await create_seed(client)
        problem = assert_problem(
            await client.post(CHECK, json=body), 422, type_suffix="compute-budget-exceeded"
        )
        assert "pass sample" in problem["detail"]
