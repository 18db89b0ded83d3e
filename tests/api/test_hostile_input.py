"""Hostile input, class by class (issue 15): integers too long to read, nesting too deep, wrong
JSON types in every field of a V2 request, 0-d and empty arrays in every binary decoder, NUL in
query parameters (PostgreSQL cannot hold it), numbers past what a registry stores in headers and
queries. Each is a 400 or 422 problem that says what was wrong and where, on every backend, and
leaves everything stored exactly as it was."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray

from service.api.schemas.common import MAX_INTEGER
from tests.api.hostile import (
    BIG,
    DEEP_ARRAYS,
    DEEP_OBJECTS,
    JSON,
    JSON_ROUTES,
    ROUTE_IDS,
    V2_REQUEST,
    npy,
    npy_declaring,
    npz,
    position,
    reachable_postgres,
    replaced,
    spliced,
)
from tests.api.support import (
    SEED_INPUTS,
    SEED_PARAMETERS,
    SEED_TARGETS,
    Pool,
    assert_problem,
    parameters_of,
    snapshot,
    version_of,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return reachable_postgres()


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(pool: Pool) -> httpx.AsyncClient:
    """The seed model ``seed`` and ``soft``, both at version 1, nothing else stored."""
    return await pool.client()


async def stored(client: httpx.AsyncClient) -> JSON:
    """Everything stored that a client can see: the models (as :func:`snapshot`), the
    datasets and the jobs."""
    datasets = await client.get("/v1/datasets")
    jobs = await client.get("/v1/jobs")
    assert datasets.status_code == jobs.status_code == 200
    return {"models": await snapshot(client), "datasets": datasets.json(), "jobs": jobs.json()}


async def refused(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    status: int | tuple[int, ...],
    **request: JSON,
) -> dict[str, JSON]:
    """Send a request that must be refused with ``status`` (one of them) as a problem, leaving
    everything stored as it was; its problem."""
    before = await stored(client)
    response = await client.request(method, path, **request)
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, response.text[:2000]
    problem = assert_problem(response, response.status_code)
    assert await stored(client) == before
    return problem


# -- integers too long to read, nesting too deep: every JSON body ------------------------------


@pytest.mark.parametrize(("route", "method", "path", "body", "where"), JSON_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("sign", ["", "-"])
async def test_an_integer_too_long_to_read_is_a_400_naming_where_it_is(
    client: httpx.AsyncClient,
    route: str,
    method: str,
    path: str,
    body: JSON,
    where: tuple[str | int, ...],
    sign: str,
) -> None:
    content = spliced(body, where, sign + BIG)
    start = content.decode().index(sign + BIG)
    problem = await refused(
        client, method, path, 400, content=content, headers={"content-type": "application/json"}
    )
    detail = problem["detail"]
    assert "not valid JSON" in detail, detail
    assert "longer than 4300 digits" in detail or "number out of range" in detail, detail
    # Where the number starts, or where the reader gave up on it.
    assert start <= position(detail) <= start + len(sign + BIG), detail


@pytest.mark.parametrize(("route", "method", "path", "body", "where"), JSON_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("deep", [DEEP_ARRAYS, DEEP_OBJECTS], ids=["arrays", "objects"])
async def test_nesting_too_deep_to_read_is_a_400_naming_where_it_is(
    client: httpx.AsyncClient,
    route: str,
    method: str,
    path: str,
    body: JSON,
    where: tuple[str | int, ...],
    deep: str,
) -> None:
    content = spliced(body, where, deep)
    start = content.decode().index(deep)
    problem = await refused(
        client, method, path, 400, content=content, headers={"content-type": "application/json"}
    )
    detail = problem["detail"]
    assert "not valid JSON" in detail, detail
    assert "Nesting too deep" in detail or "recursion limit exceeded" in detail, detail
    assert start <= position(detail) <= start + len(deep), detail


@pytest.mark.parametrize(
    "route", ["create", "dataset", "train", "forward", "v2-infer"], ids=lambda route: route
)
@pytest.mark.parametrize("raw", [BIG, DEEP_ARRAYS], ids=["long integer", "deep nesting"])
async def test_a_large_body_that_cannot_be_read_is_the_same_400(
    client: httpx.AsyncClient, route: str, raw: str
) -> None:
    """Bodies over 1 MiB are read in pieces, in a worker: the same refusal, the same place."""
    _, method, path, body, where = JSON_ROUTES[ROUTE_IDS.index(route)]
    content = spliced({**body, "pad": ["x" * 100] * 12_000}, where, raw)
    assert len(content) > 1024 * 1024
    start = content.decode().index(raw)
    problem = await refused(
        client, method, path, 400, content=content, headers={"content-type": "application/json"}
    )
    assert "not valid JSON" in problem["detail"], problem
    assert start <= position(problem["detail"]) <= start + len(raw), problem["detail"]


async def test_the_longest_integers_python_reads_are_refused_by_the_schema_not_the_reader(
    client: httpx.AsyncClient,
) -> None:
    """4,300 digits are read; where a schema takes no such number the answer is its 422."""
    longest = "9" * 4300
    problem = await refused(
        client,
        "POST",
        "/v1/models/seed/rollback",
        422,
        content=f'{{"version": {longest}}}'.encode(),
        headers={"content-type": "application/json"},
    )
    assert problem["errors"][0]["pointer"] == "/version"
    stateless = replaced(JSON_ROUTES[11][3], ("optimizer_state", "step"), MAX_INTEGER + 1)
    problem = await refused(client, "POST", "/v1/train-step", 422, json=stateless)
    assert problem["errors"][0]["pointer"] == "/optimizer_state/step"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 10**30),
        ("batch_size", 10**30),
        ("seed", MAX_INTEGER + 1),
        ("patience", 10**30),
        ("patience", 10**4000),
    ],
)
async def test_a_job_number_past_its_bound_is_a_422_naming_it(
    client: httpx.AsyncClient, field: str, value: int
) -> None:
    body = replaced(JSON_ROUTES[3][3], (field,), value)
    problem = await refused(client, "POST", "/v1/models/seed/train", 422, json=body)
    assert problem["errors"][0]["pointer"] == f"/{field}", problem


# -- V2: a value of the wrong JSON type in every field ------------------------------------------

WRONG = {
    "empty list": [],
    "list": [["FP64"]],
    "object": {"a": 1},
    "string": "FP64x",
    "integer": 7,
    "huge integer": 10**30,
    "float": 1.5,
    "true": True,
    "null": None,
}
# Every field of a request: where it is, where its errors point, and the wrong values that are
# right for it after all.
V2_FIELDS: list[tuple[tuple[str | int, ...], str, set[str]]] = [
    (("id",), "/id", {"string", "null"}),
    (("parameters",), "/parameters", {"object", "null"}),
    (("parameters", "binary_data_output"), "/parameters/binary_data_output", {"true"}),
    (("inputs",), "/inputs", set()),
    (("inputs", 0), "/inputs/0", set()),
    (("inputs", 0, "name"), "/inputs/0/name", {"string"}),
    (("inputs", 0, "datatype"), "/inputs/0/datatype", set()),
    (("inputs", 0, "shape"), "/inputs/0/shape", {"empty list"}),  # [], a 0-d tensor's
    (("inputs", 0, "shape", 0), "/inputs/0/shape", {"integer"}),
    (("inputs", 0, "data"), "/inputs/0/data", set()),
    (("inputs", 0, "data", 0), "/inputs/0/data", {"integer", "float", "true"}),
    (("inputs", 0, "parameters"), "/inputs/0/parameters", {"object", "null"}),
    (
        ("inputs", 0, "parameters", "binary_data_size"),
        "/inputs/0/parameters/binary_data_size",
        {"null", "integer"},  # 7 is a size: that data is given too is another error
    ),
    (("outputs",), "/outputs", {"null", "empty list"}),  # every output
    (("outputs", 0), "/outputs/0", set()),
    (("outputs", 0, "name"), "/outputs/0/name", {"string"}),
    (("outputs", 0, "parameters"), "/outputs/0/parameters", {"object", "null"}),
    (
        ("outputs", 0, "parameters", "binary_data"),
        "/outputs/0/parameters/binary_data",
        {"null", "true"},
    ),
]


@pytest.mark.parametrize(("where", "pointer", "right"), V2_FIELDS, ids=[p for _, p, _ in V2_FIELDS])
async def test_a_v2_field_of_the_wrong_json_type_is_refused_naming_the_field(
    client: httpx.AsyncClient, where: tuple[str | int, ...], pointer: str, right: set[str]
) -> None:
    for kind, value in WRONG.items():
        body = replaced(V2_REQUEST, where, value)
        if kind in right:
            response = await client.post("/v2/models/seed/infer", json=body)
            assert response.status_code < 500, response.text
            continue
        problem = await refused(client, "POST", "/v2/models/seed/infer", (400, 422), json=body)
        pointers = [error["pointer"] for error in problem.get("errors", [])]
        assert pointers and pointers[0].startswith(pointer), (kind, problem)
        field = pointer.rstrip("/0123456789").rsplit("/", 1)[-1].removesuffix("s")
        assert field in problem["detail"], (kind, problem)  # "output" for /outputs/0


@pytest.mark.parametrize(
    ("datatype", "says"),
    [
        ([], "an empty list"),
        (["FP64"], "a list"),
        ({"name": "FP64"}, "an object"),
        (64, "a number"),
    ],
)
async def test_a_v2_datatype_that_is_not_a_string_says_what_it_is(
    client: httpx.AsyncClient, datatype: JSON, says: str
) -> None:
    body = replaced(V2_REQUEST, ("inputs", 0, "datatype"), datatype)
    problem = await refused(client, "POST", "/v2/models/seed/infer", 400, json=body)
    assert f"unsupported datatype {says}" in problem["detail"], problem
    assert "FP64" in problem["detail"]
    assert problem["errors"] == [{"pointer": "/inputs/0/datatype", "message": problem["detail"]}]


@pytest.mark.parametrize(
    ("shape", "says"),
    [
        ([1] * 65, "65 dimensions"),
        ([0, 2**62, 2**62], "larger than any array"),
        ([MAX_INTEGER + 1, 2], "integers from 0 to"),
        ([-1, 2], "integers from 0 to"),
    ],
)
@pytest.mark.parametrize("binary", [False, True])
async def test_a_v2_shape_no_array_can_have_is_a_400(
    client: httpx.AsyncClient, shape: list[int], says: str, binary: bool
) -> None:
    tensor: dict[str, JSON] = {"name": "input", "shape": shape, "datatype": "FP64"}
    if binary:
        tensor["parameters"] = {"binary_data_size": 0}
    else:
        tensor["data"] = []
    header = json.dumps({"inputs": [tensor]}).encode()
    headers = {"Inference-Header-Content-Length": str(len(header))} if binary else {}
    problem = await refused(
        client, "POST", "/v2/models/seed/infer", 400, content=header, headers=headers
    )
    assert says in problem["detail"], problem
    assert problem["errors"][0]["pointer"] == "/inputs/0/shape"


async def test_v2_data_of_integers_beyond_64_bits_is_refused(client: httpx.AsyncClient) -> None:
    body = replaced(V2_REQUEST, ("inputs", 0, "data"), [10**30, 1])
    problem = await refused(client, "POST", "/v2/models/seed/infer", 400, json=body)
    assert "beyond 64 bits" in problem["detail"], problem
    assert problem["errors"][0]["pointer"] == "/inputs/0/data"


# -- numbers in headers and queries past what a registry stores ---------------------------------

# As bytes: "²" is a digit to str.isdigit and none to int(); a header is Latin-1 on the wire.
TOO_BIG_TAGS = [
    f'"{BIG}"'.encode(),
    BIG.encode(),
    f'W/"{BIG}"'.encode(),
    f'"{MAX_INTEGER + 1}"'.encode(),
    '"²"'.encode("latin-1"),
    '"١"'.encode(),
]


@pytest.mark.parametrize("tag", TOO_BIG_TAGS)
@pytest.mark.parametrize(
    ("method", "path", "request_body"),
    [
        (
            "POST",
            "/v1/models/seed/train-step",
            {"json": {"inputs": SEED_INPUTS, "targets": SEED_TARGETS}},
        ),
        ("POST", "/v1/models/seed/rollback", {"json": {"version": 1}}),
        ("DELETE", "/v1/models/seed", {}),
        ("PUT", "/v1/models/seed/parameters", {"json": {"parameters": SEED_PARAMETERS}}),
        (
            "POST",
            "/v1/models/seed/train-step",
            {
                "content": npz(inputs=np.array(SEED_INPUTS), targets=np.array(SEED_TARGETS)),
                "headers": {"content-type": "application/x-npz"},
            },
        ),
    ],
    ids=["train-step", "rollback", "delete", "put-parameters", "train-step-npz"],
)
async def test_an_if_match_of_no_version_a_registry_can_hold_is_a_400(
    client: httpx.AsyncClient, tag: bytes, method: str, path: str, request_body: dict[str, JSON]
) -> None:
    request = dict(request_body)
    headers = {**request.pop("headers", {}), "If-Match": tag}
    problem = await refused(client, method, path, 400, headers=headers, **request)
    assert problem["type"].endswith("/malformed-header"), problem
    assert problem["detail"].startswith("If-Match must be an ETag"), problem
    assert len(problem["detail"]) < 300, "the header is cut short, not repeated whole"
    assert await version_of(client, "seed") == 1


async def test_an_if_match_too_long_beside_invalid_json_is_a_400(
    client: httpx.AsyncClient,
) -> None:
    for tag in TOO_BIG_TAGS:
        await refused(
            client,
            "PUT",
            "/v1/models/seed/parameters",
            400,
            content=b"{",
            headers={"If-Match": tag, "content-type": "application/json"},
        )


async def test_a_stale_if_match_still_answers_412_before_invalid_json(
    client: httpx.AsyncClient,
) -> None:
    problem = await refused(
        client,
        "PUT",
        "/v1/models/seed/parameters",
        412,
        content=b"{",
        headers={"If-Match": f'"{MAX_INTEGER}"', "content-type": "application/json"},
    )
    assert str(MAX_INTEGER) in problem["detail"]


@pytest.mark.parametrize("event", [BIG, str(MAX_INTEGER + 1), "²", "-1", "1e3"])
async def test_a_last_event_id_of_no_event_is_a_400(client: httpx.AsyncClient, event: str) -> None:
    headers = {"Last-Event-ID": event.encode("latin-1")}
    problem = await refused(client, "GET", "/v1/jobs/somejob/events", 400, headers=headers)
    assert problem["detail"].startswith("Last-Event-ID must be an event id"), problem


@pytest.mark.parametrize("length", [BIG, "²", "0", "-5", str(MAX_INTEGER + 1)])
async def test_an_inference_header_length_that_is_no_length_is_a_400(
    client: httpx.AsyncClient, length: str
) -> None:
    problem = await refused(
        client,
        "POST",
        "/v2/models/seed/infer",
        400,
        content=json.dumps(V2_REQUEST).encode(),
        headers={"Inference-Header-Content-Length": length.encode("latin-1")},
    )
    assert "Inference-Header-Content-Length" in problem["detail"], problem


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/v1/models/seed/parameters?version={}", "version"),
        ("/v1/models/seed/export?version={}", "version"),
        ("/v1/models/seed/diagram.svg?version={}", "version"),
        ("/v1/models/seed/walkthrough?inputs=0.1,0.2&targets=1&version={}", "version"),
        ("/v2/models/seed/versions/{}", "version"),
        ("/v2/models/seed/versions/{}/ready", "version"),
        ("/v1/jobs/somejob/events?after={}", "after"),
        ("/v1/models/seed/history?cursor={}", "cursor"),
    ],
)
@pytest.mark.parametrize("number", [str(MAX_INTEGER + 1), "9" * 40, BIG])
async def test_a_query_or_path_number_past_what_a_registry_stores_is_a_422(
    client: httpx.AsyncClient, path: str, parameter: str, number: str
) -> None:
    response = await client.get(path.format(number))
    assert_problem(response, 422, parameter=parameter)


# -- NUL in query and path text: PostgreSQL cannot hold it -------------------------------------


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/v1/models?cursor={}", "cursor"),
        ("/v1/datasets?cursor={}", "cursor"),
        ("/v1/jobs?cursor={}", "cursor"),
        ("/v1/jobs?model={}", "model"),
        ("/v1/models/{}", "name"),
        ("/v1/models/{}/versions", "name"),
        ("/v1/datasets/{}", "name"),
        ("/v1/jobs/{}", "job_id"),
        ("/v2/models/{}", "name"),
        ("/v1/datasets?name={}&input_columns=1", "name"),
    ],
)
@pytest.mark.parametrize("text", ["\x00", "seed\x00", "\x00seed", "a\x00b"])
async def test_nul_in_query_or_path_text_is_a_422_naming_the_parameter(
    client: httpx.AsyncClient, path: str, parameter: str, text: str
) -> None:
    method = "POST" if path.startswith("/v1/datasets?name") else "GET"
    request: dict[str, JSON] = {}
    if method == "POST":
        request = {"content": b"x,y\n1,2\n", "headers": {"content-type": "text/csv"}}
    before = await stored(client)
    response = await client.request(method, path.format(quote(text, safe="")), **request)
    body = assert_problem(response, 422, parameter=parameter)
    if "cursor" in path or "model=" in path:
        assert "NUL" in body["detail"], body
    assert await stored(client) == before


@pytest.mark.parametrize("text", ["\x01", "\x1f", "\x7f", "\u2028", "é", "seed\t"])
async def test_other_control_characters_in_a_cursor_are_read(
    client: httpx.AsyncClient, text: str
) -> None:
    for path in ("/v1/models", "/v1/datasets", "/v1/jobs"):
        response = await client.get(path, params={"cursor": text})
        assert response.status_code == 200, response.text
    response = await client.get("/v1/jobs", params={"model": text})
    assert response.status_code == 200, response.text


# -- degenerate arrays in every binary decoder --------------------------------------------------

DEGENERATE: dict[str, NDArray[Any]] = {
    "0-d": np.array(0.5),
    "1-d": np.array([0.23, 0.55]),
    "no rows": np.zeros((0, 2)),
    "no columns": np.zeros((1, 0)),
    "3-d": np.zeros((1, 2, 1)),
}


@pytest.mark.parametrize("kind", DEGENERATE)
async def test_an_npy_batch_that_is_not_rows_of_columns_is_a_422_saying_the_shape_expected(
    client: httpx.AsyncClient, kind: str
) -> None:
    array = DEGENERATE[kind]
    problem = await refused(
        client,
        "POST",
        "/v1/models/seed/forward",
        422,
        content=npy(array),
        headers={"content-type": "application/x-npy"},
    )
    assert "must be 2-D" in problem["detail"], problem
    assert f"got shape {list(array.shape)}" in problem["detail"], problem
    assert problem["errors"][0]["pointer"] == "/inputs"


@pytest.mark.parametrize("kind", DEGENERATE)
@pytest.mark.parametrize("name", ["inputs", "targets"])
@pytest.mark.parametrize("path", ["/v1/models/seed/gradient", "/v1/models/seed/train-step"])
async def test_an_npz_batch_that_is_not_rows_of_columns_is_a_422_and_commits_nothing(
    client: httpx.AsyncClient, kind: str, name: str, path: str
) -> None:
    arrays = {"inputs": np.array(SEED_INPUTS), "targets": np.array(SEED_TARGETS)}
    arrays[name] = DEGENERATE[kind]
    problem = await refused(
        client,
        "POST",
        path,
        422,
        content=npz(**arrays),
        headers={"content-type": "application/x-npz"},
    )
    assert f"the {name} array must be 2-D" in problem["detail"], problem
    assert problem["errors"][0]["pointer"] == f"/{name}"
    assert await version_of(client, "seed") == 1
    assert await parameters_of(client, "seed") == SEED_PARAMETERS


@pytest.mark.parametrize(
    "array",
    [np.zeros((1, 2), complex), np.zeros((1, 2), bool), np.array([["a", "b"]])],
    ids=["complex", "bool", "str"],
)
async def test_an_npy_batch_of_no_real_numbers_is_a_422(
    client: httpx.AsyncClient, array: np.ndarray
) -> None:
    problem = await refused(
        client,
        "POST",
        "/v1/models/seed/forward",
        422,
        content=npy(array),
        headers={"content-type": "application/x-npy"},
    )
    assert array.dtype.str in problem["detail"], problem


@pytest.mark.parametrize(
    ("shape", "says"),
    [
        (f"({BIG[:3000]}, {BIG[:3000]})", "which no array can have"),
        ("(-1, 2)", "which no array can have"),
        (f"({2**70},)", "which no array can have"),
        ("(" + "1, " * 70 + ")", "70 dimensions"),
        (f"(0, {2**62}, {2**62})", "which no array can have"),
    ],
    ids=["huge", "negative", "past memory", "70 dimensions", "empty but huge"],
)
@pytest.mark.parametrize("to", ["forward", "dataset", "dataset-npz"])
async def test_an_npy_header_declaring_a_shape_no_array_can_have_is_refused(
    client: httpx.AsyncClient, shape: str, says: str, to: str
) -> None:
    declared = npy_declaring(shape, b"\0" * 16)
    if to == "forward":
        path, media, content = "/v1/models/seed/forward", "application/x-npy", declared
    elif to == "dataset":
        path, media, content = "/v1/datasets?name=d&input_columns=1", "application/x-npy", declared
    else:
        path, media, content = "/v1/datasets?name=d", "application/x-npz", _npz_with(declared)
    problem = await refused(
        client, "POST", path, (400, 422), content=content, headers={"content-type": media}
    )
    assert says in problem["detail"], problem
    assert len(problem["detail"]) < 400, "the shape is cut short, not repeated whole"


def _npz_with(inputs_npy: bytes) -> bytes:
    """An ``.npz`` of a well-formed ``targets`` and the file ``inputs_npy`` as ``inputs``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inputs.npy", inputs_npy)
        archive.writestr("targets.npy", npy(np.zeros((1, 1))))
    return buffer.getvalue()


