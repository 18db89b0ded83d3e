"""Forward propagation and backpropagation in matrix form.

For layer ``l`` with input ``a_{l-1}`` (rows, n_in)::

    net_l = a_{l-1} @ W_l + b_l          out_l = f_l(net_l)

and backwards, from ``delta_L = dE/dnet_L`` given by the loss::

    dE/dW_l = a_{l-1}.T @ delta_l        dE/db_l = sum over rows of delta_l
    delta_{l-1} = (delta_l @ W_l.T) * f'_{l-1}(net_{l-1})

Nothing is stored between calls: every function returns what it computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from service.core import activations, losses
from service.core.errors import NumericOverflow
from service.core.network import Network
from service.core.parameters import (
    FloatArray,
    LayerParams,
    Params,
    all_finite,
    check_batch,
    check_targets,
)


@dataclass(frozen=True)
class LayerTrace:
    """``net`` and ``out`` of one layer for a batch, each (rows, units)."""

    net: FloatArray
    out: FloatArray


Trace = tuple[LayerTrace, ...]


@dataclass(frozen=True)
class GradientResult:
    """The mean batch loss, ``dE/dW`` and ``dE/db`` of every layer, the deltas ``dE/dnet``
    (rows x units, of the mean loss) of every layer, and the forward trace they came from."""

    loss: float
    gradients: Params
    deltas: tuple[FloatArray, ...]
    trace: Trace

    @property
    def outputs(self) -> FloatArray:
        return self.trace[-1].out


def forward(network: Network, params: Params, X: ArrayLike) -> Trace:
    """Propagate the batch ``X`` (rows, inputs); the outputs are ``trace[-1].out``.

    Raises :class:`ShapeMismatch` / :class:`NonFiniteValue` for a bad batch and
    :class:`NumericOverflow` when a net input would not be finite.
    """
    a = check_batch(network, X)
    return _forward(network, params, a)


def gradient(network: Network, params: Params, X: ArrayLike, T: ArrayLike) -> GradientResult:
    """The loss of the batch ``(X, T)`` and its gradient by backpropagation."""
    a0 = check_batch(network, X)
    T_arr = check_targets(network, T, a0.shape[0])
    losses.check_targets_fit_loss(network, T_arr)
    trace = _forward(network, params, a0)
    with np.errstate(all="ignore"):
        loss, delta = losses.loss_and_delta(network, trace[-1].net, trace[-1].out, T_arr)
        deltas: list[FloatArray] = [delta]
        grads: list[LayerParams] = []
        for l in range(len(network.layers) - 1, -1, -1):
            a_prev = trace[l - 1].out if l > 0 else a0
            grads.append(LayerParams(a_prev.T @ delta, delta.sum(axis=0)))
            if l > 0:
                d_out = delta @ params[l].W.T
                prev = trace[l - 1]
                delta = activations.backprop(network.layers[l - 1], prev.net, prev.out, d_out)
                deltas.append(delta)
    grads.reverse()
    deltas.reverse()
    if not np.isfinite(loss):
        raise NumericOverflow("the loss is not finite for these inputs and parameters", "")
    # A non-finite delta makes its column of dE/db non-finite (db sums the rows of delta), so
    # finite gradients mean finite deltas.
    if not all_finite([a for g in grads for a in (g.W, g.b)]):
        for i, (g, d) in enumerate(zip(grads, deltas, strict=True)):
            if not all_finite([g.W, g.b, d]):
                raise NumericOverflow(
                    f"the gradient of layer {i} overflows: its values would not be finite in "
                    f"{network.dtype}",
                    f"/layers/{i}",
                )
    return GradientResult(loss, tuple(grads), tuple(deltas), trace)


def _forward(network: Network, params: Params, a: FloatArray) -> Trace:
    trace: list[LayerTrace] = []
    with np.errstate(all="ignore"):
        for layer, p in zip(network.layers, params, strict=True):
            net = a @ p.W + p.b
            a = activations.activate(layer, net)
            trace.append(LayerTrace(net, a))
    # A non-finite out of a layer makes the next layer's net non-finite (inf times a weight is
    # inf, or NaN where the weight is 0), so the nets and the last out cover every out; out can
    # overflow where net did not (leaky_relu with a large slope).
    if not all_finite([*(t.net for t in trace), trace[-1].out]):
        for i, t in enumerate(trace):
            if not all_finite([t.net, t.out]):
                raise NumericOverflow(
                    f"the net input or output of layer {i} overflows: its values would not be "
                    f"finite in {network.dtype}",
                    f"/layers/{i}",
                )
    return tuple(trace)
