"""Translation between request/response schemas and the core's arrays, with JSON pointers of
core errors prefixed by where the checked object sat in the request body."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from service import specs
from service.api.schemas.compute import (
    DeltasOut,
    GradientCheckResponse,
    LayerTraceOut,
    NodeTraceOut,
    OptimizerStateIO,
    ParameterCheckOut,
    TraceOut,
)
from service.api.schemas.networks import (
    LayeredParameters,
    LayerParameters,
    NamedParameters,
    NetworkSpec,
    OptimizerSpec,
    SGDSpec,
)
from service.core import (
    SGD,
    CoreError,
    FloatArray,
    GradientCheck,
    Location,
    Network,
    Optimizer,
    OptimizerState,
    Params,
    ShapeMismatch,
    Trace,
    check_parameters,
    from_named,
    node_names,
    to_named,
)

Notation = Literal["layered", "named"]


@contextmanager
def at(prefix: str) -> Iterator[None]:
    """Prefix the JSON pointer of a core error raised inside with ``prefix``."""
    try:
        yield
    except CoreError as exc:
        exc.pointer = prefix + exc.pointer
        raise


def network(spec: NetworkSpec) -> Network:
    with at("/network"):
        return specs.network_from_dict(spec.model_dump())


def optimizer(spec: OptimizerSpec | None) -> Optimizer:
    return specs.optimizer_from_dict((spec or SGDSpec()).model_dump())


def optimizer_state(net: Network, opt: Optimizer, given: OptimizerStateIO | None) -> OptimizerState:
    """The core's optimizer state from a stateless train-step's ``optimizer_state``."""
    if given is None:
        return OptimizerState()
    allowed = {"velocity"} if isinstance(opt, SGD) else {"m", "v"}
    for slot in given.slots:
        if slot not in allowed:
            kind = "sgd" if isinstance(opt, SGD) else "adam"
            raise ShapeMismatch(
                f"optimizer_state slot {slot!r} is not one of {kind}'s: "
                f"{', '.join(sorted(allowed))}",
                f"/optimizer_state/slots/{slot}",
            )
    slots = {
        slot: parameters(net, values, f"/optimizer_state/slots/{slot}")
        for slot, values in given.slots.items()
    }
    return OptimizerState(given.step, slots)


def parameters(
    net: Network, given: LayeredParameters | NamedParameters, where: str = "/parameters"
) -> Params:
    with at(where):
        if isinstance(given, NamedParameters):
            return from_named(net, given.root)
        return check_parameters(net, [(layer.weights, layer.biases) for layer in given.layers])


def layered(params: Params) -> LayeredParameters:
    return LayeredParameters.model_construct(
        layers=[
            LayerParameters.model_construct(weights=matrix(p.W), biases=p.b.tolist())
            for p in params
        ]
    )


def parameters_out(params: Params, notation: Notation) -> LayeredParameters | dict[str, float]:
    return to_named(params) if notation == "named" else layered(params)


# Above this many values a matrix is converted row by row: one tolist() of it all would hold
# the interpreter lock, and so the event loop, for as long as it takes (30 ms a million).
_ROW_BY_ROW = 65_536


def matrix(a: FloatArray) -> list[list[float]]:
    if a.size <= _ROW_BY_ROW:
        rows: list[list[float]] = a.tolist()
        return rows
    return [row.tolist() for row in a]


def trace_out(net: Network, trace: Trace, notation: Notation) -> TraceOut:
    layers = [LayerTraceOut.model_construct(net=matrix(t.net), out=matrix(t.out)) for t in trace]
    nodes: dict[str, NodeTraceOut] | None = None
    if notation == "named":
        nodes = {}
        for names, t in zip(node_names(net)[1:], trace, strict=True):
            for j, name in enumerate(names):
                nodes[name] = NodeTraceOut.model_construct(
                    net=t.net[:, j].tolist(), out=t.out[:, j].tolist()
                )
    return TraceOut.model_construct(layers=layers, nodes=nodes)


def deltas_out(net: Network, deltas: tuple[FloatArray, ...], notation: Notation) -> DeltasOut:
    nodes: dict[str, list[float]] | None = None
    if notation == "named":
        nodes = {}
        for names, d in zip(node_names(net)[1:], deltas, strict=True):
            for j, name in enumerate(names):
                nodes[name] = d[:, j].tolist()
    return DeltasOut.model_construct(layers=[matrix(d) for d in deltas], nodes=nodes)


def input_gradients_out(
    net: Network, gradients: FloatArray, notation: Notation
) -> list[list[float]] | list[dict[str, float]]:
    """dE/dx, rows x inputs; named: one object per row keyed by input node (n1, ...)."""
    if notation != "named":
        return matrix(gradients)
    inputs = node_names(net)[0]
    return [dict(zip(inputs, row, strict=True)) for row in matrix(gradients)]


def jacobian_out(
    net: Network, jacobian: FloatArray, notation: Notation
) -> list[list[list[float]]] | list[dict[str, dict[str, float]]]:
    """dy_k/dx_i, rows x outputs x inputs; named: per row an object keyed by output node, each
    an object keyed by input node."""
    rows = [matrix(m) for m in jacobian]
    if notation != "named":
        return rows
    names = node_names(net)
    inputs, outputs = names[0], names[-1]
    return [
        {o: dict(zip(inputs, row, strict=True)) for o, row in zip(outputs, m, strict=True)}
        for m in rows
    ]


def layered_name(at: Location) -> str:
    """``W{l}[i][j]`` or ``b{l}[j]``, layers from 0 as in the layered notation."""
    if at.kind == "W":
        return f"W{at.layer}[{at.row}][{at.col}]"
    return f"b{at.layer}[{at.col}]"


def gradient_check_out(
    name: str, version: int, epsilon: float, check: GradientCheck
) -> GradientCheckResponse:
    return GradientCheckResponse.model_construct(
        model=name,
        version=version,
        epsilon=epsilon,
        loss=check.loss,
        max_relative_error=check.max_relative_error,
        parameters=[
            ParameterCheckOut.model_construct(
                name=p.name,
                layered_name=layered_name(p.location),
                backprop=p.backprop,
                numeric=p.numeric,
                relative_error=p.relative_error,
            )
            for p in check.parameters
        ],
    )


def dump(model: Any) -> Any:
    """JSON-able form of a schema object or plain value."""
    return (
        model.model_dump(mode="json", exclude_none=True) if hasattr(model, "model_dump") else model
    )
