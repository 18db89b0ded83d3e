"""Heavy input and output never hold up the rest: while a real server exports a model of
millions of parameters as JSON, imports a large ``.npz``, takes a 30 MB JSON body (valid or not)
or answers with one, ``/healthz`` on the same server stays prompt.

Every test sends its work while a second client polls ``/healthz`` and asserts the answer, that
every poll was answered 200 and that the slowest poll took less than ``BOUND`` (the figures were
1 to 5.6 s when this work ran on the event loop)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests import servers
from tests.health_probe import HealthProbe, polling_health

BOUND = 1.5  # seconds: the slowest /healthz poll allowed while the heavy work runs
MAX_BODY = 32 << 20  # the default BACKPROP_MAX_BODY_BYTES

# 2000 inputs, 2000 ReLU units, one output: 4,004,001 parameters (the limit is 5,000,000), an
# .npz of 32 MB (just within the body limit) and 80 MB of JSON.
BIG_NETWORK = {
    "inputs": 2000,
    "layers": [{"units": 2000, "activation": "relu"}, {"units": 1, "activation": "identity"}],
    "loss": "half_squared_error",
}
BIG_COUNT = 2000 * 2000 + 2000 + 2000 + 1
# 1000 inputs, 1200 tanh units, one output: 1,202,401 parameters, 25 MB of JSON.
JSON_NETWORK = {
    "inputs": 1000,
    "layers": [{"units": 1200, "activation": "tanh"}, {"units": 1, "activation": "identity"}],
    "loss": "half_squared_error",
}
ROWS, INPUTS, TARGETS = 60_000, 20, 5  # a dataset of 30 MB as JSON


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with servers.running("--registry", "memory://") as client:
        client.timeout = httpx.Timeout(120)
        yield client


@pytest.fixture(scope="module")
def big_model(client: httpx.Client) -> str:
    """A stored model of 4,004,001 parameters drawn by a seeded initialisation."""
    body = {"name": "big", "network": BIG_NETWORK, "init": {"scheme": "he_uniform", "seed": 7}}
    response = client.post("/v1/models", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["parameter_count"] == BIG_COUNT
    return "big"


@pytest.fixture(scope="module")
def big_npz(client: httpx.Client, big_model: str) -> bytes:
    response = client.get(f"/v1/models/{big_model}/export", params={"format": "npz"})
    assert response.status_code == 200
    assert len(response.content) <= MAX_BODY
    return response.content


def assert_prompt(probe: HealthProbe) -> None:
    assert probe.latencies, "the probe made no poll"
    assert set(probe.statuses) == {200}, probe.statuses
    assert probe.worst < BOUND, probe.describe()


def arrays(npz: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(npz), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def layered(params: dict[str, np.ndarray]) -> dict[str, Any]:
    layers = len([name for name in params if name.startswith("W")])
    return {
        "layers": [
            {"weights": params[f"W{i}"].tolist(), "biases": params[f"b{i}"].tolist()}
            for i in range(layers)
        ]
    }


def json_parameters(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "W0": rng.standard_normal((1000, 1200)),
        "b0": rng.standard_normal(1200),
        "W1": rng.standard_normal((1200, 1)),
        "b1": rng.standard_normal(1),
    }


def dataset_body(name: str) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    inputs, targets = rng.standard_normal((ROWS, INPUTS)), rng.standard_normal((ROWS, TARGETS))
    return {"name": name, "inputs": inputs.tolist(), "targets": targets.tolist()}, inputs, targets


def encode(body: dict[str, Any]) -> bytes:
    raw = json.dumps(body).encode()
    assert 20 << 20 < len(raw) <= MAX_BODY, len(raw)
    return raw


def test_a_json_export_of_millions_of_parameters(
    client: httpx.Client, big_model: str, big_npz: bytes
) -> None:
    with polling_health(str(client.base_url)) as probe:
        response = client.get(f"/v1/models/{big_model}/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == 'attachment; filename="big-v1.json"'
    assert response.headers["etag"] == '"1"'
    assert int(response.headers["content-length"]) == len(response.content)
    body = response.json()
    assert list(body) == ["name", "network", "parameters", "optimizer", "tags"]
    assert body["name"] == "big"
    expected = arrays(big_npz)
    for i, layer in enumerate(body["parameters"]["layers"]):
        assert np.array_equal(np.array(layer["weights"]), expected[f"W{i}"])
        assert np.array_equal(np.array(layer["biases"]), expected[f"b{i}"])
    assert_prompt(probe)


@pytest.mark.parametrize(
    ("format", "media"), [("npz", "application/x-npz"), ("onnx", "application/onnx")]
)
def test_a_file_export_and_import_of_millions_of_parameters(
    client: httpx.Client, big_model: str, big_npz: bytes, format: str, media: str
) -> None:
    copy = f"big-{format}"
    with polling_health(str(client.base_url)) as probe:
        exported = client.get(f"/v1/models/{big_model}/export", params={"format": format})
        imported = client.post(
            "/v1/models",
            params={"name": copy},
            content=exported.content,
            headers={"Content-Type": media},
        )
    assert exported.status_code == 200
    assert exported.headers["content-type"] == media
    assert int(exported.headers["content-length"]) == len(exported.content) <= MAX_BODY
    if format == "npz":
        assert exported.content == big_npz
    assert imported.status_code == 201, imported.text
    assert imported.headers["location"] == f"/v1/models/{copy}"
    assert imported.json()["parameter_count"] == BIG_COUNT
    assert_prompt(probe)
    again = arrays(client.get(f"/v1/models/{copy}/export", params={"format": "npz"}).content)
    original = arrays(big_npz)
    assert set(again) == set(original)
    for name in original:
        if name != "model":
            assert np.array_equal(again[name], original[name]), name


def test_a_json_model_of_a_million_parameters_created_and_replaced(client: httpx.Client) -> None:
    first, second = json_parameters(1), json_parameters(2)
    create = encode({"name": "json-big", "network": JSON_NETWORK, "parameters": layered(first)})
    put = encode({"parameters": layered(second)})
    with polling_health(str(client.base_url)) as probe:
        created = client.post(
            "/v1/models", content=create, headers={"Content-Type": "application/json"}
        )
        replaced = client.put(
            "/v1/models/json-big/parameters",
            content=put,
            headers={"Content-Type": "application/json", "If-Match": '"1"'},
        )
    assert created.status_code == 201, created.text
    assert created.json()["parameter_count"] == 1_202_401
    assert replaced.status_code == 200, replaced.text
    assert replaced.headers["etag"] == '"2"'
    answer = replaced.json()
    assert (answer["model"], answer["version"]) == ("json-big", 2)
    assert answer["parameters"] == layered(second)
    assert_prompt(probe)


def test_a_30_mb_json_dataset(client: httpx.Client) -> None:
    body, inputs, targets = dataset_body("rows")
    raw = encode(body)
    with polling_health(str(client.base_url)) as probe:
        created = client.post(
            "/v1/datasets", content=raw, headers={"Content-Type": "application/json"}
        )
        data = client.get("/v1/datasets/rows/data")
    assert created.status_code == 201, created.text
    info = created.json()
    assert (info["rows"], info["input_columns"], info["target_columns"]) == (ROWS, 20, 5)
    assert (info["source"], info["dtype"]) == ("json", "float64")
    assert data.status_code == 200
    assert data.json() == body
    assert_prompt(probe)
    npz = client.get("/v1/datasets/rows/data", params={"format": "npz"})
    stored = arrays(npz.content)
    assert np.array_equal(stored["inputs"], inputs)
    assert np.array_equal(stored["targets"], targets)


def test_a_30_mb_body_that_does_not_validate(client: httpx.Client) -> None:
    params = layered(json_parameters(3))
    params["layers"][0]["weights"][-1][-1] = "0.5"  # a string where a number belongs
    raw = encode({"name": "invalid", "network": JSON_NETWORK, "parameters": params})
    with polling_health(str(client.base_url)) as probe:
        response = client.post(
            "/v1/models", content=raw, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/invalid-input"
    assert problem["errors"] == [
        {
            "pointer": "/parameters/layers/0/weights/999/1199",
            "message": "Input should be a valid number",
        }
    ]
    assert_prompt(probe)
    assert client.get("/v1/models/invalid").status_code == 404


def test_a_30_mb_body_that_is_not_json(client: httpx.Client) -> None:
    body, _, _ = dataset_body("broken")
    raw = encode(body)
    cut = len(raw) - 1000
    with polling_health(str(client.base_url)) as probe:
        response = client.post(
            "/v1/datasets", content=raw[:cut], headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400, response.text
    problem = response.json()
    try:
        json.loads(raw[:cut])
    except json.JSONDecodeError as exc:
        reason, position = exc.msg, exc.pos
    assert problem["detail"] == (
        f"the request body is not valid JSON ({reason} at character {position})"
    )
    assert_prompt(probe)
    assert client.get("/v1/datasets/broken").status_code == 404
