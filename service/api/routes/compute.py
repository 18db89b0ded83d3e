"""Forward, gradient, train-step, input gradients and the gradient check on a stored model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Body, Query, Request, Response
from numpy.typing import ArrayLike, NDArray
from pydantic_core import to_json

from service.api import answers, binary, convert, endpoint, examples
from service.api.convert import Notation
from service.api.deps import (
    CheckedIfMatch,
    IfMatchHeader,
    NamePath,
    NotationQuery,
    OpsDep,
    SettingsDep,
    etag,
)
from service.api.endpoint import CallDep
from service.api.problems import problem_responses
from service.api.schemas.compute import (
    ForwardRequest,
    ForwardResponse,
    GradientCheckRequest,
    GradientCheckResponse,
    GradientRequest,
    GradientResponse,
    InputGradientRequest,
    InputGradientResponse,
    TrainStepRequest,
    TrainStepResponse,
)
from service.core import Network, Params
from service.operations import Operations
from service.operations.compute import (
    forward_work,
    gradient_check_work,
    gradient_work,
    input_gradient_work,
)
from service.operations.cost import answer_numbers
from service.settings import Settings

router = APIRouter(prefix="/v1/models", tags=["compute"])

TraceQuery = Annotated[
    bool, Query(description="With an .npy or .npz body: also return every layer's net and out.")
]
DeltasQuery = Annotated[bool, Query(description="With an .npz body: also return dE/dnet.")]
JacobianQuery = Annotated[
    bool, Query(description="With an .npz body: also return the Jacobian dy_k/dx_i.")
]
LearningRateQuery = Annotated[
    float | None,
    Query(gt=0, allow_inf_nan=False, description="With an .npz body: the step's learning rate."),
]

# The JSON routes document the binary bodies' query parameters (openapi_extra, where they
# apply to the binary bodies only), so they take them too, as text, to refuse any value: with
# a JSON body the body's own field would override them silently.
HiddenTrace = Annotated[str | None, Query(alias="trace", include_in_schema=False)]
HiddenDeltas = Annotated[str | None, Query(alias="deltas", include_in_schema=False)]
HiddenRate = Annotated[str | None, Query(alias="learning_rate", include_in_schema=False)]
HiddenJacobian = Annotated[str | None, Query(alias="jacobian", include_in_schema=False)]


class Subject(Protocol):
    """What a computation's answer is of: a stored model at its version (a
    :class:`~service.store.LoadedModel`, the version in the answer and its ETag), or a network
    and parameters sent inline (:class:`Sent`, no version)."""

    @property
    def network(self) -> Network: ...
    @property
    def params(self) -> Params: ...
    @property
    def version(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Sent:
    """A network and its parameters sent with the request (the stateless routes)."""

    network: Network
    params: Params
    version: None = None


# Binary variants, chosen by Content-Type before the JSON routes below (see service.api.binary).


@binary.post(
    router,
    "/{name}/forward",
    binary.NPY,
    response_model=ForwardResponse,
    response_model_exclude_none=True,
)
async def forward_model_npy(
    name: NamePath,
    request: Request,
    ops: OpsDep,
    settings: SettingsDep,
    trace: TraceQuery = False,
    notation: NotationQuery = "layered",
) -> Response:
    as_npy = binary.wants_npy(request.headers, trace=trace)
    model = await ops.store.load(name)
    X = await answers.decoded(
        ops.store, request, partial(binary.inputs_npy, max_rows=settings.max_batch_rows)
    )
    return await forward_answer(ops, name, model, X, trace, notation, as_npy)


async def forward_answer(
    ops: Operations,
    name: str | None,
    model: Subject,
    X: ArrayLike,
    trace: bool,
    notation: Notation,
    as_npy: bool,
) -> Response:
    """The forward routes' answer: the outputs as JSON or ``.npy``, with the trace if asked."""
    network, params, version = model.network, model.params, model.version
    headers = etag(version) if version is not None else None
    if as_npy:
        outputs = await ops.outputs(network, params, X, binary=True)
        return binary.npy_response(outputs, headers)
    if not trace:
        outputs = await ops.outputs(network, params, X)
        stored = {"model": name, "version": version} if name is not None else {}

        def build() -> dict[str, Any]:  # a ForwardResponse's fields, without its nulls
            return {**stored, "outputs": convert.matrix(outputs)}

        return await answers.json_response(ops.store, outputs.size, build, headers)
    named = notation == "named"
    numbers = answer_numbers(network, forward_work(X, trace=trace, named=named))
    layers = await ops.trace(network, params, X, named=named)

    def build_traced() -> ForwardResponse:
        return ForwardResponse.model_construct(
            model=name,
            version=version,
            outputs=convert.matrix(layers[-1].out),
            trace=convert.trace_out(network, layers, notation),
        )

    return await answers.json_response(ops.store, numbers, build_traced, headers)


