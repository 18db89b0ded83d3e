"""Derivatives with respect to the inputs: of the loss, and of every output (the Jacobian).

Backpropagation carried one layer further, to the inputs ``x`` of layer 0 (``net_0 = x @ W_0
+ b_0``)::

    dE/dx = delta_0 @ W_0.T                     (rows, inputs)

with ``delta_0 = dE/dnet_0`` of the mean batch loss, so row ``r`` is d(mean loss)/dx_r: the
derivative of the per-sample loss of row ``r``, divided by the rows. The Jacobian of the outputs
``y = out_L`` is the same pass seeded with the unit vector of each output ``k`` in place of the
loss's dE/dout::

    dy_k/dx = backward(e_k) @ W_0.T             (rows, inputs) for every k: (rows, outputs, inputs)

Rows are independent, so both are computed ``block_rows`` rows at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from service.core import activations, losses
from service.core.errors import NumericOverflow
from service.core.network import Network
from service.core.parameters import FloatArray, Params, all_finite
from service.core.propagation import Trace, backward, checked_pair, forward_unchecked


@dataclass(frozen=True)
class InputGradient:
    """The mean batch loss, its gradient with respect to every input of every row (rows,
    inputs) and, if asked, the Jacobian ``dy_k/dx_i`` of every row (rows, outputs, inputs)."""

    loss: float
    gradients: FloatArray
    jacobian: FloatArray | None


def input_gradient(
    network: Network,
    params: Params,
    X: ArrayLike,
    T: ArrayLike,
    block_rows: int,
    jacobian: bool = False,
) -> InputGradient:
    """``dE/dx`` of the mean batch loss of ``(X, T)`` for every row, and with ``jacobian`` the
    outputs' ``dy_k/dx_i``, propagated ``block_rows`` rows at a time.

    A block of ``n_B`` of the ``N`` rows gives the deltas of its own mean loss, ``1 / n_B`` per
    row; they are scaled by ``n_B / N`` to be those of the batch's. Raises what
    :func:`~service.core.gradient` raises.
    """
    a0, T_arr = checked_pair(network, X, T)
    rows = a0.shape[0]
    dtype = network.np_dtype
    dX = np.empty_like(a0)
    J = np.empty((rows, network.outputs, network.inputs), dtype=dtype) if jacobian else None
    W0_T = params[0].W.T
    loss = 0.0
    for start in range(0, rows, block_rows):
        block = slice(start, min(start + block_rows, rows))
        trace = forward_unchecked(network, params, a0[block])
        with np.errstate(all="ignore"):
            part, delta = losses.loss_and_delta(network, trace[-1].net, trace[-1].out, T_arr[block])
            n = block.stop - start
            if n != rows:
                delta = delta * dtype.type(n / rows)
            dX[block] = backward(network, params, trace, delta)[0] @ W0_T
            if J is not None:
                J[block] = _jacobian(network, params, trace)
        loss += part * (n / rows)
    if not np.isfinite(loss):
        raise NumericOverflow("the loss is not finite for these inputs and parameters", "")
    if not all_finite([dX]):
        raise NumericOverflow(
            f"the input gradient overflows: its values would not be finite in {network.dtype}", ""
        )
    if J is not None and not all_finite([J]):
        raise NumericOverflow(
            f"the Jacobian overflows: its values would not be finite in {network.dtype}", ""
        )
    return InputGradient(loss, dX, J)


def _jacobian(network: Network, params: Params, trace: Trace) -> FloatArray:
    """``dy_k/dx_i`` (rows, outputs, inputs) of the rows of ``trace``: one backward pass per
    output ``k``, from ``dy/dout = e_k`` through the last activation."""
    last, layer = trace[-1], network.layers[-1]
    rows, outputs = last.out.shape
    W0_T = params[0].W.T
    J = np.empty((rows, outputs, network.inputs), dtype=last.out.dtype)
    seed = np.zeros_like(last.out)
    for k in range(outputs):
        seed[:, k] = 1
        delta = activations.backprop(layer, last.net, last.out, seed)
        J[:, k, :] = backward(network, params, trace, delta)[0] @ W0_T
        seed[:, k] = 0
    return J