@pytest.mark.parametrize("kind", DEGENERATE)
@pytest.mark.parametrize("name", ["inputs", "targets"])
async def test_a_dataset_npz_of_arrays_that_are_not_rows_of_columns_is_a_422(
    client: httpx.AsyncClient, kind: str, name: str
) -> None:
    arrays = {"inputs": np.array(SEED_INPUTS), "targets": np.array(SEED_TARGETS)}
    arrays[name] = DEGENERATE[kind]
    problem = await refused(
        client,
        "POST",
        "/v1/datasets?name=d",
        422,
        content=npz(**arrays),
        headers={"content-type": "application/x-npz"},
    )
    assert f"got shape {list(DEGENERATE[kind].shape)}" in problem["detail"], problem
    assert problem["errors"][0]["pointer"] == f"/{name}"


@pytest.mark.parametrize(
    ("csv", "says"),
    [
        (b"x,y\n1," + b"9" * 200_000 + b"\n", "field larger than field limit"),
        (b'x,y\n1,"' + b"a" * 200_000, "field larger than field limit"),
        (b"x,y\n1,\x002\n", "is not a number"),
        (b"x,y\n1," + b"9" * 5000 + b"\n", "is not finite"),
        (b"x,y\n", "no data lines"),
    ],
    ids=["long field", "unclosed quote", "NUL", "long number", "header only"],
)
async def test_a_csv_dataset_that_cannot_be_read_is_a_422_saying_where(
    client: httpx.AsyncClient, csv: bytes, says: str
) -> None:
    problem = await refused(
        client,
        "POST",
        "/v1/datasets?name=d&input_columns=1",
        422,
        content=csv,
        headers={"content-type": "text/csv"},
    )
    assert says in problem["detail"], problem
    assert len(problem["detail"]) < 300, "a long field is cut short, not repeated whole"


