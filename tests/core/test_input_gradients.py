"""Input gradients and the Jacobian against central differences of a reference written here
(the textbook forward pass and losses of ``tests/core/test_gradients.py``), the seed's input
gradient against its worked example, and the batch-mean convention."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from service.core import (
    Activation,
    DType,
    Layer,
    Loss,
    Network,
    check_parameters,
    gradient,
    input_gradient,
)
from tests.core.test_gradients import (
    HIDDEN,
    KINKED,
    OUTPUT_AND_LOSS,
    Case,
    make_case,
    ref_activate,
    ref_loss,
)
from tests.seed import SEED

Array = NDArray[np.floating]

H = 1e-4  # step of the five-point central differences (truncation error O(h^4))
# Relative tolerance and absolute floor (per unit of loss or output) of each dtype: float64 to
# the rounding noise of the differences, float32 to the rounding of its own arithmetic.
TOLERANCES: dict[DType, tuple[float, float]] = {"float64": (1e-6, 1e-10), "float32": (2e-3, 1e-5)}


def seen(case: Case) -> tuple[Array, list[tuple[Array, Array]]]:
    """The batch and parameters as the network computes with them, in float64 (a float32
    network's inputs are rounded to float32 first)."""
    X = case.X.astype(case.network.np_dtype).astype(np.float64)
    return X, [(p.W.astype(np.float64), p.b.astype(np.float64)) for p in case.params]


def ref_propagate(case: Case, X: Array) -> tuple[Array, Array, dict[int, Array]]:
    """The last layer's net and out for a stack of batches ``X`` (..., rows, inputs), and the
    net inputs of the kinked layers."""
    _, params = seen(case)
    kinked: dict[int, Array] = {}
    a, net = X, X
    for l, (layer, (W, b)) in enumerate(zip(case.network.layers, params, strict=True)):
        net = a @ W + b
        if layer.activation in KINKED:
            kinked[l] = net
        a = ref_activate(layer, net)
    return net, a, kinked


def differences(case: Case, of: str) -> tuple[Array, bool]:
    """The five-point central differences, along every input of every row, of the mean loss
    (``of="loss"``: shape (rows, inputs)) or of every output (``of="outputs"``: shape (rows,
    outputs, inputs)), and whether no perturbation crossed a kink."""
    X, _ = seen(case)
    rows, inputs = X.shape
    units = np.eye(rows * inputs).reshape(rows * inputs, rows, inputs)
    _, _, base = ref_propagate(case, X)
    values: list[Array] = []
    clear = True
    for s in (H, -H, 2 * H, -2 * H):
        net, out, kinked = ref_propagate(case, X + s * units)
        for l, k in kinked.items():
            clear &= bool(np.array_equal(k > 0, np.broadcast_to(base[l] > 0, k.shape)))
        values.append(ref_loss(case.network.loss, net, out, case.T) if of == "loss" else out)
    p1, m1, p2, m2 = values
    numeric = (8 * (p1 - m1) - (p2 - m2)) / (12 * H)  # (rows * inputs, ...)
    if of == "loss":
        return numeric.reshape(rows, inputs), clear
    # numeric[(r, i), r', k]: only r' = r moves; reorder to (r, k, i).
    per_row = numeric.reshape(rows, inputs, rows, -1)[np.arange(rows), :, np.arange(rows), :]
    return per_row.transpose(0, 2, 1), clear


def assert_close(analytic: Array, numeric: Array, scale: float, dtype: DType, what: str) -> None:
    rtol, floor = TOLERANCES[dtype]
    assert analytic.shape == numeric.shape, what
    error = np.abs(analytic - numeric)
    bound = rtol * np.maximum(np.abs(analytic), np.abs(numeric)) + floor * max(1.0, scale)
    worst = np.unravel_index(np.argmax(error - bound), error.shape)
    assert (error <= bound).all(), (
        f"{what}{[int(i) for i in worst]}: analytic {analytic[worst]!r}, central difference "
        f"{numeric[worst]!r}"
    )


def case_of(hidden: Activation, out: Activation, loss: Loss, dtype: DType, rows: int) -> Case:
    layers = (Layer(5, hidden, 0.1), Layer(4, hidden, 0.1), Layer(3, out, 0.1))
    return make_case(Network(3, layers, loss, dtype), rows=rows, seed=2026)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("out_activation", "loss"), OUTPUT_AND_LOSS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_input_gradient_and_jacobian_match_central_differences(
    hidden: Activation, out_activation: Activation, loss: Loss, dtype: DType
) -> None:
    case = case_of(hidden, out_activation, loss, dtype, rows=4)
    result = input_gradient(case.network, case.params, case.X, case.T, 64, jacobian=True)
    assert result.gradients.dtype == case.network.np_dtype
    assert result.jacobian is not None and result.jacobian.shape == (4, 3, 3)
    numeric, clear = differences(case, "loss")
    numeric_J, clear_J = differences(case, "outputs")
    assert clear and clear_J, "the fixed draw crosses a kink"
    assert_close(result.gradients, numeric, abs(result.loss), dtype, "dE/dx")
    assert_close(result.jacobian, numeric_J, 1.0, dtype, "dy/dx")


def test_the_input_gradient_is_of_the_batch_mean() -> None:
    """Row r of a batch's input gradient is the gradient of row r alone over the rows."""
    case = case_of("tanh", "softmax", "cross_entropy", "float64", rows=5)
    whole = input_gradient(case.network, case.params, case.X, case.T, 64)
    for r in range(5):
        alone = input_gradient(case.network, case.params, case.X[r : r + 1], case.T[r : r + 1], 1)
        np.testing.assert_allclose(whole.gradients[r], alone.gradients[0] / 5, rtol=1e-13)
    assert whole.loss == pytest.approx(gradient(case.network, case.params, case.X, case.T).loss)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_blocks_of_rows_give_the_answer_of_one_pass(dtype: DType) -> None:
    case = case_of("sigmoid", "sigmoid", "binary_cross_entropy", dtype, rows=7)
    one = input_gradient(case.network, case.params, case.X, case.T, 7, jacobian=True)
    blocks = input_gradient(case.network, case.params, case.X, case.T, 2, jacobian=True)
    rtol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(blocks.gradients, one.gradients, rtol=rtol)
    assert blocks.jacobian is not None and one.jacobian is not None
    np.testing.assert_allclose(blocks.jacobian, one.jacobian, rtol=rtol)
    assert blocks.loss == pytest.approx(one.loss, rel=rtol)


def test_the_seeds_input_gradient_is_w1_times_delta1_by_hand() -> None:
    """dE/dx_i = sum_j w_ij delta_j over the first layer's units, from the worked example's
    weights and deltas."""
    spec = SEED["network"]
    layers = tuple(Layer(layer["units"], layer["activation"]) for layer in spec["layers"])
    network = Network(spec["inputs"], layers, "half_squared_error")
    weights, biases = SEED["parameters"]["weights"], SEED["parameters"]["biases"]
    params = check_parameters(network, list(zip(weights, biases, strict=True)))
    result = input_gradient(network, params, [SEED["input"]], [SEED["target"]], 1, jacobian=True)
    W1, delta1 = weights[0], SEED["deltas_dE_dnet"][0]
    by_hand = [sum(w * d for w, d in zip(row, delta1, strict=True)) for row in W1]
    assert result.loss == SEED["loss"]
    for got, want in zip(result.gradients[0].tolist(), by_hand, strict=True):
        assert abs(got - want) <= 1e-12
    # With one output and the half squared error, dE/dx = (out - target) dy/dx.
    error = SEED["forward"]["nodes"]["n9"]["out"] - SEED["target"][0]
    assert result.jacobian is not None
    np.testing.assert_allclose(result.jacobian[0, 0] * error, result.gradients[0], rtol=1e-12)