@binary.post(router, "/{name}/gradient", binary.NPZ, response_model=GradientResponse)
async def gradient_model_npz(
    name: NamePath,
    request: Request,
    ops: OpsDep,
    settings: SettingsDep,
    deltas: DeltasQuery = False,
    trace: TraceQuery = False,
    notation: NotationQuery = "layered",
) -> Response:
    as_npz = binary.wants_npz(request.headers, trace=trace)
    model = await ops.store.load(name)
    X, T = await answers.decoded(ops.store, request, _npz_decoder(settings))
    return await gradient_answer(ops, name, model, X, T, notation, deltas, trace, as_npz)


async def gradient_answer(
    ops: Operations,
    name: str | None,
    model: Subject,
    X: ArrayLike,
    T: ArrayLike,
    notation: Notation,
    deltas: bool,
    trace: bool,
    as_npz: bool,
) -> Response:
    """The gradient routes' answer: JSON (serialised off the loop when large) or ``.npz``."""
    network, version = model.network, model.version
    result = await ops.gradient(
        network,
        model.params,
        X,
        T,
        deltas=deltas,
        trace=trace,
        named=notation == "named",
        binary=as_npz,
    )
    numbers = answer_numbers(network, gradient_work(X, deltas=deltas, trace=trace))
    headers = etag(version) if version is not None else None
    if as_npz:
        render = partial(
            binary.gradient_npz, result.loss, result.gradients, result.deltas if deltas else None
        )
        return await answers.binary_response(ops.store, numbers, render, binary.NPZ, headers)

    def build() -> GradientResponse:
        return GradientResponse.model_construct(
            model=name,
            version=version,
            loss=result.loss,
            gradients=convert.parameters_out(result.gradients, notation),
            deltas=convert.deltas_out(network, result.deltas, notation) if deltas else None,
            trace=convert.trace_out(network, result.trace, notation) if trace else None,
        )

    return await answers.json_response(ops.store, numbers, build, headers)


@binary.post(router, "/{name}/train-step", binary.NPZ)
async def train_step_model_npz(
    name: NamePath,
    request: Request,
    ops: OpsDep,
    settings: SettingsDep,
    expected: CheckedIfMatch,
    learning_rate: LearningRateQuery = None,
) -> Response:
    X, T = await answers.decoded(ops.store, request, _npz_decoder(settings))
    return await train_step_answer(ops, name, X, T, learning_rate, expected)


async def train_step_answer(
    ops: Operations,
    name: str,
    X: ArrayLike,
    T: ArrayLike,
    learning_rate: float | None,
    expected: int | None,
) -> Response:
    """The train-step routes' answer: the new version and the loss before the step."""
    outcome = await ops.train_step(name, X, T, learning_rate, expected)
    version = outcome.record.version
    answer = {"model": name, "version": version, "loss": float(outcome.loss)}  # TrainStepResponse
    return answers.JSONAnswer(to_json(answer), etag(version))


@binary.post(router, "/{name}/input-gradient", binary.NPZ, response_model=InputGradientResponse)
async def input_gradient_model_npz(
    name: NamePath,
    request: Request,
    ops: OpsDep,
    settings: SettingsDep,
    jacobian: JacobianQuery = False,
    notation: NotationQuery = "layered",
) -> Response:
    as_npz = binary.wants_npz(request.headers)
    model = await ops.store.load(name)
    X, T = await answers.decoded(ops.store, request, _npz_decoder(settings))
    return await input_gradient_answer(ops, name, model, X, T, jacobian, notation, as_npz)


async def input_gradient_answer(
    ops: Operations,
    name: str | None,
    model: Subject,
    X: ArrayLike,
    T: ArrayLike,
    jacobian: bool,
    notation: Notation,
    as_npz: bool,
) -> Response:
    """The input-gradient routes' answer: JSON (serialised off the loop when large) or
    ``.npz``."""
    network, version, named = model.network, model.version, notation == "named"
    result = await ops.input_gradient(
        network, model.params, X, T, jacobian=jacobian, named=named, binary=as_npz
    )
    numbers = answer_numbers(network, input_gradient_work(X, jacobian=jacobian, named=named))
    headers = etag(version) if version is not None else None
    if as_npz:
        render = partial(binary.input_gradient_npz, result.loss, result.gradients, result.jacobian)
        return await answers.binary_response(ops.store, numbers, render, binary.NPZ, headers)

    def build() -> InputGradientResponse:
        J = result.jacobian
        return InputGradientResponse.model_construct(
            model=name,
            version=version,
            loss=result.loss,
            input_gradients=convert.input_gradients_out(network, result.gradients, notation),
            jacobian=convert.jacobian_out(network, J, notation) if J is not None else None,
        )

    return await answers.json_response(ops.store, numbers, build, headers)


