"""Hypothesis strategies of every class of hostile input (issue 15), sent to every backend:
integers too long to read, nesting too deep, values of any JSON type in every field of every
JSON body, NUL and control characters in strings, query parameters, path parameters and
headers, 0-d, empty and otherwise degenerate arrays in every binary body. No answer is a 5xx;
every refusal is a problem (``application/problem+json``) and changes nothing stored.

Derandomized: the same examples on every run (the README's test command is deterministic);
BACKPROP_EXPLORE=N draws N new random examples per test instead."""

from __future__ import annotations

import asyncio
import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.api.app import create_app
from service.settings import Settings
from tests.api.hostile import (
    JSON_ROUTES,
    ROUTE_IDS,
    npy,
    npy_declaring,
    reachable_postgres,
    spliced,
)
from tests.api.support import (
    PROBLEM_JSON,
    SEED_INPUTS,
    SEED_TARGETS,
    client_for,
    seed_model,
)
from tests.conftest import BACKENDS
from tests.postgres import PostgresSchemas

JSON = Any
EXPLORE = int(os.environ.get("BACKPROP_EXPLORE", "0"))
FUZZ = settings(
    max_examples=EXPLORE or 150,
    deadline=None,
    derandomize=not EXPLORE,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- the classes ------------------------------------------------------------------------------

CONTROL = "\x00\x01\x08\x0b\x1b\x1f\x7f\x85\u2028\u2029\ufeff\ud800\udfff"
hostile_text = st.text(
    alphabet=st.one_of(st.sampled_from(CONTROL), st.characters(codec="utf-8")), max_size=12
)
with_nul = st.builds(lambda a, b: f"{a}\x00{b}", hostile_text, hostile_text)
huge_integers = st.builds(
    lambda sign, digit, n: sign + digit + "0" * n,
    st.sampled_from(["", "-"]),
    st.sampled_from("123456789"),
    st.integers(4300, 6000),  # more than Python's 4,300 digits
)
deep_nesting = st.builds(
    lambda depth, kind: "[" * depth + "]" * depth if kind else '{"a":' * depth + "0" + "}" * depth,
    st.integers(900, 3000),
    st.booleans(),
)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(-(2**80), 2**80),
        st.floats(allow_nan=False, allow_infinity=False),
        hostile_text,
    ),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(hostile_text, children),
    max_leaves=8,
)
raw_tokens = st.one_of(
    huge_integers,
    deep_nesting,
    json_values.map(json.dumps),
    st.sampled_from(["NaN", "Infinity", "-1e400", "1e999", "[[]]", "[[[]]]", "{}", '""']),
)


