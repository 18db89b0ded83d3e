"""Networks as ONNX graphs: export to a chain of ``Gemm`` and activation operators, and import
of graphs of the same family.

A layer ``out = f(X @ W + b)`` is exported as ``Gemm(X, W, b)`` (W of shape inputs x units, so
``transB = 0``) followed by ``Relu``, ``LeakyRelu(alpha)``, ``Sigmoid``, ``Tanh``,
``Softmax(axis=1)`` or ``Identity``. The graph's input is ``input`` [N, inputs], its output
``output`` [N, outputs], in FLOAT or DOUBLE as the network's dtype; the loss, which ONNX has no
place for, is kept in the metadata property ``backprop.loss``, and the exact slope of a leaky
ReLU (ONNX rounds ``alpha`` to 32 bits) in ``backprop.negative_slope.{layer}``.

Import takes any chain of layers, each ``Gemm`` (``transB`` 0 or 1, ``alpha`` and ``beta``
folded into W and b) or ``MatMul`` optionally followed by ``Add`` of a bias, then at most one
of the activations above; ``Identity`` nodes anywhere, and ``Constant`` nodes for weights, are
taken too. Anything else is :class:`UnsupportedContent` naming the operator and node.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from service import __version__
from service.core import Layer, Network, Params
from service.core.words import counted
from service.interop.errors import MalformedContent, UnsupportedContent

OPSET = 17
IR_VERSION = 8  # the IR of opset 17, read by every runtime that knows the opset
LOSS_KEY = "backprop.loss"
# LeakyRelu's alpha is a 32-bit float in ONNX; the exact slope travels beside it.
SLOPE_KEY = "backprop.negative_slope"
INPUT, OUTPUT = "input", "output"

_ELEM_TYPES = {"float64": TensorProto.DOUBLE, "float32": TensorProto.FLOAT}
_DTYPES = {TensorProto.DOUBLE: "float64", TensorProto.FLOAT: "float32"}
_ACTIVATION_OPS = {
    "Relu": "relu",
    "LeakyRelu": "leaky_relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Softmax": "softmax",
}
SUPPORTED_OPS = ("Gemm", "MatMul", "Add", *_ACTIVATION_OPS, "Identity", "Constant")

Array = NDArray[Any]


def to_onnx(network: Network, params: Params, name: str, version: int) -> bytes:
    """The serialized ONNX model of ``network`` with ``params``."""
    elem = _ELEM_TYPES[network.dtype]
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    current = INPUT
    last = len(network.layers) - 1
    for i, (layer, p) in enumerate(zip(network.layers, params, strict=True)):
        initializers.append(numpy_helper.from_array(p.W, f"W{i}"))
        initializers.append(numpy_helper.from_array(p.b, f"b{i}"))
        net, out = f"net{i}", OUTPUT if i == last else f"out{i}"
        nodes.append(helper.make_node("Gemm", [current, f"W{i}", f"b{i}"], [net], name=f"gemm{i}"))
        nodes.append(_activation_node(layer, net, out, f"{layer.activation}{i}"))
        current = out
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(INPUT, elem, ["N", network.inputs])],
        [helper.make_tensor_value_info(OUTPUT, elem, ["N", network.outputs])],
        initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="backprop-service",
        producer_version=__version__,
        model_version=version,
        doc_string=f"Model {name!r}, version {version}, exported by backprop-service.",
    )
    props: dict[str, str] = {LOSS_KEY: network.loss}
    for i, layer in enumerate(network.layers):
        if layer.activation == "leaky_relu":
            props[f"{SLOPE_KEY}.{i}"] = repr(layer.negative_slope)
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def _activation_node(layer: Layer, net: str, out: str, node_name: str) -> onnx.NodeProto:
    match layer.activation:
        case "identity":
            return helper.make_node("Identity", [net], [out], name=node_name)
        case "leaky_relu":
            return helper.make_node(
                "LeakyRelu", [net], [out], name=node_name, alpha=layer.negative_slope
            )
        case "softmax":
            return helper.make_node("Softmax", [net], [out], name=node_name, axis=1)
    op = {v: k for k, v in _ACTIVATION_OPS.items()}[layer.activation]
    return helper.make_node(op, [net], [out], name=node_name)


@dataclass
class _Layer:
    W: Array
    b: Array | None
    linear: str  # the operator that made it: Gemm or MatMul
    activation: str = "identity"
    negative_slope: float = 0.01
    done: bool = field(default=False)  # an activation has been applied


@dataclass(frozen=True)
class OnnxNetwork:
    """What an ONNX graph says of a network: everything but the loss, which it may suggest."""

    name: str
    inputs: int
    dtype: str
    layers: list[dict[str, Any]]
    params: list[tuple[Array, Array]]
    loss: str | None

    def network(self, loss: str) -> dict[str, Any]:
        """The network description (the API's form) with ``loss``."""
        return {"inputs": self.inputs, "layers": self.layers, "loss": loss, "dtype": self.dtype}


def from_onnx(data: bytes) -> OnnxNetwork:
    """The network of a serialized ONNX model of the supported family."""
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError, whose package has no type stubs
        raise MalformedContent(f"the body is not an ONNX model ({exc})") from exc
    graph = model.graph
    if not graph.node and not graph.input:
        raise MalformedContent("the body is not an ONNX model (it has no graph)")
    for opset in model.opset_import:
        if opset.domain not in ("", "ai.onnx"):
            raise UnsupportedContent(f"operators of the domain {opset.domain!r} are not supported")
    constants = {t.name: _array(t) for t in graph.initializer}
    inputs = [value for value in graph.input if value.name not in constants]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UnsupportedContent(
            f"the graph must have one input and one output; it has {len(inputs)} and "
            f"{len(graph.output)}"
        )
    elem = inputs[0].type.tensor_type.elem_type
    if elem not in _DTYPES:
        raise UnsupportedContent(
            f"the graph's input {inputs[0].name!r} must be FLOAT or DOUBLE, not "
            f"{TensorProto.DataType.Name(elem)}"
        )
    dtype = _DTYPES[elem]
    layers = _layers(graph, inputs[0].name, constants, np.dtype(dtype))
    props = {p.key: p.value for p in model.metadata_props}
    for i, layer in enumerate(layers):
        exact = _float(props.get(f"{SLOPE_KEY}.{i}"))
        if (
            exact is not None
            and layer.activation == "leaky_relu"
            and np.float32(exact) == np.float32(layer.negative_slope)
        ):
            layer.negative_slope = exact
    return OnnxNetwork(
        name=graph.name,
        inputs=int(layers[0].W.shape[0]),
        dtype=dtype,
        layers=[_layer_spec(layer) for layer in layers],
        params=[
            (layer.W, layer.b if layer.b is not None else np.zeros(layer.W.shape[1], dtype))
            for layer in layers
        ],
        loss=props.get(LOSS_KEY),
    )


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def default_loss(network: OnnxNetwork) -> str:
    """The loss of an imported network when neither the request nor the file names one."""
    return (
        "cross_entropy" if network.layers[-1]["activation"] == "softmax" else ("half_squared_error")
    )


def _layer_spec(layer: _Layer) -> dict[str, Any]:
    spec: dict[str, Any] = {"units": int(layer.W.shape[1]), "activation": layer.activation}
    if layer.activation == "leaky_relu":
        spec["negative_slope"] = layer.negative_slope
    return spec


def _array(tensor: onnx.TensorProto) -> Array:
    if tensor.data_location == TensorProto.EXTERNAL or tensor.external_data:
        # Loading it would read a file on this server.
        raise UnsupportedContent(
            f"tensor {tensor.name!r} keeps its data outside the model; send a self-contained model"
        )
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedContent(f"tensor {tensor.name!r} cannot be read ({exc})") from exc


def _layers(
    graph: onnx.GraphProto, current: str, constants: dict[str, Array], dtype: np.dtype[Any]
) -> list[_Layer]:
    """Walk the chain from the graph's input to its output, layer by layer."""
    layers: list[_Layer] = []
    for node in graph.node:
        op, where = node.op_type, f"{node.op_type} node {node.name or '(unnamed)'!r}"
        if op == "Constant":
            constants[node.output[0]] = _constant(node, where)
            continue
        if op not in SUPPORTED_OPS:
            raise UnsupportedContent(
                f"unsupported operator {op!r} ({where}); the supported operators are "
                f"{', '.join(SUPPORTED_OPS)}"
            )
        operands = [name for name in node.input if name]
        if current not in operands or len(node.output) != 1:
            raise UnsupportedContent(
                f"{where} does not continue the chain of layers from {current!r}; only a "
                "chain of dense layers is supported"
            )
        others = [name for name in operands if name != current]
        for name in others:
            if name not in constants:
                raise UnsupportedContent(
                    f"{where} reads {name!r}, which is neither the previous layer's output "
                    "nor a constant; only a chain of dense layers is supported"
                )
        pending = layers[-1] if layers and not layers[-1].done else None
        if op in ("Gemm", "MatMul"):
            if operands[0] != current:
                raise UnsupportedContent(f"{where} must take the previous output as its A")
            layers.append(_linear(node, op, [constants[n] for n in others], dtype, where))
        elif op == "Add":
            if pending is None or pending.b is not None or pending.activation != "identity":
                raise UnsupportedContent(
                    f"{where} must add a bias right after a MatMul (or a Gemm without C)"
                )
            pending.b = _bias(constants[others[0]], pending.W.shape[1], dtype, where)
        elif op == "Identity":
            pass
        else:
            if pending is None:
                raise UnsupportedContent(f"{where} must follow a Gemm, MatMul or Add")
            _activate(pending, node, op, where)
        current = node.output[0]
    if not layers:
        raise UnsupportedContent("the graph has no Gemm or MatMul: no dense layer to import")
    if current != graph.output[0].name:
        raise UnsupportedContent(
            f"the chain of layers ends at {current!r}, not at the graph's output "
            f"{graph.output[0].name!r}"
        )
    for i, (a, b) in enumerate(itertools.pairwise(layers)):
        if a.W.shape[1] != b.W.shape[0]:
            raise UnsupportedContent(
                f"layer {i + 1} takes {counted(b.W.shape[0], 'input')} but layer {i} has "
                f"{counted(a.W.shape[1], 'unit')}"
            )
    return layers


def _constant(node: onnx.NodeProto, where: str) -> Array:
    for attribute in node.attribute:
        if attribute.name == "value":
            return _array(attribute.t)
    raise UnsupportedContent(f"{where}: only Constant nodes with a tensor value are supported")


def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _linear(
    node: onnx.NodeProto, op: str, constants: list[Array], dtype: np.dtype[Any], where: str
) -> _Layer:
    if not constants:
        raise UnsupportedContent(f"{where} needs a constant weight matrix")
    B = _typed(constants[0], dtype, where)
    attributes = _attributes(node)
    if op == "MatMul":
        if len(constants) != 1 or B.ndim != 2:
            raise UnsupportedContent(f"{where} must multiply by a 2-D constant weight matrix")
        return _Layer(B, None, op)
    if attributes.get("transA", 0) != 0:
        raise UnsupportedContent(f"{where} has transA = 1, which is not supported")
    if B.ndim != 2:
        raise UnsupportedContent(f"{where} must multiply by a 2-D constant weight matrix")
    W = np.ascontiguousarray(B.T) if attributes.get("transB", 0) else B
    alpha, beta = float(attributes.get("alpha", 1.0)), float(attributes.get("beta", 1.0))
    if alpha != 1.0:
        W = (W * alpha).astype(dtype)
    b = None
    if len(constants) > 1:
        b = _bias(constants[1], W.shape[1], dtype, where)
        if beta != 1.0:
            b = (b * beta).astype(dtype)
    return _Layer(W, b, op)


def _bias(value: Array, units: int, dtype: np.dtype[Any], where: str) -> Array:
    value = _typed(value, dtype, where)
    if value.size not in (1, units) or value.ndim > 2 or (value.ndim == 2 and value.shape[0] != 1):
        raise UnsupportedContent(
            f"{where}: the bias of shape {list(value.shape)} does not fit {counted(units, 'unit')}"
        )
    return np.ascontiguousarray(np.broadcast_to(value.reshape(-1), (units,)))


def _typed(value: Array, dtype: np.dtype[Any], where: str) -> Array:
    if value.dtype != dtype:
        raise UnsupportedContent(
            f"{where}: a constant of dtype {value.dtype} in a {dtype} graph is not supported"
        )
    return value


def _activate(layer: _Layer, node: onnx.NodeProto, op: str, where: str) -> None:
    attributes = _attributes(node)
    layer.activation = _ACTIVATION_OPS[op]
    layer.done = True
    if op == "LeakyRelu":
        layer.negative_slope = float(attributes.get("alpha", 0.01))
    if op == "Softmax" and attributes.get("axis", 1) not in (1, -1):
        raise UnsupportedContent(f"{where}: only Softmax over axis 1 (each row) is supported")
