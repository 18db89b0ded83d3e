"""The Open Inference Protocol in process: bodies built by hand from the spec, the framing of
binary data, and malformed requests answered with the right status and an ``error``."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from tests.api.support import SEED, assert_problem
from tests.v2.support import binary_request, json_request, split_response

pytestmark = pytest.mark.anyio

SEED_X = np.array([SEED["input"], [1.0, -2.0]])
INFER = "/v2/models/seed/infer"


async def v1_outputs(client: httpx.AsyncClient, inputs: list[list[float]]) -> list[float]:
    response = await client.post("/v1/models/seed/forward", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    return [value for row in response.json()["outputs"] for value in row]


# -- health and metadata ----------------------------------------------------------------------


async def test_health_endpoints_answer_200_with_their_state(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v2/health/live")).json() == {"live": True}
    assert (await client.get("/v2/health/ready")).json() == {"ready": True}
    assert (await client.get("/v2/models/seed/ready")).json() == {"name": "seed", "ready": True}
    ready = await client.get("/v2/models/seed/versions/1/ready")
    assert ready.json() == {"name": "seed", "ready": True}


async def test_metadata_of_an_unknown_model_is_a_404_with_error(client: httpx.AsyncClient) -> None:
    for path in ("/v2/models/nope", "/v2/models/nope/ready", "/v2/models/nope/versions/1"):
        body = assert_problem(await client.get(path), 404)
        assert "nope" in body["error"]


async def test_an_unkept_version_is_a_404_with_error(client: httpx.AsyncClient) -> None:
    for path in ("/v2/models/seed/versions/7", "/v2/models/seed/versions/7/ready"):
        assert_problem(await client.get(path), 404)
    content, headers = binary_request(SEED_X)
    response = await client.post(
        "/v2/models/seed/versions/7/infer", content=content, headers=headers
    )
    assert_problem(response, 404)


# -- inference: framing -----------------------------------------------------------------------


async def test_json_request_without_content_type_gets_json_outputs(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(INFER, content=json.dumps(json_request(SEED_X)).encode())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "inference-header-content-length" not in response.headers
    body = response.json()
    assert body["model_name"] == "seed" and body["model_version"] == "1"
    assert body["outputs"] == [
        {
            "name": "output",
            "datatype": "FP64",
            "shape": [2, 1],
            "data": await v1_outputs(client, SEED_X.tolist()),
        }
    ]
    assert body["outputs"][0]["data"][0] == SEED["forward"]["out"][-1][0]


async def test_binary_outputs_follow_the_json_header_little_endian(
    client: httpx.AsyncClient,
) -> None:
    content, headers = binary_request(SEED_X, parameters={"binary_data_output": True})
    response = await client.post(INFER, content=content, headers=headers)
    assert response.status_code == 200, response.text
    header, raw = split_response(
        response.content, response.headers["inference-header-content-length"]
    )
    (output,) = header["outputs"]
    assert output["parameters"] == {"binary_data_size": 16} and "data" not in output
    assert np.frombuffer(raw, "<f8").tolist() == await v1_outputs(client, SEED_X.tolist())


async def test_an_outputs_binary_data_overrides_binary_data_output(
    client: httpx.AsyncClient,
) -> None:
    request = json_request(
        SEED_X,
        parameters={"binary_data_output": True},
        outputs=[{"name": "output", "parameters": {"binary_data": False}}],
    )
    response = await client.post(INFER, json=request)
    assert response.status_code == 200, response.text
    assert "inference-header-content-length" not in response.headers
    assert "data" in response.json()["outputs"][0]


async def test_the_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.post(INFER, json=json_request(SEED_X, id="req-42"))
    assert response.json()["id"] == "req-42"


async def test_nested_json_data_is_taken_row_major(client: httpx.AsyncClient) -> None:
    request = json_request(SEED_X)
    request["inputs"][0]["data"] = SEED_X.tolist()
    response = await client.post(INFER, json=request)
    assert response.json()["outputs"][0]["data"] == await v1_outputs(client, SEED_X.tolist())


async def test_fp32_inputs_are_cast_to_the_fp64_model(client: httpx.AsyncClient) -> None:
    x32 = SEED_X.astype(np.float32)
    content, headers = binary_request(x32, "FP32")
    response = await client.post(INFER, content=content, headers=headers)
    assert response.status_code == 200, response.text
    expected = await v1_outputs(client, x32.astype(np.float64).tolist())
    assert response.json()["outputs"][0]["data"] == expected


# -- malformed requests: 400 ------------------------------------------------------------------


@pytest.mark.parametrize("length", ["abc", "-3", "0", "100000", "1.5"])
async def test_a_bad_header_length_is_a_400(client: httpx.AsyncClient, length: str) -> None:
    content, _ = binary_request(SEED_X)
    response = await client.post(
        INFER, content=content, headers={"Inference-Header-Content-Length": length}
    )
    body = assert_problem(response, 400, type_suffix="malformed-header")
    assert "Inference-Header-Content-Length" in body["error"]


async def test_a_header_length_that_cuts_the_json_is_a_400(client: httpx.AsyncClient) -> None:
    content, headers = binary_request(SEED_X)
    short = str(int(headers["Inference-Header-Content-Length"]) - 5)
    response = await client.post(
        INFER, content=content, headers={"Inference-Header-Content-Length": short}
    )
    assert_problem(response, 400, type_suffix="malformed-body")


async def test_binary_data_shorter_than_its_size_is_a_400(client: httpx.AsyncClient) -> None:
    content, headers = binary_request(SEED_X)
    response = await client.post(INFER, content=content[:-8], headers=headers)
    body = assert_problem(response, 400, pointer="/inputs/0/parameters/binary_data_size")
    assert "remain" in body["error"]


async def test_binary_data_beyond_the_inputs_is_a_400(client: httpx.AsyncClient) -> None:
    content, headers = binary_request(SEED_X)
    response = await client.post(INFER, content=content + b"\0" * 8, headers=headers)
    assert_problem(response, 400)


async def test_a_binary_size_that_does_not_fit_the_shape_is_a_400(
    client: httpx.AsyncClient,
) -> None:
    content, headers = binary_request(SEED_X)
    header = json.loads(content[: int(headers["Inference-Header-Content-Length"])])
    header["inputs"][0]["shape"] = [1, 2]
    new = json.dumps(header).encode()
    response = await client.post(
        INFER,
        content=new + SEED_X.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(new))},
    )
    assert_problem(response, 400, pointer="/inputs/0/parameters/binary_data_size")


async def test_json_data_that_does_not_fill_its_shape_is_a_400(client: httpx.AsyncClient) -> None:
    request = json_request(SEED_X)
    request["inputs"][0]["shape"] = [3, 2]
    body = assert_problem(await client.post(INFER, json=request), 400, pointer="/inputs/0/data")
    assert "6 elements" in body["error"] and "4" in body["error"]


@pytest.mark.parametrize("datatype", ["BYTES", "BF16", "FP128", "BOOL", 64])
async def test_an_unknown_datatype_is_a_400(client: httpx.AsyncClient, datatype: object) -> None:
    request = json_request(SEED_X)
    request["inputs"][0]["datatype"] = datatype
    body = assert_problem(await client.post(INFER, json=request), 400, pointer="/inputs/0/datatype")
    assert "datatype" in body["error"]


@pytest.mark.parametrize(
    "data",
    [
        ["0.23", "0.55", "1", "2"],
        [True, False, True, False],
        [[0.23, 0.55], [1.0]],
        [None] * 4,
        # Booleans among numbers, which NumPy would read as 1 and 0.
        [0.23, True, 1.0, 2.0],
        [[0.23, 0.55], [False, 2.0]],
        [1, 2, 3, True],
    ],
)
async def test_json_data_that_is_not_numbers_is_a_400(
    client: httpx.AsyncClient, data: list[object]
) -> None:
    request = json_request(SEED_X)
    request["inputs"][0]["data"] = data
    assert_problem(await client.post(INFER, json=request), 400, pointer="/inputs/0/data")


async def test_integers_out_of_their_datatypes_range_are_a_400(client: httpx.AsyncClient) -> None:
    request = json_request(np.array([[1, 300]]), "INT8")
    assert_problem(await client.post(INFER, json=request), 400, pointer="/inputs/0/data")


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[1, 2]", b'{"inputs": []}', b'{"inputs": [{"name": "input"}]}', b""],
)
async def test_a_body_that_is_no_inference_request_is_a_400(
    client: httpx.AsyncClient, content: bytes
) -> None:
    assert_problem(await client.post(INFER, content=content), 400)


async def test_an_unknown_input_name_is_a_400(client: httpx.AsyncClient) -> None:
    request = json_request(SEED_X)
    request["inputs"][0]["name"] = "x"
    body = assert_problem(await client.post(INFER, json=request), 400, pointer="/inputs/0/name")
    assert "'input'" in body["error"]


async def test_an_unknown_output_name_is_a_400(client: httpx.AsyncClient) -> None:
    request = json_request(SEED_X, outputs=[{"name": "logits"}])
    assert_problem(await client.post(INFER, json=request), 400, pointer="/outputs/0/name")


@pytest.mark.parametrize(
    "parameters",
    [{"classification": 2}, {"shared_memory_region": "r", "shared_memory_byte_size": 8}],
)
async def test_unsupported_output_parameters_are_a_400(
    client: httpx.AsyncClient, parameters: dict[str, object]
) -> None:
    request = json_request(SEED_X, outputs=[{"name": "output", "parameters": parameters}])
    assert_problem(await client.post(INFER, json=request), 400)


async def test_a_body_over_the_limit_is_a_413(client: httpx.AsyncClient) -> None:
    content, headers = binary_request(np.zeros((5000, 2)))
    assert_problem(await client.post(INFER, content=content, headers=headers), 413)


# -- inputs that do not fit the model: 422, as on /v1 -----------------------------------------


@pytest.mark.parametrize("shape", [[2, 3], [6], [1, 2, 3], [0, 2]])
async def test_an_input_of_the_wrong_shape_is_a_422(
    client: httpx.AsyncClient, shape: list[int]
) -> None:
    data = np.arange(float(np.prod(shape))).reshape(shape)
    content, headers = binary_request(data)
    response = await client.post(INFER, content=content, headers=headers)
    body = assert_problem(response, 422, pointer="/inputs/0/shape")
    assert "[-1, 2]" in body["error"] or "rows" in body["error"]


async def test_non_finite_binary_inputs_are_a_422(client: httpx.AsyncClient) -> None:
    content, headers = binary_request(np.array([[0.23, np.nan]]))
    response = await client.post(INFER, content=content, headers=headers)
    assert_problem(response, 422, pointer_prefix="/inputs")


async def test_an_unknown_model_is_a_404_with_error(client: httpx.AsyncClient) -> None:
    content, headers = binary_request(SEED_X)
    response = await client.post("/v2/models/nope/infer", content=content, headers=headers)
    body = assert_problem(response, 404)
    assert "nope" in body["error"]