@pytest.mark.parametrize(
    ("arrays", "says"),
    [
        ({"W0": np.float64(1), "b0": np.zeros(1)}, "got []"),
        ({"W0": np.zeros((2, 1)), "b0": np.float64(1)}, "got []"),
        ({"W0": np.zeros((0, 1)), "b0": np.zeros(1)}, "got [0, 1]"),
        ({"W0": np.zeros((2, 1, 1)), "b0": np.zeros(1)}, "got [2, 1, 1]"),
        ({"W0": np.zeros((2, 1), complex), "b0": np.zeros(1)}, "<c16"),
    ],
    ids=["0-d weights", "0-d biases", "empty weights", "3-d weights", "complex weights"],
)
async def test_a_model_archive_of_degenerate_arrays_is_a_422(
    client: httpx.AsyncClient, arrays: dict[str, np.ndarray], says: str
) -> None:
    network = {
        "inputs": 2,
        "layers": [{"units": 1, "activation": "sigmoid"}],
        "loss": "half_squared_error",
    }
    model = np.array(json.dumps({"name": "imported", "network": network}))
    problem = await refused(
        client,
        "POST",
        "/v1/models",
        422,
        content=npz(model=model, **arrays),
        headers={"content-type": "application/x-npz"},
    )
    assert says in problem["detail"], problem


