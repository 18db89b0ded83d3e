"""Network descriptions, parameters, initialisation and optimizers."""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    RootModel,
    SerializerFunctionWrapHandler,
    Tag,
    model_serializer,
    model_validator,
)

from service.api.schemas.common import Body, Finite, Out, at_most
from service.settings import current_limits

Activation = Literal["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"]
Loss = Literal["half_squared_error", "mean_squared_error", "binary_cross_entropy", "cross_entropy"]


class LayerSpec(Body):
    """A dense layer of ``units`` units with one activation."""

    units: Annotated[int, Field(strict=True, ge=1, examples=[3]), *at_most("max_units")]
    activation: Activation = Field(examples=["relu"])
    negative_slope: float = Field(
        0.01,
        allow_inf_nan=False,
        description="Slope below zero of leaky_relu; ignored by other activations.",
    )

    @model_serializer(mode="wrap")
    def _slope_of_leaky_relu_only(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if self.activation != "leaky_relu" and isinstance(data, dict):
            data.pop("negative_slope", None)
        return data


class NetworkSpec(Body):
    """A feed-forward network: inputs, layers in order, a loss over the last layer's outputs."""

    inputs: Annotated[int, Field(strict=True, ge=1, examples=[2]), *at_most("max_units")]
    layers: Annotated[list[LayerSpec], Field(min_length=1), *at_most("max_layers")]
    loss: Loss = Field(examples=["half_squared_error"])
    dtype: Literal["float64", "float32"] = "float64"

    @model_validator(mode="after")
    def _parameter_limit(self) -> NetworkSpec:
        sizes = [self.inputs, *(layer.units for layer in self.layers)]
        count = sum(a * b + b for a, b in itertools.pairwise(sizes))
        limit = current_limits().max_parameters
        if count > limit:
            raise ValueError(f"the network has {count} parameters; the limit is {limit}")
        return self


class LayerParameters(Body):
    """``weights[i][j]`` connects input ``i`` of the layer to unit ``j`` (inputs x units)."""

    weights: list[list[Finite]]
    biases: list[Finite]


class LayeredParameters(Body):
    """Parameters layer by layer."""

    layers: Annotated[list[LayerParameters], Field(min_length=1), *at_most("max_layers")]


class NamedParameters(RootModel[dict[str, Finite]]):
    """The seed's named notation: ``{"w1": ..., "wN": ..., "b1": ..., "bM": ...}``."""

    model_config = {"allow_inf_nan": False}


def _notation(value: Any) -> str:
    if isinstance(value, dict):
        return "layered" if "layers" in value else "named"
    return "layered" if isinstance(value, LayeredParameters) else "named"


ParametersIn = Annotated[
    Annotated[LayeredParameters, Tag("layered")] | Annotated[NamedParameters, Tag("named")],
    Discriminator(_notation),
]


class InitSpec(Body):
    """How to draw initial parameters; the same seed gives bit-identical parameters."""

    scheme: Literal[
        "zeros", "uniform", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal"
    ] = "xavier_uniform"
    seed: int | None = Field(
        None, ge=0, le=2**63 - 1, description="Drawn at random (and reported) when absent."
    )


class InitPublic(Out):
    scheme: str
    seed: int


class SGDSpec(Body):
    """Gradient descent: ``w <- w - learning_rate * dE/dw``, optionally with (Nesterov)
    momentum and L2 weight decay on the weights."""

    kind: Literal["sgd"] = "sgd"
    learning_rate: float = Field(0.01, gt=0, allow_inf_nan=False)
    momentum: float = Field(0.0, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SGDSpec:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs a momentum > 0")
        return self


class AdamSpec(Body):
    """Adam with bias correction, optionally with L2 weight decay on the weights."""

    kind: Literal["adam"]
    learning_rate: float = Field(0.001, gt=0, allow_inf_nan=False)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    eps: float = Field(1e-8, gt=0, allow_inf_nan=False)
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False)


OptimizerSpec = Annotated[SGDSpec | AdamSpec, Field(discriminator="kind")]
