"""Forward, gradient and train-step, on a stored model or stateless."""

from __future__ import annotations

from pydantic import Field

from service.api.schemas.common import MAX_INTEGER, Batch, Body, LearningRate, Out
from service.api.schemas.networks import (
    LayeredParameters,
    NetworkSpec,
    OptimizerSpec,
    ParametersIn,
)


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
