"""Forward, gradient and train-step: on a stored model, and stateless (network and parameters
sent with the request, nothing stored)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.client.call import (
    NPY,
    Call,
    Matrix,
    Obj,
    array,
    body,
    npy,
    params,
    path,
    precondition,
    schema,
)
from service.client.models import Notation
from service.client.types import (
    ForwardResponse,
    GradientResponse,
    StatelessTrainStepResponse,
    TrainStepResponse,
)


def forward(
    name: str, inputs: Matrix, *, trace: bool = False, notation: Notation = "layered"
) -> Call[ForwardResponse]:
    """``POST /v1/models/{name}/forward``: the outputs of the model's current version for a
    batch of ``inputs`` (rows x inputs); with ``trace`` every layer's net and out (and with
    ``notation="named"`` every node's)."""
    return Call(
        "POST",
        path("/v1/models/{}/forward", name),
        schema(ForwardResponse),
        params=params(notation=notation),
        json=body(inputs=inputs, trace=trace),
    )


def forward_array(name: str, inputs: NDArray[Any]) -> Call[NDArray[Any]]:
    """``POST /v1/models/{name}/forward`` with the inputs as an ``.npy`` body and the outputs
    as ``.npy`` (``application/x-npy`` both ways): rows x outputs, in the model's dtype. The
    fast way for large batches."""
    return Call(
        "POST",
        path("/v1/models/{}/forward", name),
        array,
        content=npy(np.asarray(inputs)),
        headers={"Content-Type": NPY, "Accept": NPY},
    )


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
    return Call(
        "POST",
        path("/v1/models/{}/gradient", name),
        schema(GradientResponse),
        params=params(notation=notation),
        json=body(inputs=inputs, targets=targets, deltas=deltas, trace=trace),
    )


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
    return Call(
        "POST",
        path("/v1/models/{}/train-step", name),
        schema(TrainStepResponse),
        json=body(inputs=inputs, targets=targets, learning_rate=learning_rate),
        headers=precondition(if_match),
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
    return Call(
        "POST",
        "/v1/forward",
        schema(ForwardResponse),
        params=params(notation=notation),
        json=body(network=network, parameters=parameters, inputs=inputs, trace=trace),
    )


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
    return Call(
        "POST",
        "/v1/gradient",
        schema(GradientResponse),
        params=params(notation=notation),
        json=body(
            network=network,
            parameters=parameters,
            inputs=inputs,
            targets=targets,
            deltas=deltas,
            trace=trace,
        ),
    )


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
    return Call(
        "POST",
        "/v1/train-step",
        schema(StatelessTrainStepResponse),
        params=params(notation=notation),
        json=body(
            network=network,
            parameters=parameters,
            inputs=inputs,
            targets=targets,
            learning_rate=learning_rate,
            optimizer=optimizer,
            optimizer_state=optimizer_state,
        ),
    )
