"""ONNX, .npz and JSON export and import: exported graphs run by onnxruntime give the service's
forward, imports of exports give the same model bit for bit, and graphs outside the family are
refused naming what is wrong."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import numpy as np
import onnx
import onnxruntime  # type: ignore[import-untyped]
import pytest
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from tests.api.support import assert_problem
from tests.v2.support import random_model

pytestmark = pytest.mark.anyio

ONNX = "application/onnx"
NPZ = "application/x-npz"


def run_onnx(model: bytes, inputs: NDArray[Any]) -> NDArray[Any]:
    """The graph's output for ``inputs``, computed by onnxruntime."""
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    (output,) = session.run(["output"], {"input": inputs})
    result: NDArray[Any] = output
    return result


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/v1/models", json=body)
    assert response.status_code == 201, response.text


async def forward(client: httpx.AsyncClient, name: str, inputs: NDArray[Any]) -> NDArray[Any]:
    response = await client.post(f"/v1/models/{name}/forward", json={"inputs": inputs.tolist()})
    assert response.status_code == 200, response.text
    return np.array(response.json()["outputs"])


async def export(client: httpx.AsyncClient, name: str, fmt: str, **params: Any) -> bytes:
    response = await client.get(f"/v1/models/{name}/export", params={"format": fmt, **params})
    assert response.status_code == 200, response.text
    return response.content


async def import_file(
    client: httpx.AsyncClient, content: bytes, media: str, **params: str
) -> httpx.Response:
    return await client.post(
        "/v1/models", params=params, content=content, headers={"Content-Type": media}
    )


def npz_arrays(content: bytes) -> dict[str, NDArray[Any]]:
    with np.load(io.BytesIO(content), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def inputs(rows: int, columns: int, seed: int = 7) -> NDArray[np.float64]:
    return np.random.default_rng(seed).normal(scale=2.0, size=(rows, columns))


# -- export, run by onnxruntime ---------------------------------------------------------------

ACTIVATIONS = [
    (["identity", "identity"], None),
    (["relu", "relu"], None),
    (["leaky_relu", "leaky_relu"], 0.125),
    (["sigmoid", "sigmoid"], None),
    (["tanh", "tanh"], None),
    (["relu", "softmax"], None),
]


@pytest.mark.parametrize(("activations", "slope"), ACTIVATIONS)
async def test_exported_model_runs_in_onnxruntime_like_forward(
    client: httpx.AsyncClient, activations: list[str], slope: float | None
) -> None:
    body = random_model("m", [5, 7, 4], activations, seed=3)
    if slope is not None:
        for layer in body["network"]["layers"]:
            layer["negative_slope"] = slope
    await create(client, body)
    x = inputs(64, 5)
    outputs = run_onnx(await export(client, "m", "onnx"), x)
    assert outputs.dtype == np.float64
    expected = await forward(client, "m", x)
    assert np.max(np.abs(outputs - expected)) <= 1e-9


async def test_a_leaky_slope_is_rounded_to_32_bits_by_onnx_and_by_nothing_else(
    client: httpx.AsyncClient,
) -> None:
    # ONNX keeps LeakyRelu's alpha as a 32-bit float: 0.01 runs as 0.009999999776...
    body = random_model("m", [5, 7, 4], ["leaky_relu", "identity"], seed=4)
    await create(client, body)
    x = inputs(64, 5, seed=1)
    outputs = run_onnx(await export(client, "m", "onnx"), x)
    network = body["network"]
    network["layers"][0]["negative_slope"] = float(np.float32(0.01))
    rounded = await client.post(
        "/v1/forward",
        json={"network": network, "parameters": body["parameters"], "inputs": x.tolist()},
    )
    assert np.max(np.abs(outputs - np.array(rounded.json()["outputs"]))) <= 1e-9


async def test_a_float32_model_exports_a_float_graph(client: httpx.AsyncClient) -> None:
    await create(client, random_model("m", [3, 4, 2], ["tanh", "sigmoid"], dtype="float32"))
    x = inputs(10, 3).astype(np.float32)
    outputs = run_onnx(await export(client, "m", "onnx"), x)
    assert outputs.dtype == np.float32
    np.testing.assert_allclose(outputs, await forward(client, "m", x), rtol=1e-5, atol=1e-6)


async def test_the_exported_graph_is_gemm_and_activations_with_input_and_output(
    client: httpx.AsyncClient,
) -> None:
    body = random_model("m", [5, 7, 3], ["leaky_relu", "softmax"])
    await create(client, body)
    response = await client.get("/v1/models/m/export", params={"format": "onnx"})
    assert response.headers["content-type"] == ONNX
    assert response.headers["content-disposition"] == 'attachment; filename="m-v1.onnx"'
    assert response.headers["etag"] == '"1"'
    model = onnx.load_model_from_string(response.content)
    onnx.checker.check_model(model)
    assert [node.op_type for node in model.graph.node] == ["Gemm", "LeakyRelu", "Gemm", "Softmax"]
    softmax = model.graph.node[-1]
    assert helper.get_attribute_value(softmax.attribute[0]) == 1
    (given,) = model.graph.input
    assert given.name == "input"
    assert [d.dim_value or d.dim_param for d in given.type.tensor_type.shape.dim] == ["N", 5]
    assert [o.name for o in model.graph.output] == ["output"]
    props = {p.key: p.value for p in model.metadata_props}
    assert props["backprop.loss"] == "cross_entropy"
    W0 = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "W0"))
    assert W0.tolist() == body["parameters"]["layers"][0]["weights"]


