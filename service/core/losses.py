"""Losses: the mean over the batch of a per-sample loss, and its gradient at the last layer.

For outputs ``o`` and targets ``t`` over ``k`` outputs, per sample:

- ``half_squared_error``   E = 1/2 sum (t - o)^2           dE/do = o - t
- ``mean_squared_error``   E = 1/k sum (t - o)^2           dE/do = 2 (o - t) / k
- ``binary_cross_entropy`` E = -1/k sum t log o + (1-t) log(1-o), o = sigmoid(net):
  computed from ``net`` as 1/k sum softplus(net) - t net, with dE/dnet = (o - t) / k
- ``cross_entropy``        E = -sum t log o, o = softmax(net): computed as -sum t log_softmax(net),
  with dE/dnet = o - t (t sums to 1)

The batch loss is the mean of the per-sample losses, so every delta carries a factor 1/rows.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from service.core import activations
from service.core.errors import InvalidTargets
from service.core.network import Network
from service.core.parameters import FloatArray


def _refuse_first(T: FloatArray, bad: NDArray[np.bool_], rule: str) -> None:
    """:class:`InvalidTargets` naming the first target where ``bad`` holds, if any."""
    found = np.argwhere(bad)
    if found.size:
        r, c = (int(v) for v in found[0])
        raise InvalidTargets(f"{rule}; targets[{r}][{c}] is {T[r, c]!r}", f"/targets/{r}/{c}")


def check_targets_fit_loss(network: Network, T: FloatArray) -> None:
    """Raise :class:`InvalidTargets` for targets outside what the loss accepts."""
    if network.loss == "binary_cross_entropy":
        _refuse_first(T, (T < 0) | (T > 1), "binary_cross_entropy targets must lie in [0, 1]")
    elif network.loss == "cross_entropy":
        _refuse_first(T, T < 0, "cross_entropy targets must be probabilities (>= 0)")
        sums = T.sum(axis=1, dtype=np.float64)
        tol = 1e-6 if T.dtype == np.float64 else 1e-4
        off = np.flatnonzero(np.abs(sums - 1) > tol)
        if off.size:
            r = int(off[0])
            raise InvalidTargets(
                f"cross_entropy targets must sum to 1 in every row (a probability row, one-hot "
                f"for classes); row {r} sums to {sums[r]!r}",
                f"/targets/{r}",
            )


def loss_and_delta(
    network: Network, net: FloatArray, out: FloatArray, T: FloatArray
) -> tuple[float, FloatArray]:
    """The mean batch loss and ``dE/dnet`` of the last layer, shape (rows, outputs)."""
    rows, k = out.shape
    dtype = out.dtype.type
    layer = network.layers[-1]
    match network.loss:
        case "half_squared_error":
            diff = out - T
            per_sample = 0.5 * np.sum(diff * diff, axis=1)
            delta = activations.backprop(layer, net, out, diff / dtype(rows))
        case "mean_squared_error":
            diff = out - T
            per_sample = np.sum(diff * diff, axis=1) / k
            delta = activations.backprop(layer, net, out, diff * dtype(2 / (k * rows)))
        case "binary_cross_entropy":
            softplus = np.maximum(net, 0) + np.log1p(np.exp(-np.abs(net)))
            per_sample = np.sum(softplus - T * net, axis=1) / k
            delta = (out - T) / dtype(k * rows)
        case "cross_entropy":
            # t log o is 0 where t = 0, also where o underflows to 0 (log o = -inf, and
            # 0 * -inf would be NaN): only the classes a target weighs count.
            log_o = activations.log_softmax(net)
            per_sample = -np.sum(np.where(T > 0, T * log_o, 0), axis=1)
            delta = (out - T) / dtype(rows)
    return float(np.mean(per_sample, dtype=np.float64)), delta.astype(out.dtype, copy=False)
