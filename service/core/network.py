"""The description of a feed-forward network: its inputs, layers and loss."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, get_args

import numpy as np

from service.core.errors import InvalidNetwork

Activation = Literal["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"]
Loss = Literal["half_squared_error", "mean_squared_error", "binary_cross_entropy", "cross_entropy"]
DType = Literal["float64", "float32"]

ACTIVATIONS: tuple[Activation, ...] = get_args(Activation)
LOSSES: tuple[Loss, ...] = get_args(Loss)
DTYPES: tuple[DType, ...] = get_args(DType)


@dataclass(frozen=True)
class Layer:
    """A dense layer of ``units`` units, each ``out = activation(net)``."""

    units: int
    activation: Activation
    negative_slope: float = 0.01  # leaky_relu only


@dataclass(frozen=True)
class Network:
    """``inputs`` inputs, then ``layers`` in order; the last layer's outputs go to ``loss``.

    Construction validates the description and raises :class:`InvalidNetwork` naming the
    offending field.
    """

    inputs: int
    layers: tuple[Layer, ...]
    loss: Loss
    dtype: DType = "float64"

    def __post_init__(self) -> None:
        if isinstance(self.inputs, bool) or not isinstance(self.inputs, int) or self.inputs < 1:
            raise InvalidNetwork(f"inputs must be an integer >= 1, got {self.inputs!r}", "/inputs")
        if len(self.layers) == 0:
            raise InvalidNetwork("a network needs at least one layer", "/layers")
        for i, layer in enumerate(self.layers):
            _check_layer(layer, i, last=i == len(self.layers) - 1)
        if self.loss not in LOSSES:
            raise InvalidNetwork(
                f"unknown loss {self.loss!r}; expected one of {', '.join(LOSSES)}", "/loss"
            )
        if self.dtype not in DTYPES:
            raise InvalidNetwork(
                f"unknown dtype {self.dtype!r}; expected one of {', '.join(DTYPES)}", "/dtype"
            )
        _check_loss_fits_output(self)

    # Derived values are cached: the network is immutable, and they are read on every request.
    @cached_property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """``(n_in, n_out)`` of every layer's weight matrix."""
        sizes = [self.inputs, *(layer.units for layer in self.layers)]
        return tuple(itertools.pairwise(sizes))

    @property
    def outputs(self) -> int:
        return self.layers[-1].units

    @cached_property
    def parameter_count(self) -> int:
        return sum(n_in * n_out + n_out for n_in, n_out in self.shapes)

    @cached_property
    def unit_count(self) -> int:
        """Units in all layers (the inputs not counted)."""
        return sum(layer.units for layer in self.layers)

    @cached_property
    def widest(self) -> int:
        """The most units of a layer, the inputs counted as one."""
        return max(self.inputs, *(layer.units for layer in self.layers))

    @cached_property
    def np_dtype(self) -> np.dtype[np.floating]:
        return np.dtype(self.dtype)


def _check_layer(layer: Layer, i: int, *, last: bool) -> None:
    where = f"/layers/{i}"
    units = layer.units
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise InvalidNetwork(
            f"layer {i}: units must be an integer >= 1, got {units!r}", f"{where}/units"
        )
    if layer.activation not in ACTIVATIONS:
        raise InvalidNetwork(
            f"layer {i}: unknown activation {layer.activation!r}; "
            f"expected one of {', '.join(ACTIVATIONS)}",
            f"{where}/activation",
        )
    if layer.activation == "softmax" and not last:
        raise InvalidNetwork(
            f"layer {i}: softmax is allowed in the last layer only", f"{where}/activation"
        )
    slope = layer.negative_slope
    if not isinstance(slope, (int, float)) or isinstance(slope, bool) or not math.isfinite(slope):
        raise InvalidNetwork(
            f"layer {i}: negative_slope must be a finite number", f"{where}/negative_slope"
        )


def _check_loss_fits_output(network: Network) -> None:
    last = network.layers[-1]
    where = f"/layers/{len(network.layers) - 1}/activation"
    if network.loss == "cross_entropy" and last.activation != "softmax":
        raise InvalidNetwork(
            "loss cross_entropy needs a softmax output layer, "
            f"but the last layer's activation is {last.activation}",
            where,
        )
    if network.loss == "binary_cross_entropy" and last.activation != "sigmoid":
        raise InvalidNetwork(
            "loss binary_cross_entropy needs a sigmoid output layer, "
            f"but the last layer's activation is {last.activation}",
            where,
        )
    if last.activation == "softmax" and last.units < 2:
        raise InvalidNetwork("a softmax output layer needs at least 2 units", where)
