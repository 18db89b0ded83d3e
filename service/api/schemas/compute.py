"""Forward, gradient, train-step and input gradients, on a stored model or stateless; the
gradient check."""

from __future__ import annotations

from pydantic import Field

from service.api.schemas.common import MAX_INTEGER, Batch, Body, LearningRate, Out
from service.api.schemas.networks import (
    LayeredParameters,
    NetworkSpec,
    OptimizerSpec,
    ParametersIn,
)
from service.core import DEFAULT_EPSILON


class ForwardRequest(Body):
    inputs: Batch
    trace: bool = Field(False, description="Also return every layer's net and out.")


class GradientRequest(Body):
    inputs: Batch
    targets: Batch
    deltas: bool = Field(False, description="Also return dE/dnet of every layer.")
    trace: bool = Field(False, description="Also return every layer's net and out.")


class TrainStepRequest(Body):
    inputs: Batch
    targets: Batch
    learning_rate: LearningRate | None = Field(
        None, description="Overrides the learning rate of the model's optimizer for this step."
    )


class LayerTraceOut(Out):
    net: list[list[float]]
    out: list[list[float]]


class NodeTraceOut(Out):
    net: list[float]
    out: list[float]


class TraceOut(Out):
    """``net`` and ``out`` of every layer, rows x units; with ``notation=named`` also per node
    (``n3``, ...), one value per input row."""

    layers: list[LayerTraceOut]
    nodes: dict[str, NodeTraceOut] | None = None


class ForwardResponse(Out):
    model: str | None = None
    version: int | None = None
    outputs: list[list[float]]
    trace: TraceOut | None = None


class DeltasOut(Out):
    """dE/dnet of the mean batch loss, rows x units, per layer; named: per node."""

    layers: list[list[list[float]]]
    nodes: dict[str, list[float]] | None = None


class GradientResponse(Out):
    model: str | None = None
    version: int | None = None
    loss: float = Field(description="Mean over the batch of the per-sample loss.")
    gradients: LayeredParameters | dict[str, float]
    deltas: DeltasOut | None = None
    trace: TraceOut | None = None


class TrainStepResponse(Out):
    model: str
    version: int = Field(description="The new version, made by this step.")
    loss: float = Field(description="The loss before the step.")


class OptimizerStateIO(Body):
    """Optimizer state to carry between stateless train-steps: the step count and the
    velocity (SGD with momentum) or first and second moments (Adam)."""

    step: int = Field(0, ge=0, le=MAX_INTEGER)
    slots: dict[str, LayeredParameters] = Field(default_factory=dict)


class StatelessForwardRequest(ForwardRequest):
    network: NetworkSpec
    parameters: ParametersIn


class StatelessGradientRequest(GradientRequest):
    network: NetworkSpec
    parameters: ParametersIn


class StatelessTrainStepRequest(Body):
    network: NetworkSpec
    parameters: ParametersIn
    inputs: Batch
    targets: Batch
    learning_rate: LearningRate | None = Field(
        None, description="Overrides the optimizer's learning rate (default SGD, 0.01)."
    )
    optimizer: OptimizerSpec | None = None
    optimizer_state: OptimizerStateIO | None = None


class StatelessTrainStepResponse(Out):
    loss: float = Field(description="The loss before the step.")
    parameters: LayeredParameters | dict[str, float]
    optimizer_state: OptimizerStateIO


class InputGradientRequest(Body):
    inputs: Batch
    targets: Batch
    jacobian: bool = Field(
        False, description="Also return dy_k/dx_i of every output k and input i, per row."
    )


class InputGradientResponse(Out):
    model: str | None = None
    version: int | None = None
    loss: float = Field(description="Mean over the batch of the per-sample loss.")
    input_gradients: list[list[float]] | list[dict[str, float]] = Field(
        description="d(mean loss)/dx_i for every row (the per-sample loss's derivative over "
        "the rows), rows x inputs; named: one object per row keyed by input node, "
        '`[{"n1": ..., "n2": ...}, ...]`.'
    )
    jacobian: list[list[list[float]]] | list[dict[str, dict[str, float]]] | None = Field(
        None,
        description="dy_k/dx_i for every row, rows x outputs x inputs; named: one object per "
        'row keyed by output node, then input node, `[{"n9": {"n1": ..., "n2": ...}}, ...]`.',
    )


class StatelessInputGradientRequest(InputGradientRequest):
    network: NetworkSpec
    parameters: ParametersIn


class GradientCheckRequest(Body):
    inputs: Batch
    targets: Batch
    epsilon: float = Field(
        DEFAULT_EPSILON,
        gt=0,
        allow_inf_nan=False,
        description="The step of the central differences, finite and > 0.",
    )
    sample: int | None = Field(
        None,
        ge=1,
        le=MAX_INTEGER,
        description="Check this many parameters, spread evenly over w1..wN, b1..bM (all when "
        "null or at least their number).",
    )


class ParameterCheckOut(Out):
    name: str = Field(description="The parameter in the named notation: w1.., b1...")
    layered_name: str = Field(
        description="Its place in the layered notation: `W{l}[i][j]` (the weight from input i "
        "of layer l to its unit j) or `b{l}[j]`, layers numbered from 0 as in `layers`."
    )
    backprop: float = Field(description="dE/dp by backpropagation (the gradient's value).")
    numeric: float = Field(description="(E(p + epsilon) - E(p - epsilon)) / (2 epsilon).")
    relative_error: float = Field(
        description="|backprop - numeric| / max(|backprop|, |numeric|); 0 when both are 0."
    )


class GradientCheckResponse(Out):
    model: str
    version: int
    epsilon: float
    loss: float = Field(description="Mean over the batch of the per-sample loss.")
    max_relative_error: float = Field(description="The largest of the parameters' (0 if none).")
    parameters: list[ParameterCheckOut]
