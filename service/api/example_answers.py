"""The spec's response examples: the seed model's real answers to the request examples.

Computed when the spec is made, by the service's own core, converters and response schemas,
from the request examples of :mod:`service.api.examples`, so that the docs UI shows the numbers
"Try it out" gets (``tests/test_openapi_answers.py`` sends the requests and compares). Each
response example has the key of the request example it answers (``seed`` for the create,
``worked-example`` for the rest), and the state it answers in: the README's order, the model
``seed`` created at version 1, then one train-step (version 2) and a rollback to version 1
(version 3). Times are the README's; the service answers with the real ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from service import specs
from service.api import convert, examples
from service.api.routes import learn, models, v2
from service.api.schemas.compute import (
    ForwardResponse,
    GradientResponse,
    InputGradientResponse,
    OptimizerStateIO,
    StatelessTrainStepResponse,
    TrainStepResponse,
)
from service.api.schemas.models import (
    ModelList,
    ModelPublic,
    ParametersPublic,
    VersionList,
    VersionPublic,
)
from service.api.schemas.networks import LayeredParameters, NetworkSpec
from service.api.v2 import codec
from service.api.v2.schemas import ModelMetadata, ModelReady, TensorMetadata
from service.core import (
    DEFAULT_EPSILON,
    OptimizerState,
    forward,
    gradient,
    gradient_check,
    input_gradient,
    step,
)
from service.learn.explained import explain
from service.registry import ModelRecord

NAME = "seed"
#: The README's creation time; real answers carry their own.
WHEN = datetime(2026, 11, 28, 12, 56, 50, 293856, tzinfo=UTC)
JSON = "application/json"


@dataclass(frozen=True)
class Answer:
    """The example of ``status`` answering ``operation`` (an operationId)."""

    operation: str
    status: str
    summary: str
    value: Any
    key: str = "worked-example"


def answers() -> list[Answer]:
    """Every response example, computed."""
    network = convert.network(NetworkSpec.model_validate(examples.SEED_NETWORK))
    params = convert.parameters(network, LayeredParameters.model_validate(examples.SEED_PARAMETERS))
    X, T = np.array(examples.SEED_INPUTS), np.array(examples.SEED_TARGETS)
    layered = convert.layered(params)

    spec: dict[str, Any] = {
        "network": specs.network_to_dict(network),
        "optimizer": specs.optimizer_to_dict(convert.optimizer(None)),
        "init": None,
        "description": None,
        "tags": [],
    }

    def public(version: int) -> ModelPublic:
        return models.public(ModelRecord(NAME, spec, version, WHEN, WHEN))

    def model(version: int) -> Any:
        return _plain(public(version))

    trace = forward(network, params, X)
    forward_answer = ForwardResponse.model_construct(
        outputs=convert.matrix(trace[-1].out), trace=convert.trace_out(network, trace, "layered")
    )
    result = gradient(network, params, X, T)
    gradient_answer = GradientResponse.model_construct(
        loss=result.loss,
        gradients=convert.parameters_out(result.gradients, "layered"),
        deltas=convert.deltas_out(network, result.deltas, "layered"),
    )
    sensitivity = input_gradient(network, params, X, T, len(X), jacobian=True)
    assert sensitivity.jacobian is not None
    input_gradient_answer = InputGradientResponse.model_construct(
        loss=sensitivity.loss,
        input_gradients=convert.input_gradients_out(network, sensitivity.gradients, "layered"),
        jacobian=convert.jacobian_out(network, sensitivity.jacobian, "layered"),
    )
    check = gradient_check(network, params, X, T, DEFAULT_EPSILON)
    sgd = convert.optimizer(None)  # plain SGD at 0.01, the examples' learning rate
    stepped, state = step(sgd, params, result.gradients, OptimizerState())
    rows = X.shape[0]
    outputs = [codec.OutputTensor(v2.OUTPUT, trace[-1].out, False)]
    tensors = codec.DATATYPE_OF_DTYPE[network.dtype]
    metadata = ModelMetadata(
        name=NAME,
        versions=["1"],
        platform=v2.PLATFORM,
        inputs=[TensorMetadata(name=v2.INPUT, datatype=tensors, shape=[-1, network.inputs])],
        outputs=[TensorMetadata(name=v2.OUTPUT, datatype=tensors, shape=[-1, network.outputs])],
    )
    explained = explain(network, params, X, T, "w7")
    on_seed = {"model": NAME, "version": 1}  # the stored model's answers name it
    return [
        Answer("models-create_model", "201", "The seed at version 1", model(1), key="seed"),
        Answer("models-get_model", "200", "The seed at version 1", model(1), key="seed"),
        Answer(
            "models-list_models",
            "200",
            "The seed alone",
            _plain(ModelList(items=[public(1)], total=1, next_cursor=None)),
            key="seed",
        ),
        Answer(
            "models-get_parameters",
            "200",
            "The seed's parameters at version 1",
            _json(ParametersPublic.model_construct(model=NAME, version=1, parameters=layered)),
            key="seed",
        ),
        Answer(
            "models-put_parameters",
            "200",
            "The seed's parameters stored again, as version 2",
            _json(ParametersPublic.model_construct(model=NAME, version=2, parameters=layered)),
        ),
        Answer(
            "compute-forward_model",
            "200",
            "The seed's outputs and trace",
            _json(forward_answer.model_copy(update=on_seed)),
        ),
        Answer(
            "compute-gradient_model",
            "200",
            "The seed's loss, gradient and deltas",
            _json(gradient_answer.model_copy(update=on_seed)),
        ),
        Answer(
            "compute-input_gradient_model",
            "200",
            "The seed's dE/dx = W1 delta1 and dy/dx",
            _json(input_gradient_answer.model_copy(update=on_seed)),
        ),
        Answer(
            "compute-gradient_check_model",
            "200",
            "Backpropagation agrees with the central differences to about 1e-8",
            _json(convert.gradient_check_out(NAME, 1, DEFAULT_EPSILON, check)),
        ),
        Answer(
            "compute-train_step_model",
            "200",
            "Version 2, and the loss before the step",
            _json(TrainStepResponse(model=NAME, version=2, loss=result.loss)),
        ),
        Answer(
            "models-list_versions",
            "200",
            "After one train-step",
            _plain(
                VersionList(
                    model=NAME,
                    version=2,
                    items=[
                        VersionPublic(version=2, created_at=WHEN, reason="train-step"),
                        VersionPublic(version=1, created_at=WHEN, reason="create"),
                    ],
                )
            ),
            key="seed",
        ),
        Answer("models-rollback", "200", "Version 3, equal to version 1", model(3)),
        Answer(
            "stateless-forward_stateless",
            "200",
            "The seed's outputs and trace",
            _json(forward_answer),
        ),
        Answer(
            "stateless-gradient_stateless",
            "200",
            "The seed's loss, gradient and deltas",
            _json(gradient_answer),
        ),
        Answer(
            "stateless-input_gradient_stateless",
            "200",
            "The seed's dE/dx and dy/dx",
            _json(input_gradient_answer),
        ),
        Answer(
            "stateless-train_step_stateless",
            "200",
            "The parameters after the step, w - 0.01 dE/dw",
            _json(
                StatelessTrainStepResponse.model_construct(
                    loss=result.loss,
                    parameters=convert.layered(stepped),
                    optimizer_state=OptimizerStateIO.model_construct(
                        step=state.step,
                        slots={k: convert.layered(v) for k, v in state.slots.items()},
                    ),
                )
            ),
        ),
        Answer(
            "learn-explain_model",
            "200",
            "dE/dw7 along its one path, n6 -> n9",
            _json(learn.explanation_out(NAME, 1, explained)),
        ),
        Answer("inference-model_metadata", "200", "The seed", _plain(metadata), key="seed"),
        Answer("inference-model_version_metadata", "200", "The seed", _plain(metadata), key="seed"),
        Answer(
            "inference-model_ready",
            "200",
            "The seed is ready",
            _plain(ModelReady(name=NAME, ready=True)),
            key="seed",
        ),
        Answer(
            "inference-model_version_ready",
            "200",
            "Version 1 is ready",
            _plain(ModelReady(name=NAME, ready=True)),
            key="seed",
        ),
        *(
            Answer(
                operation,
                "200",
                f"The seed's output for {rows} row",
                json.loads(codec.encode_response(NAME, "1", None, outputs)[0]),
            )
            for operation in ("inference-infer", "inference-infer_version")
        ),
    ]


def document(spec: dict[str, Any]) -> None:
    """Put every response example in ``spec``, beside its schema."""
    operations = {op["operationId"]: op for path in spec["paths"].values() for op in path.values()}
    for answer in answers():
        content = operations[answer.operation]["responses"][answer.status]["content"][JSON]
        content["examples"] = {answer.key: {"summary": answer.summary, "value": answer.value}}


def _json(model: Any) -> Any:
    """A response as the routes write it: without its null fields."""
    return json.loads(model.model_dump_json(exclude_none=True))


def _plain(model: Any) -> Any:
    """A response as FastAPI writes a route's returned model: null fields included."""
    return json.loads(model.model_dump_json()) if hasattr(model, "model_dump_json") else model
