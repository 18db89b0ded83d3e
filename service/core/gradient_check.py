"""The gradient check: backpropagation against central finite differences of the loss.

For a parameter ``p`` and the mean batch loss ``E``::

    numeric  = (E(p + eps) - E(p - eps)) / (2 eps)
    relative = |backprop - numeric| / max(|backprop|, |numeric|)      (0 when both are 0)

The relative error lies in [0, 2] (2 for opposite signs). The truncation error of the central
difference is ``eps^2 / 6 E'''``, its rounding error about ``ulp(E) / eps``: at the default
``eps = 1e-6`` both are near 1e-10 of a well-scaled loss, the best a float64 difference gets
(the optimum is near the cube root of float64's 2.2e-16, 6e-6), far below the errors a wrong
backpropagation makes. A ReLU whose net input lies within ``eps`` of 0 has no derivative
there: the difference straddles the kink and the check reports it as a large error.

The differences are computed in float64 whatever the network's dtype: float32 cannot resolve a
step of 1e-6 on a parameter near 1 (its spacing there is 1.2e-7) nor a loss difference below
1e-7 of the loss. A float32 network's parameters and batch are widened exactly, so the check
measures the function the service computes; ``backprop`` is the network's own gradient, in its
dtype, as the gradient operation answers it, so for float32 its rounding (about 1e-7 relative,
more in deep or ill-conditioned networks) shows in the relative error.

Perturbing a parameter of layer ``l`` changes layers ``l`` onward only: the loss is recomputed
from the unperturbed input ``a_{l-1}`` of that layer. ``sample`` checks ``m`` parameters spread
evenly over the order of the named notation (w1..wN, then b1..bM): those at the indices
``floor((2k + 1) P / (2m))``, k = 0..m-1, of the ``P``; always the same, all distinct.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from service.core import losses
from service.core.errors import CoreError, NumericOverflow
from service.core.named import Location, location_of
from service.core.network import Network
from service.core.parameters import FloatArray, LayerParams, Params
from service.core.propagation import checked_pair, forward_unchecked, gradient

DEFAULT_EPSILON = 1e-6


class InvalidOption(CoreError):
    """An option of the check out of its range (``epsilon`` <= 0 or not finite, ``sample``
    < 1)."""


@dataclass(frozen=True)
class ParameterCheck:
    """One parameter: its name (``w7``), its place, dE/dp by backpropagation and by central
    differences, and their relative error."""

    name: str
    location: Location
    backprop: float
    numeric: float
    relative_error: float


@dataclass(frozen=True)
class GradientCheck:
    """The mean batch loss and the check of every parameter asked for, in the named order."""

    loss: float
    parameters: tuple[ParameterCheck, ...]

    @property
    def max_relative_error(self) -> float:
        return max((p.relative_error for p in self.parameters), default=0.0)


def sampled(count: int, sample: int | None) -> list[int]:
    """The indices of the parameters checked: all ``count``, or ``sample`` of them spread evenly
    (``floor((2k + 1) count / (2 sample))``); all when ``sample >= count``."""
    if sample is None or sample >= count:
        return list(range(count))
    return [(2 * k + 1) * count // (2 * sample) for k in range(sample)]


def checked_count(network: Network, sample: int | None) -> int:
    """How many parameters a check with ``sample`` checks."""
    P = network.parameter_count
    return P if sample is None else min(sample, P)


def relative_error(backprop: float, numeric: float) -> float:
    """``|backprop - numeric| / max(|backprop|, |numeric|)``, 0 when both are 0 (written so that
    nothing overflows for values near float64's largest)."""
    scale = max(abs(backprop), abs(numeric))
    if scale == 0:
        return 0.0
    return abs(backprop / scale - numeric / scale)


def gradient_check(
    network: Network,
    params: Params,
    X: ArrayLike,
    T: ArrayLike,
    epsilon: float = DEFAULT_EPSILON,
    sample: int | None = None,
) -> GradientCheck:
    """Every parameter's dE/dp (or ``sample`` of them) by backpropagation and by central
    differences of the mean loss of ``(X, T)`` with step ``epsilon``.

    Raises :class:`InvalidOption` (pointer ``/epsilon`` or ``/sample``), what
    :func:`~service.core.gradient` raises, and :class:`NumericOverflow` (``/epsilon``) when a
    perturbed loss would not be finite.
    """
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise InvalidOption(f"epsilon must be a finite number > 0, got {epsilon!r}", "/epsilon")
    if sample is not None and sample < 1:
        raise InvalidOption(f"sample must be at least 1, got {sample}", "/sample")
    a0, T_arr = checked_pair(network, X, T)
    result = gradient(network, params, a0, T_arr)
    wide = replace(network, dtype="float64") if network.dtype != "float64" else network
    # Copies (astype copies): each parameter is perturbed in place, then restored.
    p64 = tuple(LayerParams(p.W.astype(np.float64), p.b.astype(np.float64)) for p in params)
    x64, t64 = a0.astype(np.float64), T_arr.astype(np.float64)
    inputs = [x64, *(t.out for t in forward_unchecked(wide, p64, x64)[:-1])]
    tails: dict[int, Network] = {}
    checks: list[ParameterCheck] = []
    for index in sampled(network.parameter_count, sample):
        name, at = location_of(network, index)
        l = at.layer
        if l not in tails:
            tails[l] = replace(wide, inputs=network.shapes[l][0], layers=network.layers[l:])
        array, spot = (p64[l].W, (at.row, at.col)) if at.kind == "W" else (p64[l].b, (at.col,))
        grad = result.gradients[l].W if at.kind == "W" else result.gradients[l].b
        original = float(array[spot])
        losses_at: list[float] = []
        for step in (epsilon, -epsilon):
            array[spot] = original + step
            losses_at.append(_loss(tails[l], p64[l:], inputs[l], t64, name))
        array[spot] = original
        numeric = (losses_at[0] - losses_at[1]) / (2 * epsilon)
        if not math.isfinite(numeric):
            raise _unbounded(name)
        backprop = float(grad[spot])
        checks.append(
            ParameterCheck(name, at, backprop, numeric, relative_error(backprop, numeric))
        )
    return GradientCheck(result.loss, tuple(checks))


def _loss(network: Network, params: Params, a: FloatArray, T: FloatArray, name: str) -> float:
    """The mean loss of the layers of ``network`` from the input ``a`` of its first."""
    try:
        trace = forward_unchecked(network, params, a)
    except NumericOverflow:
        raise _unbounded(name) from None
    with np.errstate(all="ignore"):
        loss, _ = losses.loss_and_delta(network, trace[-1].net, trace[-1].out, T)
    if not math.isfinite(loss):
        raise _unbounded(name)
    return loss


def _unbounded(name: str) -> NumericOverflow:
    return NumericOverflow(
        f"the loss with {name} moved by epsilon would not be finite; use a smaller epsilon",
        "/epsilon",
    )
