"""Forward, gradient, train-step and input gradients: on a stored model, and stateless (network
and parameters sent with the request, nothing stored); the gradient check of a stored model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import numpy as np
from numpy.typing import NDArray

from service.client.call import (
    NPY,
    NPZ,
    Call,
    Matrix,
    Obj,
    array,
    arrays,
    body,
    npy,
    npz,
    params,
    path,
    precondition,
    schema,
    upload,
)
from service.client.models import Notation
from service.client.types import (
    ForwardResponse,
    GradientCheckResponse,
    GradientResponse,
    InputGradientResponse,
    StatelessTrainStepResponse,
    TrainStepResponse,
)

T = TypeVar("T")


def forward(
    name: str, inputs: Matrix, *, trace: bool = False, notation: Notation = "layered"
) -> Call[ForwardResponse]:
    """``POST /v1/models/{name}/forward``: the outputs of the model's current version for a
    batch of ``inputs`` (rows x inputs); with ``trace`` every layer's net and out (and with
    ``notation="named"`` every node's)."""
    fields = {"inputs": inputs, "trace": trace}
    return _compute("forward", schema(ForwardResponse), name, fields, notation)


def forward_array(name: str, inputs: NDArray[Any]) -> Call[NDArray[Any]]:
    """``POST /v1/models/{name}/forward`` with the inputs as an ``.npy`` body and the outputs
    as ``.npy`` (``application/x-npy`` both ways): rows x outputs, in the model's dtype. The
    fast way for large batches."""
    where = path("/v1/models/{}/forward", name)
    return upload(where, array, npy(np.asarray(inputs)), NPY, accept=NPY)


def gradient(
    name: str,
    inputs: Matrix,
    targets: Matrix,
    *,
    deltas: bool = False,
    trace: bool = False,
    notation: Notation = "layered",
) -> Call[GradientResponse]:
    """``POST /v1/models/{name}/gradient``: the mean loss over the batch and dE/dW, dE/db of
    every layer by backpropagation; with ``deltas`` dE/dnet, with ``trace`` the forward trace,
    with ``notation="named"`` the seed's names (w1.., b1.., n3..)."""
    fields = {"inputs": inputs, "targets": targets, "deltas": deltas, "trace": trace}
    return _compute("gradient", schema(GradientResponse), name, fields, notation)


def input_gradient(
    name: str,
    inputs: Matrix,
    targets: Matrix,
    *,
    jacobian: bool = False,
    notation: Notation = "layered",
) -> Call[InputGradientResponse]:
    """``POST /v1/models/{name}/input-gradient``: the mean loss and its derivative with respect
    to every input of every row (row r is d(mean loss)/dx_r); with ``jacobian`` also dy_k/dx_i
    per row; with ``notation="named"`` keyed by node (n1, ...)."""
    fields = {"inputs": inputs, "targets": targets, "jacobian": jacobian}
    return _compute("input-gradient", schema(InputGradientResponse), name, fields, notation)


def input_gradient_arrays(
    name: str, inputs: NDArray[Any], targets: NDArray[Any], *, jacobian: bool = False
) -> Call[tuple[NDArray[Any], ...]]:
    """``POST /v1/models/{name}/input-gradient`` with the batch as an ``.npz`` body and the
    answer as ``.npz`` (``application/x-npz`` both ways): ``(loss, input_gradients)`` (a 0-d
    array, rows x inputs), with ``jacobian`` also the Jacobian (rows x outputs x inputs), in
    the model's dtype. The fast way for large batches."""
    names = ("loss", "input_gradients", "jacobian") if jacobian else ("loss", "input_gradients")
    where, query = path("/v1/models/{}/input-gradient", name), params(jacobian=jacobian or None)
    data = npz(np.asarray(inputs), np.asarray(targets))
    return upload(where, arrays(*names), data, NPZ, query, accept=NPZ)


def gradient_check(
    name: str,
    inputs: Matrix,
    targets: Matrix,
    *,
    epsilon: float | None = None,
    sample: int | None = None,
) -> Call[GradientCheckResponse]:
    """``POST /v1/models/{name}/gradient-check``: every parameter's dE/dp (or ``sample`` of
    them, spread evenly) by backpropagation beside the central difference with step
    ``epsilon`` (the server's default, 1e-6, when None), and their relative errors."""
    fields = {"inputs": inputs, "targets": targets, "epsilon": epsilon, "sample": sample}
    return _compute("gradient-check", schema(GradientCheckResponse), name, fields)


