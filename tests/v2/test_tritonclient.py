"""An unmodified ``tritonclient.http`` client against a real server process: health, metadata
and inference with binary and JSON tensors, whose outputs equal ``/v1`` forward."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton  # type: ignore[import-untyped]
from numpy.typing import NDArray
from tritonclient.utils import InferenceServerException  # type: ignore[import-untyped]

from tests.api.support import SEED, seed_model
from tests.servers import running
from tests.v2.support import random_model

SEED_OUTPUT = SEED["forward"]["out"][-1][0]  # out_n9 of the worked example


@pytest.fixture(scope="module")
def server() -> Iterator[httpx.Client]:
    """A real server on a memory registry with the seed model, an 8-16-3 softmax model (v1 and
    v2) and a float32 model."""
    with running("--registry", "memory://") as http:
        for body in (
            seed_model(),
            random_model("softmax", [8, 16, 3], ["tanh", "softmax"], seed=1),
            random_model("single", [4, 5, 2], ["leaky_relu", "sigmoid"], dtype="float32", seed=2),
        ):
            assert http.post("/v1/models", json=body).status_code == 201
        step = {"inputs": [[0.5] * 8], "targets": [[0.2, 0.3, 0.5]], "learning_rate": 0.5}
        assert http.post("/v1/models/softmax/train-step", json=step).json()["version"] == 2
        yield http


@pytest.fixture
def client(server: httpx.Client) -> Iterator[Any]:
    c = triton.InferenceServerClient(str(server.base_url).removeprefix("http://"))
    yield c
    c.close()


def v1_forward(server: httpx.Client, name: str, inputs: NDArray[Any]) -> NDArray[np.float64]:
    response = server.post(f"/v1/models/{name}/forward", json={"inputs": inputs.tolist()})
    assert response.status_code == 200, response.text
    return np.array(response.json()["outputs"])


def batch(rows: int, columns: int, seed: int = 0) -> NDArray[np.float64]:
    return np.random.default_rng(seed).normal(size=(rows, columns))


def infer_input(data: NDArray[Any], datatype: str = "FP64", *, binary: bool = True) -> Any:
    tensor = triton.InferInput("input", list(data.shape), datatype)
    tensor.set_data_from_numpy(data, binary_data=binary)
    return tensor


def test_server_is_live_and_ready(client: Any) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()


def test_server_metadata_names_the_binary_tensor_data_extension(client: Any) -> None:
    metadata = client.get_server_metadata()
    assert metadata["name"] == "backprop-service"
    assert isinstance(metadata["version"], str)
    assert "binary_tensor_data" in metadata["extensions"]


def test_model_metadata_has_one_input_and_one_output_of_the_networks_sizes(client: Any) -> None:
    metadata = client.get_model_metadata("seed")
    assert metadata["name"] == "seed"
    assert metadata["versions"] == ["1"]
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 2]}]
    assert metadata["outputs"] == [{"name": "output", "datatype": "FP64", "shape": [-1, 1]}]
    assert isinstance(metadata["platform"], str) and metadata["platform"]


def test_model_metadata_lists_the_kept_versions_newest_first(client: Any) -> None:
    assert client.get_model_metadata("softmax")["versions"] == ["2", "1"]
    assert client.get_model_metadata("softmax", "1")["name"] == "softmax"


def test_model_metadata_of_a_float32_model_says_fp32(client: Any) -> None:
    metadata = client.get_model_metadata("single")
    assert metadata["inputs"][0]["datatype"] == "FP32"
    assert metadata["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 2]}]


def test_model_readiness_follows_the_registry(client: Any) -> None:
    assert client.is_model_ready("seed")
    assert client.is_model_ready("softmax", "1")
    assert not client.is_model_ready("no-such-model")
    assert not client.is_model_ready("softmax", "3")


def test_binary_inference_reproduces_the_worked_example(client: Any) -> None:
    result = client.infer("seed", [infer_input(np.array([SEED["input"]]))])
    assert result.as_numpy("output").tolist() == [[SEED_OUTPUT]]
    output = result.get_output("output")
    assert output["parameters"]["binary_data_size"] == 8
    assert result.get_response()["model_version"] == "1"


def test_binary_inference_equals_v1_forward(client: Any, server: httpx.Client) -> None:
    x = batch(300, 8)
    result = client.infer("softmax", [infer_input(x)])
    outputs = result.as_numpy("output")
    assert outputs.dtype == np.float64 and outputs.shape == (300, 3)
    np.testing.assert_array_equal(outputs, v1_forward(server, "softmax", x))


def test_json_inference_equals_v1_forward(client: Any, server: httpx.Client) -> None:
    x = batch(20, 8, seed=3)
    requested = [triton.InferRequestedOutput("output", binary_data=False)]
    result = client.infer("softmax", [infer_input(x, binary=False)], outputs=requested)
    output = result.get_output("output")
    assert "data" in output and "parameters" not in output
    np.testing.assert_array_equal(result.as_numpy("output"), v1_forward(server, "softmax", x))


def test_json_inputs_with_binary_outputs_equal_v1_forward(
    client: Any, server: httpx.Client
) -> None:
    x = batch(5, 8, seed=4)
    result = client.infer("softmax", [infer_input(x, binary=False)])
    assert "binary_data_size" in result.get_output("output")["parameters"]
    np.testing.assert_array_equal(result.as_numpy("output"), v1_forward(server, "softmax", x))


def test_inference_on_a_kept_version_uses_its_parameters(client: Any, server: httpx.Client) -> None:
    x = batch(4, 8, seed=5)
    old = server.get("/v1/models/softmax/parameters", params={"version": 1}).json()["parameters"]
    network = server.get("/v1/models/softmax").json()["network"]
    expected = server.post(
        "/v1/forward", json={"network": network, "parameters": old, "inputs": x.tolist()}
    ).json()["outputs"]
    result = client.infer("softmax", [infer_input(x)], model_version="1")
    assert result.get_response()["model_version"] == "1"
    np.testing.assert_array_equal(result.as_numpy("output"), np.array(expected))
    current = client.infer("softmax", [infer_input(x)])
    assert current.get_response()["model_version"] == "2"
    assert not np.array_equal(current.as_numpy("output"), result.as_numpy("output"))


def test_float32_model_answers_fp32_equal_to_v1_forward(client: Any, server: httpx.Client) -> None:
    x = batch(6, 4, seed=6).astype(np.float32)
    result = client.infer("single", [infer_input(x, "FP32")])
    outputs = result.as_numpy("output")
    assert outputs.dtype == np.float32
    np.testing.assert_array_equal(outputs, v1_forward(server, "single", x).astype(np.float32))


def test_integer_inputs_are_cast_to_the_models_dtype(client: Any, server: httpx.Client) -> None:
    x = np.array([[1, -2, 3, 0, 5, 6, -7, 8], [0, 0, 1, 1, 2, 2, 3, 3]], dtype=np.int32)
    result = client.infer("softmax", [infer_input(x, "INT32")])
    expected = v1_forward(server, "softmax", x.astype(np.float64))
    np.testing.assert_array_equal(result.as_numpy("output"), expected)


def test_an_unknown_model_raises_the_servers_404_error(client: Any) -> None:
    with pytest.raises(InferenceServerException) as raised:
        client.infer("no-such-model", [infer_input(batch(1, 2))])
    assert raised.value.status() == "404"
    assert "no-such-model" in raised.value.message()


def test_a_batch_of_the_wrong_width_raises_the_servers_error(client: Any) -> None:
    with pytest.raises(InferenceServerException) as raised:
        client.infer("seed", [infer_input(batch(2, 3))])
    assert raised.value.status() == "422"
    assert "[-1, 2]" in raised.value.message()