def _npz_decoder(settings: Settings) -> Callable[[bytes], tuple[NDArray[Any], NDArray[Any]]]:
    return partial(
        binary.batch_npz, max_bytes=settings.max_body_bytes, max_rows=settings.max_batch_rows
    )


NPZ_BODY = binary.binary_body(
    (binary.NPZ,),
    "JSON, or for large batches an .npz file (`application/x-npz`) holding the arrays "
    "`inputs` and `targets`, with the options as query parameters.",
)


@endpoint.post(
    router,
    "/{name}/forward",
    summary="Forward pass on a stored model",
    description="The outputs of the model's current version for a batch of inputs (rows x "
    "inputs), and with `trace` every layer's net input and output. With `?notation=named` the "
    "trace also lists every node n3.. by name.",
    response_model=ForwardResponse,
    response_model_exclude_none=True,
    responses={**problem_responses(400, 404, 413, 422), **binary.NPY_RESPONSES},
    openapi_extra={
        **binary.binary_body(
            (binary.NPY,),
            "JSON, or for large batches the inputs array as an .npy file "
            "(`application/x-npy`; integers and floats, no pickle), with `trace` as a query "
            "parameter.",
        ),
        "parameters": [binary.TRACE_PARAMETER],
    },
)
async def forward_model(
    name: NamePath,
    body: Annotated[ForwardRequest, Body(openapi_examples=examples.FORWARD)],
    call: CallDep,
    notation: NotationQuery = "layered",
    _trace: HiddenTrace = None,
) -> Response:
    binary.refuse_with_json("trace", _trace, ".npy bodies", 'a JSON body says it in "trace"')
    as_npy = binary.wants_npy(call.headers, trace=body.trace)
    model = await call.ops.store.load(name)
    return await forward_answer(call.ops, name, model, body.inputs, body.trace, notation, as_npy)


@endpoint.post(
    router,
    "/{name}/gradient",
    summary="Loss and gradient by backpropagation",
    description="The mean batch loss and dE/dW, dE/db of every layer at the model's current "
    "version; with `deltas` the dE/dnet of every layer, with `trace` the forward trace, and "
    "with `?notation=named` the seed's names (w1.., b1.., n3..).",
    response_model=GradientResponse,
    responses={**problem_responses(400, 404, 413, 422), **binary.NPZ_RESPONSES},
    openapi_extra={
        **NPZ_BODY,
        "parameters": [binary.TRACE_PARAMETER, binary.DELTAS_PARAMETER],
    },
)
async def gradient_model(
    name: NamePath,
    body: Annotated[GradientRequest, Body(openapi_examples=examples.GRADIENT)],
    call: CallDep,
    notation: NotationQuery = "layered",
    _trace: HiddenTrace = None,
    _deltas: HiddenDeltas = None,
) -> Response:
    binary.refuse_with_json("trace", _trace, ".npz bodies", 'a JSON body says it in "trace"')
    binary.refuse_with_json("deltas", _deltas, ".npz bodies", 'a JSON body says it in "deltas"')
    as_npz = binary.wants_npz(call.headers, trace=body.trace)
    model = await call.ops.store.load(name)
    return await gradient_answer(
        call.ops, name, model, body.inputs, body.targets, notation, body.deltas, body.trace, as_npz
    )


@endpoint.post(
    router,
    "/{name}/train-step",
    summary="One gradient-descent step",
    description="Compute the gradient on the batch and update the parameters with the model's "
    "optimizer (plain SGD, w <- w - learning_rate * dE/dw, unless the model has another), "
    "storing them as version + 1. Answers once the new version is durable. `loss` is the loss "
    "before the step. Concurrent steps on one model are serialised; none is lost. A step whose "
    "result would not be finite commits nothing and answers 422.",
    response_model=TrainStepResponse,
    response_model_exclude_none=True,
    responses=problem_responses(400, 404, 409, 412, 413, 422, 507),
    openapi_extra={**NPZ_BODY, "parameters": [binary.LEARNING_RATE_PARAMETER]},
)
async def train_step_model(
    name: NamePath,
    body: Annotated[TrainStepRequest, Body(openapi_examples=examples.TRAIN_STEP)],
    call: CallDep,
    _if_match: IfMatchHeader = None,  # checked before the body is read: call.expected_version
    _learning_rate: HiddenRate = None,
) -> Response:
    binary.refuse_with_json(
        "learning_rate", _learning_rate, ".npz bodies", 'a JSON body says it in "learning_rate"'
    )
    return await train_step_answer(
        call.ops, name, body.inputs, body.targets, body.learning_rate, call.expected_version
    )