@pytest.mark.parametrize("raw", [BIG, DEEP_ARRAYS], ids=["long integer", "deep nesting"])
async def test_a_model_archive_whose_json_cannot_be_read_is_a_400(
    client: httpx.AsyncClient, raw: str
) -> None:
    text = '{"name": "imported", "network": ' + raw + "}"
    problem = await refused(
        client,
        "POST",
        "/v1/models",
        400,
        content=npz(model=np.array(text), W0=np.zeros((2, 1)), b0=np.zeros(1)),
        headers={"content-type": "application/x-npz"},
    )
    assert "the array 'model' is not JSON" in problem["detail"], problem
    assert "(char 32)" in problem["detail"] or "Nesting too deep" in problem["detail"]


# -- counts in messages --------------------------------------------------------------------


async def test_messages_count_one_in_the_singular(client: httpx.AsyncClient) -> None:
    problem = await refused(
        client,
        "POST",
        "/v1/models/seed/gradient",
        422,
        json={"inputs": SEED_INPUTS * 2, "targets": [[0.5, 0.5], [0.5, 0.5]]},
    )
    assert "must have 1 value each" in problem["detail"], problem
    problem = await refused(
        client,
        "POST",
        "/v1/models/seed/gradient",
        422,
        json={"inputs": SEED_INPUTS * 2, "targets": SEED_TARGETS},
    )
    assert "targets has 1 row but inputs has 2 rows" in problem["detail"], problem
    problem = await refused(
        client,
        "POST",
        "/v1/datasets?name=d&input_columns=1",
        422,
        content=b"1,2\n3\n",
        headers={"content-type": "text/csv"},
    )
    assert "CSV line 2 has 1 value;" in problem["detail"], problem
