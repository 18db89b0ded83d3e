"""Gradient-descent updates. Optimizer state is data, returned by every step.

- :class:`SGD`: ``g' = g + weight_decay * W``; without momentum ``W <- W - lr * g'`` (the seed's
  update); with momentum ``v <- momentum * v + g'`` and ``W <- W - lr * v``, or with Nesterov
  ``W <- W - lr * (g' + momentum * v)`` (PyTorch's formulation).
- :class:`Adam`: ``m <- b1 m + (1 - b1) g'``, ``v <- b2 v + (1 - b2) g'^2``,
  ``W <- W - lr * m_hat / (sqrt(v_hat) + eps)`` with bias-corrected ``m_hat``, ``v_hat``.

Weight decay is an L2 penalty ``weight_decay / 2 * ||W||^2`` on the weights, not the biases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from service.core.errors import NumericOverflow
from service.core.parameters import FloatArray, LayerParams, Params, all_finite


@dataclass(frozen=True)
class SGD:
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""

    learning_rate: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma and Ba, 2015)."""

    learning_rate: float = 0.001
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0


Optimizer = SGD | Adam


@dataclass(frozen=True)
class OptimizerState:
    """``step``: updates made so far; ``slots``: per-parameter arrays (``velocity``, or Adam's
    ``m`` and ``v``), shaped like the parameters."""

    step: int = 0
    slots: dict[str, Params] = field(default_factory=dict)


def step(
    optimizer: Optimizer, params: Params, grads: Params, state: OptimizerState | None = None
) -> tuple[Params, OptimizerState]:
    """One update of ``params`` by ``grads``; returns the new parameters and state.

    Raises :class:`NumericOverflow` when the new parameters would not be finite; nothing given
    is modified.
    """
    state = state or OptimizerState()
    with np.errstate(all="ignore"):
        grads = _with_weight_decay(grads, params, optimizer.weight_decay)
        match optimizer:
            case SGD():
                new_params, new_state = _sgd(optimizer, params, grads, state)
            case Adam():
                new_params, new_state = _adam(optimizer, params, grads, state)
    produced = [("parameters", new_params), *new_state.slots.items()]
    if all_finite([a for _, values in produced for p in values for a in (p.W, p.b)]):
        return new_params, new_state
    for what, values in produced:
        for i, p in enumerate(values):
            if not all_finite([p.W, p.b]):
                raise NumericOverflow(
                    f"the update would make the {what} of layer {i} non-finite; lower the "
                    "learning rate or rescale the inputs",
                    f"/layers/{i}",
                )
    return new_params, new_state


def _with_weight_decay(grads: Params, params: Params, weight_decay: float) -> Params:
    if weight_decay == 0:
        return grads
    wd = params[0].W.dtype.type(weight_decay)
    return tuple(LayerParams(g.W + wd * p.W, g.b) for g, p in zip(grads, params, strict=True))


def _sgd(
    opt: SGD, params: Params, grads: Params, state: OptimizerState
) -> tuple[Params, OptimizerState]:
    lr = params[0].W.dtype.type(opt.learning_rate)
    if opt.momentum == 0:
        new = _map2(lambda p, g: p - lr * g, params, grads)
        return new, OptimizerState(state.step + 1, {})
    mu = params[0].W.dtype.type(opt.momentum)
    velocity = state.slots.get("velocity") or _zeros_like(params)
    v_new = _map2(lambda v, g: mu * v + g, velocity, grads)
    update = _map2(lambda g, v: g + mu * v, grads, v_new) if opt.nesterov else v_new
    return _map2(lambda p, u: p - lr * u, params, update), OptimizerState(
        state.step + 1, {"velocity": v_new}
    )


def _adam(
    opt: Adam, params: Params, grads: Params, state: OptimizerState
) -> tuple[Params, OptimizerState]:
    dt = params[0].W.dtype.type
    t = state.step + 1
    b1, b2, eps, lr = dt(opt.beta1), dt(opt.beta2), dt(opt.eps), dt(opt.learning_rate)
    m = _map2(
        lambda m, g: b1 * m + (1 - b1) * g, state.slots.get("m") or _zeros_like(params), grads
    )
    v = _map2(
        lambda v, g: b2 * v + (1 - b2) * g * g, state.slots.get("v") or _zeros_like(params), grads
    )
    c1, c2 = dt(1 - opt.beta1**t), dt(1 - opt.beta2**t)
    new = tuple(
        LayerParams(
            p.W - lr * (mi.W / c1) / (np.sqrt(vi.W / c2) + eps),
            p.b - lr * (mi.b / c1) / (np.sqrt(vi.b / c2) + eps),
        )
        for p, mi, vi in zip(params, m, v, strict=True)
    )
    return new, OptimizerState(t, {"m": m, "v": v})


def _map2(fn: Callable[[FloatArray, FloatArray], FloatArray], a: Params, b: Params) -> Params:
    return tuple(LayerParams(fn(x.W, y.W), fn(x.b, y.b)) for x, y in zip(a, b, strict=True))


def _zeros_like(params: Params) -> Params:
    return tuple(LayerParams(np.zeros_like(p.W), np.zeros_like(p.b)) for p in params)