# -- round trips ------------------------------------------------------------------------------


async def same_model(client: httpx.AsyncClient, a: str, b: str) -> None:
    """Same network and optimizer, and parameters equal bit for bit in the same dtype."""
    models = [(await client.get(f"/v1/models/{name}")).json() for name in (a, b)]
    assert models[0]["network"] == models[1]["network"]
    assert models[0]["optimizer"] == models[1]["optimizer"]
    arrays = [npz_arrays(await export(client, name, "npz")) for name in (a, b)]
    assert arrays[0].keys() == arrays[1].keys()
    for key in arrays[0]:
        if key != "model":
            assert arrays[0][key].dtype == arrays[1][key].dtype, key
            assert arrays[0][key].tobytes() == arrays[1][key].tobytes(), key


@pytest.mark.parametrize("dtype", ["float64", "float32"])
async def test_onnx_import_of_an_export_is_the_same_model(
    client: httpx.AsyncClient, dtype: str
) -> None:
    body = random_model("m", [4, 6, 5, 3], ["leaky_relu", "tanh", "sigmoid"], dtype=dtype)
    body["network"]["loss"] = "binary_cross_entropy"
    await create(client, body)
    response = await import_file(client, await export(client, "m", "onnx"), ONNX, name="copy")
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/v1/models/copy"
    assert response.json()["network"]["layers"][0]["negative_slope"] == 0.01
    await same_model(client, "m", "copy")


async def test_npz_import_of_an_export_is_the_same_model(client: httpx.AsyncClient) -> None:
    body = random_model("m", [4, 6, 3], ["relu", "softmax"], dtype="float32")
    body.update(optimizer={"kind": "adam", "learning_rate": 0.003}, tags=["a"], description="d")
    await create(client, body)
    content = await export(client, "m", "npz")
    assert json.loads(str(npz_arrays(content)["model"]))["name"] == "m"
    response = await import_file(client, content, NPZ, name="copy")
    assert response.status_code == 201, response.text
    assert response.json()["tags"] == ["a"] and response.json()["description"] == "d"
    await same_model(client, "m", "copy")


async def test_the_json_export_recreates_the_model(client: httpx.AsyncClient) -> None:
    await create(client, random_model("m", [3, 5, 2], ["sigmoid", "identity"]))
    body = json.loads(await export(client, "m", "json"))
    assert body["name"] == "m"
    response = await client.post("/v1/models", json={**body, "name": "copy"})
    assert response.status_code == 201, response.text
    await same_model(client, "m", "copy")


