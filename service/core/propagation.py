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
from service.core.optimizers import Optimizer, OptimizerState, step
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
    return forward_unchecked(network, params, a)


def gradient(network: Network, params: Params, X: ArrayLike, T: ArrayLike) -> GradientResult:
    """The loss of the batch ``(X, T)`` and its gradient by backpropagation."""
    a0, T_arr = checked_pair(network, X, T)
    return _gradient(network, params, a0, T_arr)


def forward_outputs(network: Network, params: Params, X: ArrayLike, block_rows: int) -> FloatArray:
    """The outputs of :func:`forward` (rows, outputs), propagated ``block_rows`` rows at a time
    so that the working memory is that of one block, whatever the batch. Rows are independent,
    so the outputs are those of one pass, to rounding: BLAS may add up a dot product in another
    order for another number of rows (a unit in the last place or two)."""
    a = check_batch(network, X)
    rows = a.shape[0]
    if rows <= block_rows:
        return forward_unchecked(network, params, a)[-1].out
    out = np.empty((rows, network.outputs), dtype=network.np_dtype)
    for start in range(0, rows, block_rows):
        block = slice(start, start + block_rows)
        out[block] = forward_unchecked(network, params, a[block])[-1].out
    return out


def mean_gradient(
    network: Network, params: Params, X: ArrayLike, T: ArrayLike, block_rows: int
) -> tuple[float, Params]:
    """The mean batch loss and its gradient, backpropagated ``block_rows`` rows at a time.

    The batch loss is the mean of the per-sample losses, so over blocks ``B`` of ``n_B`` of the
    ``N`` rows ``E = sum_B (n_B / N) E_B`` and ``dE/dW = sum_B (n_B / N) dE_B/dW``. Summing in
    blocks changes only the order of additions: the result equals that of one pass to a few
    units in the last place (relative 1e-13 in float64, 1e-5 in float32, over 100 blocks).
    """
    a0, T_arr = checked_pair(network, X, T)
    rows = a0.shape[0]
    if rows <= block_rows:
        result = _gradient(network, params, a0, T_arr)
        return result.loss, result.gradients
    loss = 0.0
    total = [LayerParams(np.zeros_like(p.W), np.zeros_like(p.b)) for p in params]
    for start in range(0, rows, block_rows):
        stop = min(start + block_rows, rows)
        part = _gradient(network, params, a0[start:stop], T_arr[start:stop])
        weight = (stop - start) / rows
        loss += weight * part.loss
        scale = network.np_dtype.type(weight)
        with np.errstate(all="ignore"):
            for acc, g in zip(total, part.gradients, strict=True):
                np.add(acc.W, scale * g.W, out=acc.W)
                np.add(acc.b, scale * g.b, out=acc.b)
    grads = tuple(total)
    if not all_finite([a for g in grads for a in (g.W, g.b)]):
        raise NumericOverflow(
            f"the gradient overflows: its values would not be finite in {network.dtype}", ""
        )
    return loss, grads


def train_step(
    network: Network,
    params: Params,
    X: ArrayLike,
    T: ArrayLike,
    optimizer: Optimizer,
    state: OptimizerState,
    block_rows: int,
) -> tuple[float, Params, OptimizerState]:
    """One update: the mean loss before it, and the parameters and optimizer state after it
    (the gradient accumulated ``block_rows`` rows at a time, see :func:`mean_gradient`)."""
    loss, grads = mean_gradient(network, params, X, T, block_rows)
    return (loss, *step(optimizer, params, grads, state))


def backward(
    network: Network, params: Params, trace: Trace, delta: FloatArray
) -> tuple[FloatArray, ...]:
    """The deltas of every layer, first to last, from ``delta`` of the last layer (rows, outputs):
    ``delta_{l-1} = (delta_l @ W_l.T) * f'_{l-1}(net_{l-1})``. Unchecked: the caller checks
    what it keeps for finiteness (under ``np.errstate(all="ignore")``)."""
    deltas = [delta]
    for l in range(len(network.layers) - 1, 0, -1):
        prev = trace[l - 1]
        d_out = delta @ params[l].W.T
        delta = activations.backprop(network.layers[l - 1], prev.net, prev.out, d_out)
        deltas.append(delta)
    deltas.reverse()
    return tuple(deltas)


def checked_pair(network: Network, X: ArrayLike, T: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """``X`` and ``T`` checked against the network and its loss, as arrays of its dtype."""
    a0 = check_batch(network, X)
    T_arr = check_targets(network, T, a0.shape[0])
    losses.check_targets_fit_loss(network, T_arr)
    return a0, T_arr


def _gradient(
    network: Network, params: Params, a0: FloatArray, T_arr: FloatArray
) -> GradientResult:
    trace = forward_unchecked(network, params, a0)
    with np.errstate(all="ignore"):
        loss, delta = losses.loss_and_delta(network, trace[-1].net, trace[-1].out, T_arr)
        deltas = backward(network, params, trace, delta)
        grads = [
            LayerParams((trace[l - 1].out if l > 0 else a0).T @ d, d.sum(axis=0))
            for l, d in enumerate(deltas)
        ]
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
    return GradientResult(loss, tuple(grads), deltas, trace)


def forward_unchecked(network: Network, params: Params, a: FloatArray) -> Trace:
    """:func:`forward` of a batch ``a`` already checked (an array of the network's dtype, of
    its input width); raises :class:`NumericOverflow` as :func:`forward` does."""
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