INPUT_GRADIENT_DESCRIPTION = (
    "The derivative of the mean batch loss with respect to every input of every row, by "
    "backpropagation carried to the inputs (dE/dx = delta_0 W_0^T, with delta_0 the deltas of "
    "the first layer). The loss is the batch mean, so row r of `input_gradients` is "
    "d(mean loss)/dx_r: the per-sample loss's derivative divided by the rows. With `jacobian`, "
    "also dy_k/dx_i of every output k and input i, per row (one backward pass per output). "
    "With `?notation=named` the inputs are named as the seed names them (n1, n2, ...) and the "
    "outputs by their nodes (n9 in the seed): `input_gradients` is one object per row, "
    '`[{"n1": ..., "n2": ...}]`, and `jacobian` one per row keyed by output node, then input '
    'node, `[{"n9": {"n1": ..., "n2": ...}}]`. Large batches are computed in blocks of rows; '
    "a Jacobian whose answer would pass BACKPROP_MAX_ANSWER_BYTES is refused (413) saying to "
    "send fewer rows."
)


@endpoint.post(
    router,
    "/{name}/input-gradient",
    summary="Gradient of the loss with respect to the inputs",
    description=INPUT_GRADIENT_DESCRIPTION,
    response_model=InputGradientResponse,
    response_model_exclude_none=True,
    responses={**problem_responses(400, 404, 413, 422), **binary.INPUT_GRADIENT_NPZ_RESPONSES},
    openapi_extra={**NPZ_BODY, "parameters": [binary.JACOBIAN_PARAMETER]},
)
async def input_gradient_model(
    name: NamePath,
    body: Annotated[InputGradientRequest, Body(openapi_examples=examples.INPUT_GRADIENT)],
    call: CallDep,
    notation: NotationQuery = "layered",
    _jacobian: HiddenJacobian = None,
) -> Response:
    binary.refuse_with_json(
        "jacobian", _jacobian, ".npz bodies", 'a JSON body says it in "jacobian"'
    )
    as_npz = binary.wants_npz(call.headers)
    model = await call.ops.store.load(name)
    return await input_gradient_answer(
        call.ops, name, model, body.inputs, body.targets, body.jacobian, notation, as_npz
    )


@endpoint.post(
    router,
    "/{name}/gradient-check",
    summary="Check backpropagation against finite differences",
    description="For every parameter p (or `sample` of them), dE/dp by backpropagation beside "
    "the central difference (E(p + epsilon) - E(p - epsilon)) / (2 epsilon) of the mean batch "
    "loss, and their relative error |backprop - numeric| / max(|backprop|, |numeric|) (0 when "
    "both are 0, at most 2). `backprop` is the gradient endpoint's value. Names are the named "
    "notation's (w1.., b1..), which names every network; `layered_name` gives the same place "
    "as `W{l}[i][j]` / `b{l}[j]` with layers numbered from 0, as in `layers`.\n\n"
    "The default epsilon, 1e-6, balances the difference's truncation error (about epsilon^2) "
    "against its rounding error (about 1e-16 / epsilon): both near 1e-10 of a well-scaled "
    "loss, so a correct gradient shows relative errors around 1e-9 and a wrong one far more. "
    "The differences are computed in float64 for every network: a float32 network's "
    "parameters and inputs are widened exactly (float32 cannot resolve such a step), while "
    "`backprop` stays its float32 gradient, so its rounding (about 1e-7 relative) shows in "
    "the errors. A ReLU whose net input is within epsilon of 0 has no derivative there, and "
    "shows as a large error; so does a gradient that is 0 where the loss differences are "
    "rounding noise.\n\n"
    "`sample` checks that many parameters, spread evenly over the named order: those at the "
    "indices floor((2k + 1) P / (2 sample)), k = 0..sample-1, of the P parameters; always the "
    "same ones. Each parameter checked costs two forward passes of the batch: a check that "
    "would pass the compute budget (422) or the answer or memory limits (413) says to pass "
    "`sample`.",
    response_model=GradientCheckResponse,
    responses=problem_responses(400, 404, 413, 422),
)
async def gradient_check_model(
    name: NamePath,
    body: Annotated[GradientCheckRequest, Body(openapi_examples=examples.GRADIENT_CHECK)],
    call: CallDep,
) -> Response:
    model = await call.ops.store.load(name)
    check = await call.ops.gradient_check(
        model.network, model.params, body.inputs, body.targets, body.epsilon, body.sample
    )
    numbers = answer_numbers(
        model.network, gradient_check_work(model.network, body.inputs, body.sample)
    )

    def build() -> GradientCheckResponse:
        return convert.gradient_check_out(name, model.version, body.epsilon, check)

    return await answers.json_response(call.ops.store, numbers, build, etag(model.version))