def train_step(
    name: str,
    inputs: Matrix,
    targets: Matrix,
    *,
    learning_rate: float | None = None,
    if_match: int | None = None,
) -> Call[TrainStepResponse]:
    """``POST /v1/models/{name}/train-step``: one step of the model's optimizer on the batch
    (``learning_rate`` overrides the optimizer's), stored as a new version; ``loss`` is the
    loss before the step. With ``if_match`` only if the model is still at that version."""
    fields = {"inputs": inputs, "targets": targets, "learning_rate": learning_rate}
    return _compute(
        "train-step", schema(TrainStepResponse), name, fields, headers=precondition(if_match)
    )


def forward_stateless(
    network: Obj,
    parameters: Obj,
    inputs: Matrix,
    *,
    trace: bool = False,
    notation: Notation = "layered",
) -> Call[ForwardResponse]:
    """``POST /v1/forward``: the forward pass of ``network`` with ``parameters`` (either
    notation), nothing stored."""
    fields = {"inputs": inputs, "trace": trace}
    return _compute("forward", schema(ForwardResponse), (network, parameters), fields, notation)


def gradient_stateless(
    network: Obj,
    parameters: Obj,
    inputs: Matrix,
    targets: Matrix,
    *,
    deltas: bool = False,
    trace: bool = False,
    notation: Notation = "layered",
) -> Call[GradientResponse]:
    """``POST /v1/gradient``: loss and gradient of ``network`` with ``parameters``, nothing
    stored."""
    fields = {"inputs": inputs, "targets": targets, "deltas": deltas, "trace": trace}
    return _compute("gradient", schema(GradientResponse), (network, parameters), fields, notation)


def input_gradient_stateless(
    network: Obj,
    parameters: Obj,
    inputs: Matrix,
    targets: Matrix,
    *,
    jacobian: bool = False,
    notation: Notation = "layered",
) -> Call[InputGradientResponse]:
    """``POST /v1/input-gradient``: the input gradients (and Jacobian) of ``network`` with
    ``parameters``, nothing stored."""
    fields = {"inputs": inputs, "targets": targets, "jacobian": jacobian}
    model = (network, parameters)
    return _compute("input-gradient", schema(InputGradientResponse), model, fields, notation)


def train_step_stateless(
    network: Obj,
    parameters: Obj,
    inputs: Matrix,
    targets: Matrix,
    *,
    learning_rate: float | None = None,
    optimizer: Obj | None = None,
    optimizer_state: Obj | None = None,
    notation: Notation = "layered",
) -> Call[StatelessTrainStepResponse]:
    """``POST /v1/train-step``: one optimizer step (plain SGD unless ``optimizer`` says
    otherwise) on ``network`` with ``parameters``, nothing stored: the loss before the step,
    the new parameters and the ``optimizer_state`` to send with the next step."""
    fields: dict[str, Any] = {"inputs": inputs, "targets": targets, "learning_rate": learning_rate}
    fields |= {"optimizer": optimizer, "optimizer_state": optimizer_state}
    model = (network, parameters)
    return _compute("train-step", schema(StatelessTrainStepResponse), model, fields, notation)


def _compute(
    operation: str,
    parse: Callable[[httpx.Response], T],
    model: str | tuple[Obj, Obj],
    fields: dict[str, Any],
    notation: Notation | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> Call[T]:
    """``POST /v1/models/{name}/{operation}`` on the stored model ``model`` names, or
    ``POST /v1/{operation}`` on ``model`` sent as ``(network, parameters)``; the JSON body
    holds the network and parameters (stateless) and then ``fields``."""
    if isinstance(model, str):
        where, sent = path("/v1/models/{}/" + operation, model), {}
    else:
        where, sent = "/v1/" + operation, {"network": model[0], "parameters": model[1]}
    return Call(
        "POST",
        where,
        parse,
        params=params(notation=notation),
        json=body(**sent, **fields),
        headers=headers or {},
    )
