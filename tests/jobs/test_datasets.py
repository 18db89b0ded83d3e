"""Datasets through the HTTP API: JSON rows, CSV and .npz uploads, bit-exact storage, limits."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray

from tests.api.support import assert_problem
from tests.jobs.conftest import Apps
from tests.jobs.support import SMALL, XOR, create, model, train

pytestmark = pytest.mark.anyio

JSON = Any
SPECIAL = [0.1, -0.0, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 1 / 3]


def npz(**arrays: NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def npz_of(content: bytes) -> dict[str, NDArray[Any]]:
    with np.load(io.BytesIO(content), allow_pickle=False) as loaded:
        return {key: loaded[key] for key in loaded.files}


async def post_csv(client: httpx.AsyncClient, text: str, **params: JSON) -> httpx.Response:
    return await client.post(
        "/v1/datasets", params=params, content=text, headers={"Content-Type": "text/csv"}
    )


async def post_npz(client: httpx.AsyncClient, content: bytes, **params: JSON) -> httpx.Response:
    return await client.post(
        "/v1/datasets",
        params=params,
        content=content,
        headers={"Content-Type": "application/x-npz"},
    )


async def test_json_rows_make_a_dataset_at_its_location(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/datasets", json={"name": "xor", **XOR})
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/v1/datasets/xor"
    body = response.json()
    assert {k: body[k] for k in ("name", "rows", "input_columns", "target_columns")} == {
        "name": "xor",
        "rows": 4,
        "input_columns": 2,
        "target_columns": 1,
    }
    assert (body["dtype"], body["source"], len(body["digest"])) == ("float64", "json", 64)
    assert (await client.get("/v1/datasets/xor")).json() == body
    data = (await client.get("/v1/datasets/xor/data")).json()
    assert (data["inputs"], data["targets"]) == (XOR["inputs"], XOR["targets"])


async def test_json_values_come_back_bit_for_bit(client: httpx.AsyncClient) -> None:
    rows = [[v, -v] for v in SPECIAL]
    body = {"name": "edge", "inputs": rows, "targets": [[v] for v in SPECIAL]}
    assert (await client.post("/v1/datasets", json=body)).status_code == 201
    got = npz_of((await client.get("/v1/datasets/edge/data?format=npz")).content)
    assert got["inputs"].tobytes() == np.array(rows, dtype=np.float64).tobytes()
    assert got["targets"].tobytes() == np.array([[v] for v in SPECIAL]).tobytes()


async def test_npz_upload_keeps_float32_and_float64_bit_for_bit(
    client: httpx.AsyncClient,
) -> None:
    rng = np.random.default_rng(0)
    inputs = np.array([[v, v] for v in SPECIAL[:3]] + [[1e-45, 3.4e38]], dtype=np.float32)
    targets = rng.standard_normal((4, 2)).astype(np.float32)
    response = await post_npz(client, npz(inputs=inputs, targets=targets), name="f32")
    assert response.status_code == 201, response.text
    assert (response.json()["dtype"], response.json()["source"]) == ("float32", "npz")
    got = npz_of((await client.get("/v1/datasets/f32/data", params={"format": "npz"})).content)
    assert got["inputs"].dtype == np.float32 and got["inputs"].tobytes() == inputs.tobytes()
    assert got["targets"].tobytes() == targets.tobytes()
    mixed = await post_npz(
        client,
        npz(inputs=np.array([[1, 2]], dtype=">i8"), targets=np.array([[0.1]])),
        name="mixed",
    )
    assert mixed.json()["dtype"] == "float64"
    data = (await client.get("/v1/datasets/mixed/data")).json()
    assert (data["inputs"], data["targets"]) == ([[1.0, 2.0]], [[0.1]])


async def test_csv_upload_splits_leading_input_columns_and_skips_a_header(
    client: httpx.AsyncClient,
) -> None:
    text = "x1,x2,y\n0,0,0\n0,1,1\n\n1,0,1\n1,1,0\n"
    response = await post_csv(client, text, name="xor", input_columns=2)
    assert response.status_code == 201, response.text
    assert (response.json()["source"], response.json()["rows"]) == ("csv", 4)
    data = (await client.get("/v1/datasets/xor/data")).json()
    assert (data["inputs"], data["targets"]) == (XOR["inputs"], XOR["targets"])
    plain = await post_csv(client, "0.5,1e-3,-2\n", name="plain", input_columns=1)
    data = (await client.get("/v1/datasets/plain/data")).json()
    assert plain.status_code == 201 and data == {
        "name": "plain",
        "inputs": [[0.5]],
        "targets": [[0.001, -2.0]],
    }


@pytest.mark.parametrize(
    ("text", "columns", "pointer"),
    [
        ("1,2,3\n4,x,6\n", 2, "/1/1"),
        ("1,2,3\n4,5\n", 2, "/1"),
        ("1,2,nan\n", 2, "/0/2"),
        ("1,2,inf\n", 2, "/0/2"),
        ("1,2,3\n", 3, "/0"),  # no target column left
        ("a,b\n", 1, ""),  # a header and nothing else
    ],
)
async def test_bad_csv_gets_422_at_the_value(
    client: httpx.AsyncClient, text: str, columns: int, pointer: str
) -> None:
    response = await post_csv(client, text, name="bad", input_columns=columns)
    assert_problem(response, 422, pointer=pointer)
    assert_problem(await client.get("/v1/datasets/bad"), 404)


async def test_uploads_need_a_name_and_csv_its_input_columns(client: httpx.AsyncClient) -> None:
    assert_problem(await post_csv(client, "1,2\n", input_columns=1), 422, parameter="name")
    assert_problem(await post_csv(client, "1,2\n", name="d"), 422, parameter="input_columns")
    assert_problem(
        await post_csv(client, "1,2\n", name="d", input_columns=0), 422, parameter="input_columns"
    )
    assert_problem(await post_npz(client, b"", name="../x"), 422, parameter="name")


@pytest.mark.parametrize(
    ("content", "pointer"),
    [
        (b"not a zip", ""),
        (npz(inputs=np.zeros((2, 2))), "/targets"),
        (npz(inputs=np.zeros((2, 2)), targets=np.array([["a"], ["b"]])), "/targets"),
        (npz(inputs=np.zeros((2, 2)), targets=np.zeros((3, 1))), "/targets"),
        (npz(inputs=np.zeros(2), targets=np.zeros((2, 1))), "/inputs"),
        (npz(inputs=np.array([[np.nan, 0.0]]), targets=np.zeros((1, 1))), "/inputs/0/0"),
        (npz(inputs=np.zeros((1, 1)), targets=np.array([[1 + 1j]])), "/targets"),
    ],
)
async def test_bad_npz_gets_422(client: httpx.AsyncClient, content: bytes, pointer: str) -> None:
    assert_problem(await post_npz(client, content, name="bad"), 422, pointer=pointer)


async def test_pickled_npz_arrays_are_refused_unread(client: httpx.AsyncClient) -> None:
    objects = np.array([[{"evil": 1}]], dtype=object)
    content = npz(inputs=objects, targets=np.zeros((1, 1)))
    assert_problem(await post_npz(client, content, name="pickle"), 422, pointer="/inputs")


async def test_datasets_over_the_size_limit_get_413_before_decompression(apps: Apps) -> None:
    client = await apps(max_dataset_bytes=1000)
    big = np.zeros((10_000, 100))  # 8 MB of zeros, a few kB compressed
    buffer = io.BytesIO()
    np.savez_compressed(buffer, inputs=big, targets=np.zeros((10_000, 1)))
    assert len(buffer.getvalue()) < 1_000_000
    assert_problem(
        await post_npz(client, buffer.getvalue(), name="bomb"), 413, type_suffix="dataset-too-large"
    )
    rows = {"name": "rows", "inputs": [[0.0] * 10] * 20, "targets": [[0.0]] * 20}
    assert_problem(await client.post("/v1/datasets", json=rows), 413)
    assert_problem(await post_csv(client, "1,2\n" * 100, name="csv", input_columns=1), 413)


async def test_other_content_types_get_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/datasets", content=b"<x/>", headers={"Content-Type": "application/xml"}
    )
    assert_problem(response, 415, type_suffix="unsupported-media-type")
    assert "text/csv" in response.headers["accept-post"]


async def test_malformed_and_invalid_json_get_400_and_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/datasets", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400, type_suffix="malformed-body")
    invalid = {"name": "d", "inputs": [[1.0], [1.0, 2.0]], "targets": [[1.0]]}
    assert_problem(await client.post("/v1/datasets", json=invalid), 422, pointer_prefix="/inputs")
    no_rows = {"name": "d", "inputs": [[1.0]], "targets": [[]]}
    assert_problem(await client.post("/v1/datasets", json=no_rows), 422, pointer="/targets")
    mismatch = {"name": "d", "inputs": [[1.0], [2.0]], "targets": [[1.0]]}
    assert_problem(await client.post("/v1/datasets", json=mismatch), 422, pointer="/targets")


async def test_taken_names_get_409(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/datasets", json={"name": "d", **XOR})).status_code == 201
    response = await post_csv(client, "1,2\n", name="d", input_columns=1)
    assert_problem(response, 409, type_suffix="name-taken")


async def test_datasets_are_listed_a_page_at_a_time(client: httpx.AsyncClient) -> None:
    for name in ("c", "a", "b"):
        await client.post("/v1/datasets", json={"name": name, **XOR})
    page = (await client.get("/v1/datasets", params={"limit": 2})).json()
    assert [d["name"] for d in page["items"]] == ["a", "b"] and page["total"] == 3
    rest = (await client.get("/v1/datasets", params={"cursor": page["next_cursor"]})).json()
    assert [d["name"] for d in rest["items"]] == ["c"] and rest["next_cursor"] is None


async def test_deleting_a_dataset_frees_its_name(client: httpx.AsyncClient) -> None:
    await client.post("/v1/datasets", json={"name": "d", **XOR})
    assert (await client.delete("/v1/datasets/d")).status_code == 204
    assert_problem(await client.get("/v1/datasets/d"), 404, type_suffix="dataset-not-found")
    assert_problem(await client.delete("/v1/datasets/d"), 404)
    assert (await client.post("/v1/datasets", json={"name": "d", **XOR})).status_code == 201


async def test_a_dataset_in_use_by_a_running_job_cannot_be_deleted(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/datasets", json={"name": "d", **XOR})
    await create(client, model("m", SMALL))
    job = await train(client, "m", dataset="d", epochs=100_000, batch_size=1, learning_rate=0.01)
    problem = assert_problem(
        await client.delete("/v1/datasets/d"), 409, type_suffix="dataset-in-use"
    )
    assert problem["job"] == job["id"]
    await client.post(f"/v1/jobs/{job['id']}/cancel")


def test_zip_members_other_than_the_arrays_are_ignored() -> None:
    from service.jobs.datasets import from_npz

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "hello")
    content = npz(inputs=np.ones((1, 1)), targets=np.ones((1, 1)))
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(buffer, "a") as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
    dataset = from_npz(buffer.getvalue(), 1000)
    assert dataset.inputs.tolist() == [[1.0]] and dataset.rows == 1


async def post_npy(
    client: httpx.AsyncClient, array: NDArray[Any], **params: JSON
) -> httpx.Response:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return await client.post(
        "/v1/datasets",
        params=params,
        content=buffer.getvalue(),
        headers={"Content-Type": "application/x-npy"},
    )


async def test_npy_upload_splits_leading_input_columns_bit_for_bit(
    client: httpx.AsyncClient,
) -> None:
    table = np.array([[v, -v, v / 7] for v in SPECIAL], dtype=np.float64)
    response = await post_npy(client, table, name="table", input_columns=2)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["rows"], body["input_columns"], body["target_columns"]) == (6, 2, 1)
    assert (body["dtype"], body["source"]) == ("float64", "npy")
    got = npz_of((await client.get("/v1/datasets/table/data", params={"format": "npz"})).content)
    assert got["inputs"].tobytes() == np.ascontiguousarray(table[:, :2]).tobytes()
    assert got["targets"].tobytes() == np.ascontiguousarray(table[:, 2:]).tobytes()
    small = np.array([[0.1, 0.2], [1e-45, 3.4e38]], dtype=np.float32)
    f32 = await post_npy(client, small, name="f32", input_columns=1)
    assert f32.json()["dtype"] == "float32"


@pytest.mark.parametrize(
    ("array", "columns"),
    [
        (np.zeros(4), 1),  # 1-D
        (np.zeros((2, 2, 2)), 1),  # 3-D
        (np.zeros((3, 2)), 2),  # no target column
        (np.array([[0.5, np.nan]]), 1),  # not finite
        (np.array([["a", "b"]]), 1),  # not numbers
    ],
)
async def test_bad_npy_uploads_get_422(
    client: httpx.AsyncClient, array: NDArray[Any], columns: int
) -> None:
    response = await post_npy(client, array, name="bad", input_columns=columns)
    assert_problem(response, 422)
    assert (await client.get("/v1/datasets/bad")).status_code == 404


async def test_npy_uploads_need_their_input_columns_and_fit_the_size_limit(apps: Apps) -> None:
    client = await apps(max_dataset_bytes=1000)
    assert_problem(await post_npy(client, np.zeros((2, 2)), name="x"), 422)
    assert_problem(await post_npy(client, np.zeros((100, 2)), name="x", input_columns=1), 413)
    garbage = await client.post(
        "/v1/datasets",
        params={"name": "x", "input_columns": 1},
        content=b"not an npy file",
        headers={"Content-Type": "application/x-npy"},
    )
    assert_problem(garbage, 422)


async def test_the_size_limit_counts_values_as_they_will_be_stored(apps: Apps) -> None:
    client = await apps(max_dataset_bytes=1000)
    small_ints = np.zeros((100, 2), dtype=np.int8)  # 200 bytes sent, 1,600 stored as float64
    assert_problem(await post_npy(client, small_ints, name="ints", input_columns=1), 413)
    mixed = npz(inputs=np.zeros((50, 2), dtype=np.float32), targets=np.zeros((50, 1)))
    assert_problem(await post_npz(client, mixed, name="mixed"), 413)  # the float32 doubles


async def test_an_upload_name_with_two_dots_is_refused(client: httpx.AsyncClient) -> None:
    response = await post_csv(client, "0,0,0\n", name="a..b", input_columns=2)
    assert_problem(response, 422)
    assert (await client.get("/v1/datasets/a..b")).status_code in (404, 422)
