"""Activation functions, each beside its derivative.

``activate(layer, net) -> out`` and ``backprop(layer, net, out, d_out) -> d_net``; the backward
pass takes the upstream gradient so that softmax, whose Jacobian is not diagonal, fits the same
interface as the element-wise functions.
"""

from __future__ import annotations

import numpy as np

from service.core.network import Layer
from service.core.parameters import FloatArray


def activate(layer: Layer, net: FloatArray) -> FloatArray:
    """``out = f(net)`` for a batch ``net`` of shape (rows, units)."""
    match layer.activation:
        case "identity":
            return net
        case "relu":
            return np.maximum(net, 0.0, dtype=net.dtype)
        case "leaky_relu":
            return np.where(net > 0, net, net * net.dtype.type(layer.negative_slope))
        case "sigmoid":
            return sigmoid(net)
        case "tanh":
            return np.tanh(net)
        case "softmax":
            return softmax(net)
    raise AssertionError(layer.activation)  # unreachable: Network validates activations


def backprop(layer: Layer, net: FloatArray, out: FloatArray, d_out: FloatArray) -> FloatArray:
    """``dE/dnet`` from ``dE/dout``: the chain rule through ``out = f(net)``."""
    match layer.activation:
        case "identity":
            return d_out
        case "relu":
            # f'(0) = 0, as in PyTorch; the seed's n4 (net -0.079) gets 0 either way.
            return np.where(net > 0, d_out, net.dtype.type(0))
        case "leaky_relu":
            return np.where(net > 0, d_out, d_out * net.dtype.type(layer.negative_slope))
        case "sigmoid":
            return d_out * out * (1 - out)  # sigma' = sigma (1 - sigma)
        case "tanh":
            return d_out * (1 - out * out)  # tanh' = 1 - tanh^2
        case "softmax":
            # Jacobian-vector product: d_net_j = o_j (g_j - sum_k g_k o_k)
            d_net: FloatArray = out * (d_out - np.sum(d_out * out, axis=1, keepdims=True))
            return d_net
    raise AssertionError(layer.activation)


def sigmoid(net: FloatArray) -> FloatArray:
    """``1 / (1 + e^-net)``, written with ``e^-|net|`` so that no exponential overflows."""
    e = np.exp(-np.abs(net))
    out: FloatArray = np.where(net >= 0, 1 / (1 + e), e / (1 + e))
    return out


def softmax(net: FloatArray) -> FloatArray:
    """Row-wise ``e^net_j / sum_k e^net_k``, shifted by the row maximum so nothing overflows."""
    e = np.exp(net - net.max(axis=1, keepdims=True))
    out: FloatArray = e / e.sum(axis=1, keepdims=True)
    return out


def log_softmax(net: FloatArray) -> FloatArray:
    """Row-wise ``net_j - log sum_k e^net_k``, stable for large ``|net|``."""
    shifted = net - net.max(axis=1, keepdims=True)
    out: FloatArray = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return out