async def test_export_of_a_kept_version_has_its_parameters(client: httpx.AsyncClient) -> None:
    await create(client, random_model("m", [2, 2], ["identity"]))
    step = {"inputs": [[1.0, 2.0]], "targets": [[0.0, 1.0]], "learning_rate": 0.1}
    assert (await client.post("/v1/models/m/train-step", json=step)).status_code == 200
    old = npz_arrays(await export(client, "m", "npz", version=1))
    new = npz_arrays(await export(client, "m", "npz"))
    v1 = (await client.get("/v1/models/m/parameters", params={"version": 1})).json()
    assert old["W0"].tolist() == v1["parameters"]["layers"][0]["weights"]
    assert not np.array_equal(old["W0"], new["W0"])


async def test_export_of_an_unknown_model_or_format_is_refused(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/models/nope/export", params={"format": "onnx"}), 404)
    assert_problem(
        await client.get("/v1/models/seed/export", params={"format": "h5"}), 422, parameter="format"
    )


# -- import of graphs made elsewhere ----------------------------------------------------------


def graph_model(
    nodes: list[onnx.NodeProto],
    initializers: list[onnx.TensorProto],
    inputs_: int,
    outputs: int,
    *,
    elem: int = TensorProto.DOUBLE,
    name: str = "main_graph",
) -> bytes:
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", elem, ["batch", inputs_])],
        [helper.make_tensor_value_info("y", elem, ["batch", outputs])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    content: bytes = model.SerializeToString()
    return content


def torch_style_graph() -> tuple[bytes, dict[str, NDArray[np.float64]]]:
    """A 3-4-4-2 graph as PyTorch writes one: Gemm with transB (weights units x inputs) and
    alpha, MatMul + Add with the bias first, a Constant node and an Identity."""
    rng = np.random.default_rng(5)
    w1, b1 = rng.normal(size=(4, 3)), rng.normal(size=4)
    w2, b2 = rng.normal(size=(4, 4)), rng.normal(size=4)
    w3, b3 = rng.normal(size=(4, 2)), rng.normal(size=(1, 2))
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"], transB=1, alpha=0.5),
        helper.make_node("Tanh", ["h1"], ["a1"]),
        helper.make_node("Identity", ["a1"], ["a1i"]),
        helper.make_node("Constant", [], ["w2"], value=numpy_helper.from_array(w2, "w2")),
        helper.make_node("MatMul", ["a1i", "w2"], ["m2"]),
        helper.make_node("Add", ["b2", "m2"], ["h2"]),
        helper.make_node("LeakyRelu", ["h2"], ["a2"], alpha=0.25),
        helper.make_node("MatMul", ["a2", "w3"], ["m3"]),
        helper.make_node("Add", ["m3", "b3"], ["h3"]),
        helper.make_node("Softmax", ["h3"], ["y"], axis=-1),
    ]
    initializers = [
        numpy_helper.from_array(value, key)
        for key, value in {"w1": w1, "b1": b1, "b2": b2, "w3": w3, "b3": b3}.items()
    ]
    return graph_model(nodes, initializers, 3, 2), {"w1": w1, "b1": b1, "w2": w2}


async def test_a_torch_style_graph_imports_and_computes_like_onnxruntime(
    client: httpx.AsyncClient,
) -> None:
    content, weights = torch_style_graph()
    response = await import_file(client, content, ONNX)
    assert response.status_code == 201, response.text
    model = response.json()
    assert model["name"] == "main_graph"
    assert model["network"]["loss"] == "cross_entropy"  # the default for a softmax output
    assert [layer["activation"] for layer in model["network"]["layers"]] == [
        "tanh",
        "leaky_relu",
        "softmax",
    ]
    parameters = (await client.get("/v1/models/main_graph/parameters")).json()["parameters"]
    assert parameters["layers"][0]["weights"] == (0.5 * weights["w1"].T).tolist()
    x = inputs(32, 3)
    session = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"])
    (expected,) = session.run(["y"], {"x": x})
    assert np.max(np.abs(await forward(client, "main_graph", x) - expected)) <= 1e-12


async def test_the_loss_query_names_the_loss_of_an_import(client: httpx.AsyncClient) -> None:
    content, _ = torch_style_graph()
    response = await import_file(client, content, ONNX, name="mse", loss="mean_squared_error")
    assert response.json()["network"]["loss"] == "mean_squared_error"
    bad = await import_file(client, content, ONNX, name="x", loss="hinge")
    assert_problem(bad, 422, parameter="loss")


async def test_an_import_without_softmax_defaults_to_half_squared_error(
    client: httpx.AsyncClient,
) -> None:
    W = numpy_helper.from_array(np.ones((2, 1)), "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"])]
    response = await import_file(client, graph_model(nodes, [W], 2, 1), ONNX, name="lin")
    assert response.status_code == 201, response.text
    network = response.json()["network"]
    assert network["loss"] == "half_squared_error"
    assert network["layers"] == [{"units": 1, "activation": "identity"}]
    params = (await client.get("/v1/models/lin/parameters")).json()["parameters"]
    assert params["layers"][0]["biases"] == [0.0]