def places(value: JSON, where: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every place in a JSON value (the first two items of a list), and a new member of every
    object."""
    yield where
    if isinstance(value, dict):
        yield (*where, "extra\x00")
        for key, item in value.items():
            yield from places(item, (*where, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:2]):
            yield from places(item, (*where, i))


ROUTES = {
    route: (method, path, body, list(places(body))) for route, method, path, body, _ in JSON_ROUTES
}

SHAPES = [(), (0,), (2,), (0, 2), (1, 0), (0, 0), (1, 2, 1), (1, 2), (2, 2), (1, 1)]
DTYPES = ["<f8", "<f4", ">f8", "<f2", "<i8", "|u1", "|b1", "<c16", "<U1", "<M8[s]"]
arrays = st.builds(
    lambda shape, dtype: np.zeros(shape, dtype=np.dtype(dtype)),
    st.sampled_from(SHAPES),
    st.sampled_from(DTYPES),
)
declared_shapes = st.sampled_from(
    [
        "()",
        "(-1, 2)",
        "(0, 4611686018427387904, 4)",
        f"({2**70},)",
        "(" + "1, " * 70 + ")",
        f"({'9' * 3000}, 2)",
        "'x'",
        "(1.5, 2)",
        "(True,)",
    ]
)
npy_files = st.one_of(
    arrays.map(npy),
    st.builds(npy_declaring, declared_shapes, st.binary(max_size=24)),
    st.binary(max_size=64),
)


@st.composite
def npz_files(draw: st.DrawFn, names: tuple[str, ...]) -> bytes:
    """A zip of ``.npy`` members of ``names`` (each a hostile file or a good one) and maybe
    an extra member."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            good = name in ("inputs", "targets") and draw(st.booleans())
            content = npy(np.array(SEED_INPUTS if name == "inputs" else SEED_TARGETS))
            if name == "model":
                model = {"name": "imported", "network": seed_model()["network"]}
                content = npy(np.array(json.dumps(model)))
            archive.writestr(f"{name}.npy", content if good or name == "model" else draw(npy_files))
        if draw(st.booleans()):
            archive.writestr(draw(st.sampled_from(["extra.npy", "x.txt", "W9.npy"])), b"")
    return buffer.getvalue()


# -- the apps ---------------------------------------------------------------------------------


class App:
    """One app on a registry of one backend, kept for a whole test, holding the seed model
    ``seed`` and ``trainee`` (the one jobs train, so that a running job never changes
    ``seed``)."""

    def __init__(self, registry: str) -> None:
        self.runner = asyncio.Runner()
        self.app = create_app(Settings(registry=registry))
        self.client = client_for(self.app)
        self.models = ("seed", "trainee")
        self.run(self._setup())

    def run(self, work: Any) -> Any:
        return self.runner.run(work)

    async def _setup(self) -> None:
        await self.client.__aenter__()
        for name in self.models:
            created = await self.client.post("/v1/models", json=seed_model(name))
            assert created.status_code == 201, created.text

    async def seed_state(self) -> JSON:
        model = await self.client.get("/v1/models/seed")
        parameters = await self.client.get("/v1/models/seed/parameters")
        assert model.status_code == parameters.status_code == 200, model.text
        return model.json()["version"], parameters.json()

    def send(self, method: str, path: str, **request: JSON) -> httpx.Response:
        response: httpx.Response = self.run(self._send(method, path, **request))
        return response

    async def _send(self, method: str, path: str, **request: JSON) -> httpx.Response:
        before = await self.seed_state()
        response = await self.client.request(method, path, **request)
        assert response.status_code < 500, f"{method} {path}: {response.text[:2000]}"
        if response.status_code >= 400:
            media = response.headers.get("content-type", "").split(";")[0]
            assert media == PROBLEM_JSON, (response.status_code, media, response.text[:500])
            problem = response.json()
            assert problem["status"] == response.status_code and problem["detail"], problem
            assert await self.seed_state() == before, "a refused request changed the seed"
        elif response.status_code == 202 and path.endswith("/train"):
            # A job started by a body that happened to be valid: stopped, not left to run.
            await self.client.post(f"/v1/jobs/{response.json()['id']}/cancel")
        return response

    def close(self) -> None:
        self.run(self.client.__aexit__(None, None, None))
        self.app.state.store.close()
        self.runner.close()


@pytest.fixture(scope="module", params=BACKENDS)
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    schemas = None
    if request.param == "postgres":
        schemas = PostgresSchemas(reachable_postgres())
        registry = schemas.create()
    elif request.param == "sqlite":
        registry = f"sqlite:///{Path(tmp_path_factory.mktemp('hostile')) / 'r.db'}"
    else:
        registry = "memory://"
    shared = App(registry)
    yield shared
    shared.close()
    if schemas is not None:
        schemas.drop_all()


# -- the properties -----------------------------------------------------------------------------


@FUZZ
@given(route=st.sampled_from(ROUTE_IDS), data=st.data(), raw=raw_tokens)
def test_any_value_anywhere_in_a_json_body_is_no_server_error(
    app: App, route: str, data: st.DataObject, raw: str
) -> None:
    method, path, body, where = ROUTES[route]
    place = data.draw(st.sampled_from(where))
    if route == "train":
        path = path.replace("/seed/", "/trainee/")
    content = spliced(body, place, raw)
    app.send(method, path, content=content, headers={"content-type": "application/json"})


TEXT_PARAMETERS = [
    "/v1/models?cursor={}",
    "/v1/datasets?cursor={}",
    "/v1/jobs?cursor={}",
    "/v1/jobs?model={}",
    "/v1/models/{}",
    "/v1/models/{}/versions",
    "/v1/models/{}/history",
    "/v1/models/{}/parameters",
    "/v1/datasets/{}",
    "/v1/datasets/{}/data",
    "/v1/jobs/{}",
    "/v1/jobs/{}/events",
    "/v2/models/{}",
    "/v2/models/{}/ready",
    "/v1/models/seed/diagram.svg?inputs={}",
    "/v1/models/seed/walkthrough?inputs={}&targets=0.5",
    "/v1/models/seed/parameters?notation={}",
]
NUMBER_PARAMETERS = [
    "/v1/models?limit={}",
    "/v1/models/seed/parameters?version={}",
    "/v1/models/seed/export?version={}",
    "/v1/models/seed/history?cursor={}",
    "/v1/jobs/x/events?after={}",
    "/v2/models/seed/versions/{}",
    "/v1/models/seed/walkthrough?inputs=0.1,0.2&targets=0.5&learning_rate={}",
]
numbers_as_text = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    huge_integers,
    st.floats().map(str),
    st.sampled_from(["²", "١", "0x10", "1_000", " 1", "+1", "01"]),
)


