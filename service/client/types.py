"""The answers of the API as the client reads them: its own Pydantic models, one per kind of
answer, with the attribute names of the wire fields.

They are not the server's schemas (:mod:`service.api.schemas`) and import nothing of the
server. They read tolerantly, so that a client keeps working with a server newer or set up
otherwise than itself:

- a field the client does not know is ignored (a newer server may add fields); in the parts a
  client sends back (``network``, ``optimizer``, ``parameters``, ``optimizer_state``) it is
  kept and sent back as it came;
- no size limit applies (the server's limits are its own, and may be larger than the ones the
  client's environment would set), and names of activations, losses, optimizers and job states
  are plain strings (a newer server may add some);
- what a field is (a number, a list of rows, a date) is still checked: an answer that does not
  read raises :class:`~service.client.errors.UnexpectedAnswer`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

Item = TypeVar("Item")


class Answer(BaseModel):
    """Base of the answers: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")


class Echoed(BaseModel):
    """Base of the parts of an answer a client may send back: unknown fields are kept (and
    sent back)."""

    model_config = ConfigDict(extra="allow")


class Listing(Answer, Generic[Item]):
    """A page of a listing: its ``items``, how many there are in all, and the cursor of the
    next page (None on the last)."""

    items: list[Item]
    total: int
    next_cursor: str | None = None


# -- networks, parameters, optimizers -------------------------------------------------------


class LayerSpec(Echoed):
    """A dense layer: ``units`` with one ``activation`` (``negative_slope`` for leaky_relu)."""

    units: int
    activation: str
    negative_slope: float | None = None


class NetworkSpec(Echoed):
    """A feed-forward network: inputs, layers in order, the loss over the last layer."""

    inputs: int
    layers: list[LayerSpec]
    loss: str
    dtype: str = "float64"


class OptimizerSpec(Echoed):
    """An optimizer: its ``kind`` (``sgd``, ``adam``) and hyper-parameters; those of another
    kind are None."""

    kind: str = "sgd"
    learning_rate: float | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    weight_decay: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    eps: float | None = None


class InitPublic(Answer):
    """The scheme and seed parameters were drawn with."""

    scheme: str
    seed: int


class LayerParameters(Echoed):
    """``weights[i][j]`` connects input ``i`` of the layer to unit ``j`` (inputs x units)."""

    weights: list[list[float]]
    biases: list[float]


class LayeredParameters(Echoed):
    """Parameters (or gradients) layer by layer."""

    layers: list[LayerParameters]


#: Layered, or in the seed's named notation (``{"w1": ..., "b1": ...}``).
Parameters = LayeredParameters | dict[str, float]


# -- models ---------------------------------------------------------------------------------


class ModelPublic(Answer):
    """A stored model; ``version`` is raised by every change of its parameters."""

    name: str
    version: int
    network: NetworkSpec
    optimizer: OptimizerSpec
    init: InitPublic | None = None
    description: str | None = None
    tags: list[str] = []
    parameter_count: int
    created_at: datetime
    updated_at: datetime


class ModelList(Listing[ModelPublic]):
    """A page of models ordered by name."""


class ParametersPublic(Answer):
    """The parameters of one version of a model, layered or named."""

    model: str
    version: int
    parameters: Parameters


class VersionPublic(Answer):
    version: int
    created_at: datetime
    reason: str


class VersionList(Answer):
    """The kept versions of a model, newest first."""

    model: str
    version: int
    items: list[VersionPublic]


# -- compute --------------------------------------------------------------------------------


class LayerTraceOut(Answer):
    net: list[list[float]]
    out: list[list[float]]


class NodeTraceOut(Answer):
    net: list[float]
    out: list[float]


class TraceOut(Answer):
    """``net`` and ``out`` of every layer, rows x units; named: also per node."""

    layers: list[LayerTraceOut]
    nodes: dict[str, NodeTraceOut] | None = None


class DeltasOut(Answer):
    """dE/dnet of the mean batch loss, rows x units, per layer; named: per node."""

    layers: list[list[list[float]]]
    nodes: dict[str, list[float]] | None = None


class ForwardResponse(Answer):
    model: str | None = None
    version: int | None = None
    outputs: list[list[float]]
    trace: TraceOut | None = None


class GradientResponse(Answer):
    model: str | None = None
    version: int | None = None
    loss: float
    gradients: Parameters
    deltas: DeltasOut | None = None
    trace: TraceOut | None = None


class TrainStepResponse(Answer):
    model: str
    version: int
    loss: float