@pytest.mark.parametrize(
    ("node", "named"),
    [
        (helper.make_node("Conv", ["x", "W"], ["y"], name="conv1"), "'Conv'"),
        (helper.make_node("Gelu", ["x"], ["y"], name="g"), "'Gelu'"),
    ],
)
async def test_an_unsupported_operator_is_a_422_naming_it(
    client: httpx.AsyncClient, node: onnx.NodeProto, named: str
) -> None:
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["n", 2])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["n", 2])],
        [numpy_helper.from_array(np.ones((2, 2)), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    response = await import_file(client, model.SerializeToString(), ONNX, name="x")
    body = assert_problem(response, 422, type_suffix="unsupported-content")
    assert named in body["error"]


async def test_a_graph_that_branches_is_a_422(client: httpx.AsyncClient) -> None:
    W = numpy_helper.from_array(np.ones((2, 2)), "W")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Relu", ["h"], ["a"]),
        helper.make_node("Add", ["a", "x"], ["y"]),  # a residual connection
    ]
    response = await import_file(client, graph_model(nodes, [W], 2, 2), ONNX, name="x")
    body = assert_problem(response, 422)
    assert "Add" in body["error"]


async def test_weights_kept_outside_the_model_are_refused(client: httpx.AsyncClient) -> None:
    W = numpy_helper.from_array(np.ones((2, 2)), "W")
    W.ClearField("raw_data")
    W.data_location = TensorProto.EXTERNAL
    entry = W.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["n", 2])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["n", 2])],
        [W],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    response = await import_file(client, model.SerializeToString(), ONNX, name="x")
    body = assert_problem(response, 422)
    assert "outside the model" in body["error"]


async def test_a_graph_of_int_tensors_is_a_422(client: httpx.AsyncClient) -> None:
    W = numpy_helper.from_array(np.ones((2, 2), dtype=np.int64), "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"])]
    content = graph_model(nodes, [W], 2, 2, elem=TensorProto.INT64)
    assert_problem(await import_file(client, content, ONNX, name="x"), 422)


async def test_bytes_that_are_no_onnx_model_are_a_400(client: httpx.AsyncClient) -> None:
    response = await import_file(client, b"\x00\xffnot a model at all", ONNX, name="x")
    assert_problem(response, 400, type_suffix="malformed-body")


async def test_an_import_under_a_taken_or_bad_name_is_refused(client: httpx.AsyncClient) -> None:
    content, _ = torch_style_graph()
    assert_problem(await import_file(client, content, ONNX, name="seed"), 409)
    assert_problem(await import_file(client, content, ONNX, name="../x"), 422, parameter="name")


async def test_an_import_over_the_limits_is_a_422(client: httpx.AsyncClient) -> None:
    W = numpy_helper.from_array(np.ones((2, 5000)), "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"])]
    response = await import_file(client, graph_model(nodes, [W], 2, 5000), ONNX, name="big")
    assert_problem(response, 422, pointer_prefix="/network")


async def test_an_npz_archive_without_the_model_json_is_a_422(client: httpx.AsyncClient) -> None:
    stream = io.BytesIO()
    np.savez(stream, allow_pickle=False, W0=np.ones((2, 1)), b0=np.ones(1))
    response = await import_file(client, stream.getvalue(), NPZ, name="x")
    assert_problem(response, 422, pointer="/model")
