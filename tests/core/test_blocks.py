"""Forward and gradient in blocks of rows: the same numbers as one pass, to rounding (BLAS may
order a dot product's additions differently for another number of rows), whatever the block
size."""

from __future__ import annotations

import numpy as np
import pytest

from service.core import (
    Layer,
    Network,
    NumericOverflow,
    forward,
    forward_outputs,
    gradient,
    initialize,
    mean_gradient,
)

NET = Network(3, (Layer(16, "tanh"), Layer(9, "relu"), Layer(4, "softmax")), "cross_entropy")


def batch(rows: int, dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(rows)
    X = rng.normal(size=(rows, 3)).astype(dtype)
    T = np.eye(4, dtype=dtype)[rng.integers(0, 4, rows)]
    return X, T


@pytest.mark.parametrize("block_rows", [1, 7, 64, 1000])
def test_outputs_in_blocks_equal_one_pass(block_rows: int) -> None:
    params = initialize(NET, "xavier_uniform", seed=3)
    X, _ = batch(130)
    expected = forward(NET, params, X)[-1].out
    np.testing.assert_allclose(forward_outputs(NET, params, X, block_rows), expected, rtol=1e-14)


@pytest.mark.parametrize(("dtype", "tol"), [("float64", 1e-13), ("float32", 1e-5)])
@pytest.mark.parametrize("block_rows", [1, 7, 64])
def test_the_mean_gradient_in_blocks_equals_one_pass(
    dtype: str, tol: float, block_rows: int
) -> None:
    net = Network(NET.inputs, NET.layers, NET.loss, dtype)  # type: ignore[arg-type]
    params = initialize(net, "xavier_uniform", seed=5)
    X, T = batch(130, dtype)
    whole = gradient(net, params, X, T)
    loss, grads = mean_gradient(net, params, X, T, block_rows)
    assert loss == pytest.approx(whole.loss, rel=tol)
    for g, w in zip(grads, whole.gradients, strict=True):
        for a, b in ((g.W, w.W), (g.b, w.b)):
            assert a.dtype == b.dtype
            assert np.max(np.abs(a - b)) <= tol * max(np.max(np.abs(b)), 1e-30)


def test_a_block_that_overflows_is_refused() -> None:
    net = Network(1, (Layer(1, "identity"),), "half_squared_error")
    params = initialize(net, "xavier_uniform", seed=1)
    X = np.array([[1.0], [1e300]])
    with pytest.raises(NumericOverflow):
        mean_gradient(net, params, X, np.zeros((2, 1)), 1)