class OptimizerStateIO(Echoed):
    """The optimizer state a stateless train-step returns, to send with the next step."""

    step: int = 0
    slots: dict[str, LayeredParameters] = {}


class StatelessTrainStepResponse(Answer):
    loss: float
    parameters: Parameters
    optimizer_state: OptimizerStateIO


class InputGradientResponse(Answer):
    """d(mean loss)/dx per row (rows x inputs; named: an object per row keyed by input node),
    and on request the Jacobian dy_k/dx_i (rows x outputs x inputs; named: per row, keyed by
    output node, then input node)."""

    model: str | None = None
    version: int | None = None
    loss: float
    input_gradients: list[list[float]] | list[dict[str, float]]
    jacobian: list[list[list[float]]] | list[dict[str, dict[str, float]]] | None = None


class ParameterCheckOut(Answer):
    """One parameter of a gradient check: dE/dp by backpropagation and by central differences,
    and their relative error."""

    name: str
    layered_name: str | None = None
    backprop: float
    numeric: float
    relative_error: float


class GradientCheckResponse(Answer):
    model: str
    version: int
    epsilon: float
    loss: float
    max_relative_error: float
    parameters: list[ParameterCheckOut]


# -- datasets, jobs, history ----------------------------------------------------------------


class DatasetPublic(Answer):
    """A stored dataset, without its rows."""

    name: str
    rows: int
    input_columns: int
    target_columns: int
    dtype: str
    source: str
    size_bytes: int
    digest: str
    created_at: datetime


class DatasetList(Listing[DatasetPublic]):
    """A page of datasets ordered by name."""


class DatasetData(Answer):
    name: str
    inputs: list[list[float]]
    targets: list[list[float]]


class CheckpointPublic(Answer):
    """Where a job's last checkpoint is: its position and the model version it committed."""

    epoch: int
    step: int
    version: int


class BestPublic(CheckpointPublic):
    """The epoch that reached a job's ``best_loss``: its end and the version it committed."""


class JobPublic(Answer):
    """A training job and its progress (``state``: queued, running, succeeded, failed,
    cancelled or interrupted)."""

    id: str
    model: str
    state: str
    dataset: str | None = None
    rows: int
    epochs: int
    batch_size: int
    learning_rate: float
    optimizer: OptimizerSpec
    seed: int
    validation_split: float | None = None
    patience: int | None = None
    restore_best: bool = False
    steps_per_epoch: int
    total_steps: int
    epoch: int
    step: int
    loss: float | None = None
    best_loss: float | None = None
    validation_loss: float | None = None
    eta_seconds: float | None = None
    stopped_early: bool = False
    best: BestPublic | None = None
    restored_best: bool = False
    version: int
    checkpoint: CheckpointPublic | None = None
    cancel_requested: bool = False
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None


class JobList(Listing[JobPublic]):
    """A page of jobs, newest first."""


class HistoryEntryPublic(Answer):
    """One epoch of a job on the model: its losses and the version it committed."""

    seq: int
    job: str
    epoch: int
    step: int
    loss: float
    validation_loss: float | None = None
    version: int
    created_at: datetime


class HistoryList(Answer):
    model: str
    items: list[HistoryEntryPublic]
    next_cursor: int | None = None


# -- learn ----------------------------------------------------------------------------------


class FactorOut(Answer):
    """One local derivative along a path: its symbol, formula (both also in LaTeX), value."""

    symbol: str
    formula: str
    value: float
    symbol_latex: str
    formula_latex: str


class PathOut(Answer):
    nodes: list[str]
    factors: list[FactorOut]
    product: float


class DeltaTermOut(Answer):
    weight: str
    weight_value: float
    node: str
    delta: float


class DeltaFormOut(Answer):
    node: str
    delta: FactorOut
    input: FactorOut
    derivative: FactorOut | None = None
    terms: list[DeltaTermOut]
    product: float
    recursion: str
    recursion_latex: str


class ExplainResponse(Answer):
    """``dE/dparameter`` by the chain rule, path by path or in the delta form."""

    model: str
    version: int
    parameter: str
    kind: str
    value: float
    source: str | None = None
    node: str
    loss: float
    gradient: float
    form: str
    path_count: int
    paths: list[PathOut]
    sum: float
    delta: DeltaFormOut | None = None
    note: str | None = None


# -- operations -----------------------------------------------------------------------------


class Health(Answer):
    status: str


class Readiness(Health):
    """``status`` ``ready``; ``storage`` ``ok``, or ``full`` while writes get 507."""

    storage: str = "ok"
