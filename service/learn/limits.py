"""How large a network may be to be drawn or walked through: past these sizes a drawing is a
smear of lines and a walkthrough a book, so the service answers 422 instead."""

from __future__ import annotations

from service.core import CoreError, Network

DIAGRAM_MAX_UNITS = 32  # per layer, inputs included
DIAGRAM_MAX_WEIGHTS = 1024
WALKTHROUGH_MAX_UNITS = 16  # per layer, inputs included
WALKTHROUGH_MAX_PARAMETERS = 100
# Above this many chain-rule paths a walkthrough writes a gradient in the delta form.
WALKTHROUGH_MAX_PATHS = 16


class TooLarge(CoreError):
    """The network is too large to be drawn or walked through."""


def check_drawable(network: Network) -> None:
    """Raise :class:`TooLarge` unless every layer has at most ``DIAGRAM_MAX_UNITS`` units and
    the network at most ``DIAGRAM_MAX_WEIGHTS`` weights."""
    _check(network, "drawn", DIAGRAM_MAX_UNITS, None, DIAGRAM_MAX_WEIGHTS)


def check_walkable(network: Network) -> None:
    """Raise :class:`TooLarge` unless every layer has at most ``WALKTHROUGH_MAX_UNITS`` units and
    the network at most ``WALKTHROUGH_MAX_PARAMETERS`` weights and biases."""
    _check(network, "walked through", WALKTHROUGH_MAX_UNITS, WALKTHROUGH_MAX_PARAMETERS, None)


def _check(
    network: Network, what: str, units: int, parameters: int | None, weights: int | None
) -> None:
    widest = max(network.inputs, *(layer.units for layer in network.layers))
    if widest > units:
        raise TooLarge(
            f"a network with {widest} units in a layer is too large to be {what}: at most "
            f"{units} units per layer (inputs included)",
            "",
        )
    if parameters is not None and network.parameter_count > parameters:
        raise TooLarge(
            f"a network with {network.parameter_count} weights and biases is too large to be "
            f"{what}: at most {parameters}",
            "",
        )
    n_weights = sum(n_in * n_out for n_in, n_out in network.shapes)
    if weights is not None and n_weights > weights:
        raise TooLarge(
            f"a network with {n_weights} weights is too large to be {what}: at most {weights}", ""
        )