@FUZZ
@given(
    template=st.sampled_from(TEXT_PARAMETERS + NUMBER_PARAMETERS),
    text=st.one_of(with_nul, hostile_text, numbers_as_text),
)
def test_any_text_in_a_query_or_path_parameter_is_no_server_error(
    app: App, template: str, text: str
) -> None:
    encoded = quote(text.encode("utf-8", "surrogatepass"), safe="")
    app.send("GET", template.format(encoded))
    if template in ("/v1/models/{}", "/v1/datasets/{}") and text not in app.models:
        app.send("DELETE", template.format(encoded))


latin1_text = st.text(
    alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=12
)
header_values = st.one_of(
    latin1_text,
    numbers_as_text.filter(lambda t: t.isascii() or t == "²"),
    huge_integers.map(lambda n: f'"{n}"'),
    st.sampled_from(["*", 'W/"1"', '"1"', 'W/"²"', '""', '"-1"', '" 1"']),
)


@FUZZ
@given(value=header_values, target=st.integers(0, 6))
def test_any_value_of_a_numeric_header_is_no_server_error(
    app: App, value: str, target: int
) -> None:
    header = {"If-Match": value.encode("latin-1")}
    if target == 0:
        app.send("DELETE", "/v1/models/nobody", headers=header)
    elif target == 1:
        body = {"inputs": SEED_INPUTS, "targets": SEED_TARGETS}
        app.send("POST", "/v1/models/seed/train-step", json=body, headers=header)
    elif target == 2:
        app.send("POST", "/v1/models/seed/rollback", json={"version": 1}, headers=header)
    elif target == 3:
        app.send(
            "PUT",
            "/v1/models/seed/parameters",
            content=b"{",
            headers={**header, "content-type": "application/json"},
        )
    elif target == 4:
        events = {"Last-Event-ID": value.encode("latin-1")}
        app.send("GET", "/v1/jobs/nosuchjob/events", headers=events)
    else:
        tensor = {"name": "input", "shape": [1, 2], "datatype": "FP64"}
        length = {"Inference-Header-Content-Length": value.encode("latin-1")}
        content = json.dumps({"inputs": [tensor]}).encode()
        app.send("POST", "/v2/models/seed/infer", content=content, headers=length)


@FUZZ
@given(data=st.data(), target=st.integers(0, 6))
def test_any_array_in_a_binary_body_is_no_server_error(
    app: App, data: st.DataObject, target: int
) -> None:
    if target == 0:
        content, media, path = data.draw(npy_files), "application/x-npy", "/v1/models/seed/forward"
    elif target in (1, 2):
        content = data.draw(npz_files(("inputs", "targets")))
        media = "application/x-npz"
        path = "/v1/models/seed/gradient" if target == 1 else "/v1/models/seed/train-step"
    elif target == 3:
        content, media, path = (
            data.draw(npy_files),
            "application/x-npy",
            "/v1/datasets?name=h&input_columns=1",
        )
    elif target == 4:
        content = data.draw(npz_files(("inputs", "targets")))
        media, path = "application/x-npz", "/v1/datasets?name=h"
    elif target == 5:
        content = data.draw(npz_files(("model", "W0", "b0", "W1", "b1", "W2", "b2")))
        media, path = "application/x-npz", "/v1/models?name=imported"
    else:
        text = data.draw(st.lists(st.lists(hostile_text | numbers_as_text, max_size=4), max_size=4))
        content = "\n".join(",".join(row) for row in text).encode("utf-8", "surrogatepass")
        media, path = "text/csv", "/v1/datasets?name=h&input_columns=1"
    response = app.send("POST", path, content=content, headers={"content-type": media})
    if response.status_code == 201 and path.startswith("/v1/datasets"):
        app.send("DELETE", "/v1/datasets/h")
    if response.status_code == 201 and path.startswith("/v1/models"):
        app.send("DELETE", "/v1/models/imported")
