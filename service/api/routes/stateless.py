"""Forward, gradient, train-step and input gradients on a network and parameters sent inline;
nothing stored."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Body, Response

from service.api import answers, binary, convert, endpoint, examples
from service.api.deps import NotationQuery
from service.api.endpoint import CallDep
from service.api.problems import problem_responses
from service.api.routes.compute import (
    INPUT_GRADIENT_DESCRIPTION,
    Sent,
    forward_answer,
    gradient_answer,
    input_gradient_answer,
)
from service.api.schemas.compute import (
    ForwardResponse,
    GradientResponse,
    InputGradientResponse,
    OptimizerStateIO,
    StatelessForwardRequest,
    StatelessGradientRequest,
    StatelessInputGradientRequest,
    StatelessTrainStepRequest,
    StatelessTrainStepResponse,
)
from service.api.schemas.networks import NetworkSpec, ParametersIn
from service.operations.compute import step_work
from service.operations.cost import answer_numbers

router = APIRouter(prefix="/v1", tags=["stateless"])


@endpoint.post(
    router,
    "/forward",
    summary="Forward pass (stateless)",
    description="Like the forward of a stored model, with `network` and `parameters` inline.",
    response_model=ForwardResponse,
    response_model_exclude_none=True,
    responses={**problem_responses(400, 413, 422), **binary.NPY_RESPONSES},
)
async def forward_stateless(
    body: Annotated[StatelessForwardRequest, Body(openapi_examples=examples.STATELESS_FORWARD)],
    call: CallDep,
    notation: NotationQuery = "layered",
) -> Response:
    as_npy = binary.wants_npy(call.headers, trace=body.trace)
    sent = _sent(body.network, body.parameters)
    return await forward_answer(call.ops, None, sent, body.inputs, body.trace, notation, as_npy)


@endpoint.post(
    router,
    "/gradient",
    summary="Loss and gradient (stateless)",
    description="Like the gradient of a stored model, with `network` and `parameters` inline.",
    response_model=GradientResponse,
    responses=problem_responses(400, 413, 422),
)
async def gradient_stateless(
    body: Annotated[StatelessGradientRequest, Body(openapi_examples=examples.STATELESS_GRADIENT)],
    call: CallDep,
    notation: NotationQuery = "layered",
) -> Response:
    sent = _sent(body.network, body.parameters)
    # No .npz answer here: the stateless gradient answers JSON whatever the Accept.
    return await gradient_answer(
        call.ops, None, sent, body.inputs, body.targets, notation, body.deltas, body.trace, False
    )


@endpoint.post(
    router,
    "/input-gradient",
    summary="Gradient of the loss with respect to the inputs (stateless)",
    description="Like the input gradient of a stored model, with `network` and `parameters` "
    "inline (the answer without `model` and `version`; `Accept: application/x-npz` for an "
    ".npz answer). " + INPUT_GRADIENT_DESCRIPTION,
    response_model=InputGradientResponse,
    response_model_exclude_none=True,
    responses={**problem_responses(400, 413, 422), **binary.INPUT_GRADIENT_NPZ_RESPONSES},
)
async def input_gradient_stateless(
    body: Annotated[
        StatelessInputGradientRequest, Body(openapi_examples=examples.STATELESS_INPUT_GRADIENT)
    ],
    call: CallDep,
    notation: NotationQuery = "layered",
) -> Response:
    sent = _sent(body.network, body.parameters)
    as_npz = binary.wants_npz(call.headers)
    return await input_gradient_answer(
        call.ops, None, sent, body.inputs, body.targets, body.jacobian, notation, as_npz
    )


@endpoint.post(
    router,
    "/train-step",
    summary="One gradient-descent step (stateless)",
    description="Returns the updated `parameters` and the `optimizer_state` to send with the "
    "next step (for momentum and Adam). Plain SGD with `learning_rate` unless `optimizer` "
    "says otherwise.",
    response_model=StatelessTrainStepResponse,
    responses=problem_responses(400, 413, 422),
)
async def train_step_stateless(
    body: Annotated[
        StatelessTrainStepRequest, Body(openapi_examples=examples.STATELESS_TRAIN_STEP)
    ],
    call: CallDep,
    notation: NotationQuery = "layered",
) -> Response:
    ops = call.ops
    sent = _sent(body.network, body.parameters)
    net, params = sent.network, sent.params
    optimizer = convert.optimizer(body.optimizer)
    if body.learning_rate is not None:
        optimizer = replace(optimizer, learning_rate=body.learning_rate)
    state = convert.optimizer_state(net, optimizer, body.optimizer_state)
    loss, new_params, new_state = await ops.step(
        net, params, body.inputs, body.targets, optimizer, state
    )

    def build() -> StatelessTrainStepResponse:
        return StatelessTrainStepResponse.model_construct(
            loss=loss,
            parameters=convert.parameters_out(new_params, notation),
            optimizer_state=OptimizerStateIO.model_construct(
                step=new_state.step,
                slots={slot: convert.layered(values) for slot, values in new_state.slots.items()},
            ),
        )

    numbers = answer_numbers(net, step_work(body.inputs, optimizer, answered=True))
    return await answers.json_response(ops.store, numbers, build)


def _sent(network: NetworkSpec, parameters: ParametersIn) -> Sent:
    """The network and parameters of a request, converted (422 at ``/network`` or
    ``/parameters`` for what does not fit)."""
    net = convert.network(network)
    return Sent(net, convert.parameters(net, parameters))
