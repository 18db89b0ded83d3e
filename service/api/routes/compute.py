"""Forward, gradient and train-step on a stored model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response

from service.api import convert, examples
from service.api.deps import CheckedIfMatch, NamePath, NotationQuery, StoreDep, etag
from service.api.problems import problem_responses
from service.api.schemas.compute import (
    ForwardRequest,
    ForwardResponse,
    GradientRequest,
    GradientResponse,
    TrainStepRequest,
    TrainStepResponse,
)
from service.core import forward

router = APIRouter(prefix="/v1/models", tags=["compute"])


@router.post(
    "/{name}/forward",
    summary="Forward pass on a stored model",
    description="The outputs of the model's current version for a batch of inputs (rows x "
    "inputs), and with `trace` every layer's net input and output. With `?notation=named` the "
    "trace also lists every node n3.. by name.",
    response_model_exclude_none=True,
    responses=problem_responses(400, 404, 413, 422),
)
async def forward_model(
    name: NamePath,
    body: Annotated[ForwardRequest, Body(openapi_examples=examples.FORWARD)],
    store: StoreDep,
    response: Response,
    notation: NotationQuery = "layered",
) -> ForwardResponse:
    model = await store.load(name)
    trace = await store.compute(
        model.network, forward, model.network, model.params, body.inputs, data=body.inputs
    )
    response.headers.update(etag(model.version))
    return ForwardResponse.model_construct(
        model=name,
        version=model.version,
        outputs=convert.matrix(trace[-1].out),
        trace=convert.trace_out(model.network, trace, notation) if body.trace else None,
    )


@router.post(
    "/{name}/gradient",
    summary="Loss and gradient by backpropagation",
    description="The mean batch loss and dE/dW, dE/db of every layer at the model's current "
    "version; with `deltas` the dE/dnet of every layer, with `trace` the forward trace, and "
    "with `?notation=named` the seed's names (w1.., b1.., n3..).",
    response_model_exclude_none=True,
    responses=problem_responses(400, 404, 413, 422),
)
async def gradient_model(
    name: NamePath,
    body: Annotated[GradientRequest, Body(openapi_examples=examples.GRADIENT)],
    store: StoreDep,
    response: Response,
    notation: NotationQuery = "layered",
) -> GradientResponse:
    model = await store.load(name)
    result = await store.gradient(model.network, model.params, body.inputs, body.targets)
    response.headers.update(etag(model.version))
    return GradientResponse.model_construct(
        model=name,
        version=model.version,
        loss=result.loss,
        gradients=convert.parameters_out(result.gradients, notation),
        deltas=convert.deltas_out(model.network, result.deltas, notation) if body.deltas else None,
        trace=convert.trace_out(model.network, result.trace, notation) if body.trace else None,
    )


@router.post(
    "/{name}/train-step",
    summary="One gradient-descent step",
    description="Compute the gradient on the batch and update the parameters with the model's "
    "optimizer (plain SGD, w <- w - learning_rate * dE/dw, unless the model has another), "
    "storing them as version + 1. Answers once the new version is durable. `loss` is the loss "
    "before the step. Concurrent steps on one model are serialised; none is lost. A step whose "
    "result would not be finite commits nothing and answers 422.",
    response_model_exclude_none=True,
    responses=problem_responses(400, 404, 412, 413, 422),
)
async def train_step_model(
    name: NamePath,
    body: Annotated[TrainStepRequest, Body(openapi_examples=examples.TRAIN_STEP)],
    store: StoreDep,
    expected: CheckedIfMatch,
    response: Response,
) -> TrainStepResponse:
    outcome = await store.train_step(name, body.inputs, body.targets, body.learning_rate, expected)
    response.headers.update(etag(outcome.record.version))
    return TrainStepResponse(model=name, version=outcome.record.version, loss=outcome.loss)
