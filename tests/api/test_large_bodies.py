"""Large bodies and answers take another way than small ones (decoded, validated, converted
and written in worker threads, in pieces), and every answer stays the same: each request here
is sent to an app that treats every body and answer as small and to one that treats them all as
large, and the two answers are compared, status, headers and content."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from service.api.app import create_app
from service.core import LayerParams
from service.interop import archive, jsontext
from service.operations import sizes
from service.settings import Settings
from tests.api.support import SEED_NETWORK, client_for, seed_model

Request = tuple[str, str, dict[str, Any]]  # method, path, httpx options
HEADERS = ("content-type", "etag", "location", "content-disposition")
NOT_COMPARED = {"created_at", "updated_at", "instance"}
JSON_TYPE = {"Content-Type": "application/json"}


def raw(body: str | bytes, content_type: str | None = "application/json") -> dict[str, Any]:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return {"content": body if isinstance(body, bytes) else body.encode(), "headers": headers}


SEED = json.dumps(seed_model("copy"))
SEED_LAYERS = json.loads(SEED)["parameters"]
TWO_LAYERS = {"layers": SEED_LAYERS["layers"][:2]}
BODIES: list[str | bytes] = [
    SEED,
    json.dumps(seed_model("named", named=True)),
    SEED.replace("0.1", " 1e-5 ", 1).replace(", ", ",\n\t "),
    SEED[:-1],
    SEED[:40],
    SEED.replace(":", " ", 1),
    SEED.replace('"copy"', "'copy'"),
    SEED.replace("0.1", "NaN", 1),
    SEED.replace("0.1", "Infinity", 1),
    SEED.replace("0.1", '"0.1"'),
    SEED.replace("0.1", "1e999", 1),
    SEED.replace("0.1", "12345678901234567890123456789", 1),
    SEED.replace("]]", "]]]", 1),
    SEED.replace('"copy"', '"bad name!"'),
    SEED.replace('"copy"', '"a..b"'),
    SEED.replace('"name"', '"nom"'),
    SEED + " ",
    SEED + " x",
    SEED + "{}",
    json.dumps({**seed_model("both"), "init": {"scheme": "zeros"}}),
    json.dumps({**seed_model("short"), "parameters": TWO_LAYERS}),
    json.dumps({"name": "drawn", "network": SEED_NETWORK, "init": {"seed": 3}}),
    "null",
    "[]",
    "1",
    '"text"',
    "{}",
    "",
    " ",
    "[" * 3000 + "]" * 3000,
    SEED.encode("utf-16"),
    "\ufeff".encode() + SEED.encode(),
    b"\x80" + SEED.encode(),
    SEED.replace('"copy"', '"caf\\u00e9"').encode(),
    SEED.replace('"copy"', '"\\ud800"').encode(),
]
PUT_BODIES: list[str] = [
    json.dumps({"parameters": SEED_LAYERS}),
    json.dumps({"parameters": json.loads(json.dumps(seed_model(named=True)))["parameters"]}),
    json.dumps({"model": "seed", "version": 9, "parameters": SEED_LAYERS}),
    json.dumps({"model": "other", "parameters": SEED_LAYERS}),
    json.dumps({"parameters": TWO_LAYERS}),
    json.dumps({"parameters": {"w1": 1.0}}),
    json.dumps({"parameters": SEED_LAYERS})[:-3],
    json.dumps({"parameters": SEED_LAYERS, "extra": 1}),
    "nope",
]

CASES: list[list[Request]] = [
    *([("POST", "/v1/models", raw(body))] for body in BODIES),
    *(
        [("POST", "/v1/models", raw(SEED, content_type))]
        for content_type in (
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
            "text/plain",
            "application/x-www-form-urlencoded",
            None,
        )
    ),
    [("POST", "/v1/models?name=given", raw(SEED))],
    [("POST", "/v1/models?name=bad!", raw(SEED.replace("0.1", '"x"')))],
    [("POST", "/v1/models?loss=nope&name=ok", raw(SEED.replace("0.1", '"x"')))],
    [("POST", "/v1/models?name=bad!", raw(SEED[:-1]))],
    [("POST", "/v1/models", raw(SEED)), ("POST", "/v1/models", raw(SEED))],
    *(
        [
            ("POST", "/v1/models", {"json": seed_model()}),
            ("PUT", "/v1/models/seed/parameters", raw(body)),
            ("GET", "/v1/models/seed/parameters", {}),
        ]
        for body in PUT_BODIES
    ),
    *(
        [
            ("POST", "/v1/models", {"json": seed_model()}),
            ("PUT", path, raw(PUT_BODIES[body]) | {"headers": headers}),
        ]
        for path in ("/v1/models/seed/parameters?notation=named", "/v1/models/nope/parameters")
        for headers in (JSON_TYPE, {**JSON_TYPE, "If-Match": '"7"'}, {**JSON_TYPE, "If-Match": "x"})
        for body in (0, 7, -1)  # valid, not valid by the schema, not JSON
    ),
    [
        ("POST", "/v1/models", {"json": seed_model()}),
        ("PUT", "/v1/models/seed/parameters?notation=bad", raw(PUT_BODIES[-1])),
    ],
    [
        ("POST", "/v1/models", {"json": seed_model()}),
        ("GET", "/v1/models/seed/export", {}),
        ("GET", "/v1/models/seed/export?format=npz", {}),
        ("GET", "/v1/models/seed/export?format=onnx", {}),
        ("GET", "/v1/models/seed/export?format=json&version=2", {}),
        ("GET", "/v1/models/seed/parameters?notation=named", {}),
    ],
    *(
        [("POST", "/v1/datasets", raw(body))]
        for body in (
            json.dumps({"name": "xor", "inputs": [[0, 0], [1, 1]], "targets": [[0], [1]]}),
            json.dumps({"name": "xor", "inputs": [[0, 0], [1]], "targets": [[0], [1]]}),
            json.dumps({"name": "xor", "inputs": [[0, "0"]], "targets": [[0]]}),
            json.dumps({"name": "a..b", "inputs": [[0]], "targets": [[0], [1]]}),
            '{"name": "xor", "inputs": [[0, 0], [1, 1]], "targets": [[0], [1]',
            b'{"name": "\x80"}',
            "[]",
        )
    ),
    [
        ("POST", "/v1/datasets", {"json": {"name": "d", "inputs": [[0.1, 2]], "targets": [[3]]}}),
        ("GET", "/v1/datasets/d/data", {}),
        ("GET", "/v1/datasets/d/data?format=npz", {}),
    ],
    [
        ("POST", "/v1/datasets?name=c&input_columns=1", raw("x,y\n1,2\n3,4\n", "text/csv")),
        ("GET", "/v1/datasets/c/data", {}),
    ],
]


def app() -> FastAPI:
    return create_app(Settings(registry="memory://"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def answers_to(requests: list[Request]) -> list[tuple[int, dict[str, str], Any]]:
    built = app()
    try:
        async with client_for(built) as client:
            return [outcome(await client.request(m, p, **options)) for m, p, options in requests]
    finally:
        built.state.store.close()


def outcome(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {k: response.headers[k] for k in HEADERS if k in response.headers}
    content: Any = response.content
    if "json" in response.headers.get("content-type", ""):
        content = _without(response.json(), NOT_COMPARED)
    return response.status_code, headers, content


def _without(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


@pytest.mark.anyio
@pytest.mark.parametrize("requests", CASES, ids=[f"case{i}" for i in range(len(CASES))])
async def test_large_bodies_and_answers_are_answered_as_small_ones(
    requests: list[Request], monkeypatch: pytest.MonkeyPatch
) -> None:
    small = await answers_to(requests)
    with monkeypatch.context() as patch:  # every body, answer and array large, in small pieces
        patch.setattr(sizes, "LARGE_BODY", 0)
        patch.setattr(sizes, "LARGE", 0)
        patch.setattr(sizes, "BLOCK", 64)
        patch.setattr(jsontext, "PIECE", 4)
        patch.setattr(jsontext, "NUMBERS", 2)
        large = await answers_to(requests)
    assert large == small


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("format", "media"), [("npz", "application/x-npz"), ("onnx", "application/onnx")]
)
async def test_large_files_are_imported_as_small_ones(
    format: str, media: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create = ("POST", "/v1/models", {"json": seed_model()})
    exported = await answers_to([create, ("GET", f"/v1/models/seed/export?format={format}", {})])
    content = exported[1][2]
    files = [content, content[:-7], content[:100], b"not a file"]
    requests = [
        ("POST", f"/v1/models?{query}", {"content": file, "headers": {"Content-Type": media}})
        for query in ("name=copy", "name=other&loss=binary_cross_entropy", "")
        for file in files
    ]
    small = await answers_to(requests)
    with monkeypatch.context() as patch:
        patch.setattr(sizes, "LARGE_BODY", 0)
        patch.setattr(sizes, "LARGE", 0)
        large = await answers_to(requests)
    assert large == small
    assert [small[i][0] for i in (0, 4, 8)] == [201, 201, 201]  # the whole file, each query


def test_the_json_export_is_written_as_json_dumps_writes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(0)
    params = (
        LayerParams(rng.standard_normal((5, 7)) * 1e-7, rng.standard_normal(7) * 1e17),
        LayerParams(rng.standard_normal((7, 1)).astype(np.float32), np.zeros(1, np.float32)),
    )
    spec = {
        "network": {"inputs": 5, "layers": [{"units": 7}, {"units": 1}]},
        "optimizer": {"kind": "sgd"},
        "description": "caf\u00e9 \u2603",
        "tags": ["a", "\u00e9"],
    }
    expected = json.dumps(
        archive.create_body("m\u00e9", spec, params), allow_nan=False, separators=(",", ":")
    )
    for numbers in (1, 2, 3, 8192):
        monkeypatch.setattr(jsontext, "NUMBERS", numbers)
        assert "".join(archive.json_pieces("m\u00e9", spec, params)) == expected
