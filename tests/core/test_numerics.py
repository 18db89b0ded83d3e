"""Numerical behaviour: saturating activations and cross entropies stay finite and silent at
net inputs of +-1e4, the losses are PyTorch's (computed here by hand with plain Python), a
computation that overflows raises instead of returning infinity, float32 stays float32, and
nothing is kept between calls."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.core import (
    Activation,
    DType,
    Layer,
    LayerParams,
    Loss,
    Network,
    NumericOverflow,
    Params,
    check_parameters,
    forward,
    gradient,
    initialize,
)
from service.core.activations import log_softmax, sigmoid, softmax

BIG = 1e4


def _finite(*arrays: np.ndarray) -> bool:
    return all(bool(np.isfinite(a).all()) for a in arrays)


def _last_layer_net_of(activation: Activation, loss: Loss, nets: list[float]) -> Network:
    """A one-layer network on one input whose net inputs are ``nets`` for the input 1."""
    return Network(1, (Layer(len(nets), activation),), loss)


def _params_for(network: Network, nets: list[float]) -> Params:
    return check_parameters(network, [([nets], [0.0] * len(nets))])


# -- +-1e4 ---------------------------------------------------------------------------------


def test_sigmoid_softmax_and_log_softmax_are_finite_at_plus_minus_1e4() -> None:
    net = np.array([[BIG, -BIG, 0.0], [-BIG, -BIG, BIG]])
    # an overflow, an invalid operation (NaN) or a division by zero raises FloatingPointError;
    # underflow to 0 (e^-1e4) is exact enough and allowed
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = sigmoid(net)
        p = softmax(net)
        lp = log_softmax(net)
    assert _finite(s, p, lp)
    assert s.tolist() == [[1.0, 0.0, 0.5], [0.0, 0.0, 1.0]]
    np.testing.assert_allclose(p, [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], rtol=0, atol=1e-300)
    # log softmax = net - logsumexp(net), and logsumexp = max + log(1 + tiny) = max here
    np.testing.assert_array_equal(lp, [[0.0, -2 * BIG, -BIG], [-2 * BIG, -2 * BIG, 0.0]])


@pytest.mark.parametrize(
    ("T", "expected"),
    [
        # per element: softplus(net) - t * net; softplus(1e4) = 1e4, softplus(-1e4) = 0
        ([[0.0, 1.0]], (BIG + BIG) / 2),  # both confidently wrong
        ([[1.0, 0.0]], 0.0),  # both confidently right
        ([[0.5, 0.5]], (BIG / 2 + BIG / 2) / 2),
    ],
)
def test_binary_cross_entropy_is_finite_at_plus_minus_1e4(
    T: list[list[float]], expected: float
) -> None:
    network = _last_layer_net_of("sigmoid", "binary_cross_entropy", [BIG, -BIG])
    result = gradient(network, _params_for(network, [BIG, -BIG]), [[1.0]], T)
    assert result.trace[-1].net.tolist() == [[BIG, -BIG]]
    assert result.outputs.tolist() == [[1.0, 0.0]]
    assert math.isfinite(result.loss)
    assert result.loss == pytest.approx(expected, rel=1e-12, abs=1e-300)
    # dE/dnet = (o - t) / k, finite and bounded even though log(0) appears in the definition
    np.testing.assert_allclose(result.deltas[-1], (np.array([[1.0, 0.0]]) - T) / 2, atol=1e-300)
    assert _finite(result.gradients[0].W, result.gradients[0].b)


@pytest.mark.parametrize(
    ("T", "expected"),
    [
        ([[1.0, 0.0, 0.0]], 0.0),  # the right class at +1e4
        ([[0.0, 1.0, 0.0]], 2 * BIG),  # -log softmax at -1e4: logsumexp(net) - net = 2e4
        ([[0.0, 0.0, 1.0]], BIG),
        ([[0.25, 0.25, 0.5]], 0.25 * 0 + 0.25 * 2 * BIG + 0.5 * BIG),
    ],
)
def test_cross_entropy_is_finite_at_plus_minus_1e4(T: list[list[float]], expected: float) -> None:
    network = _last_layer_net_of("softmax", "cross_entropy", [BIG, -BIG, 0.0])
    result = gradient(network, _params_for(network, [BIG, -BIG, 0.0]), [[1.0]], T)
    assert math.isfinite(result.loss)
    assert result.loss == pytest.approx(expected, rel=1e-12, abs=1e-300)
    np.testing.assert_allclose(result.deltas[-1], np.array([[1.0, 0.0, 0.0]]) - T, atol=1e-300)
    assert _finite(result.gradients[0].W, result.gradients[0].b)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("loss", ["half_squared_error", "mean_squared_error"])
def test_saturated_outputs_with_squared_errors_are_finite(
    activation: Activation, loss: Loss
) -> None:
    network = _last_layer_net_of(activation, loss, [BIG, -BIG])
    params = _params_for(network, [BIG, -BIG])
    result = gradient(network, params, [[1.0], [-1.0]], [[0.5, 0.5], [0.5, 0.5]])
    assert math.isfinite(result.loss)
    assert _finite(*result.deltas, result.gradients[0].W, result.gradients[0].b)


def test_a_deep_network_driven_to_plus_minus_1e4_stays_finite() -> None:
    """Hidden tanh layers saturate to +-1, the output's net reaches +-1e4."""
    network = Network(
        2, (Layer(3, "tanh"), Layer(2, "sigmoid"), Layer(3, "softmax")), "cross_entropy"
    )
    params = check_parameters(
        network,
        [
            (np.full((2, 3), BIG), np.zeros(3)),
            (np.full((3, 2), BIG), np.array([-BIG, 0.0])),
            ([[BIG, -BIG, 0.0], [BIG, -BIG, 0.0]], [-BIG, 0.0, 0.0]),
        ],
    )
    result = gradient(network, params, [[1.0, 1.0], [-1.0, -1.0]], [[0, 1, 0], [1, 0, 0]])
    assert abs(result.trace[-1].net).max() >= BIG
    assert math.isfinite(result.loss)
    assert _finite(*result.deltas, *(g.W for g in result.gradients))


# -- the losses against their definitions, by hand -----------------------------------------

OUT = [[0.3, -1.2, 2.5], [0.05, 0.7, -0.4]]
TARGET = [[1.0, 0.0, -0.5], [0.2, 0.9, 1.1]]
PROB = [[0.0, 1.0, 0.0], [0.3, 0.5, 0.2]]  # a one-hot row and a soft row


def _logits_network(activation: Activation, loss: Loss) -> tuple[Network, Params]:
    """Outputs whose net inputs are the batch's inputs: identity weights, zero biases."""
    network = Network(3, (Layer(3, activation),), loss)
    return network, check_parameters(network, [(np.eye(3), np.zeros(3))])


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_mean_squared_error_is_pytorchs_mse_loss_with_mean_reduction() -> None:
    network, params = _logits_network("identity", "mean_squared_error")
    # torch.nn.MSELoss(): mean over every element of (o - t)^2
    squares = [
        (o - t) ** 2
        for ro, rt in zip(OUT, TARGET, strict=True)
        for o, t in zip(ro, rt, strict=True)
    ]
    expected = sum(squares) / len(squares)
    assert gradient(network, params, OUT, TARGET).loss == pytest.approx(expected, rel=1e-14)


def test_half_squared_error_is_half_the_summed_squares_averaged_over_the_batch() -> None:
    network, params = _logits_network("identity", "half_squared_error")
    per_sample = [
        0.5 * sum((o - t) ** 2 for o, t in zip(ro, rt, strict=True))
        for ro, rt in zip(OUT, TARGET, strict=True)
    ]
    expected = sum(per_sample) / len(per_sample)
    assert gradient(network, params, OUT, TARGET).loss == pytest.approx(expected, rel=1e-14)


def test_binary_cross_entropy_is_pytorchs_bce_loss_with_mean_reduction() -> None:
    network, params = _logits_network("sigmoid", "binary_cross_entropy")
    T = [[1.0, 0.0, 0.25], [0.6, 1.0, 0.0]]
    # torch.nn.BCELoss() on o = sigmoid(x): mean of -(t log o + (1 - t) log(1 - o))
    terms = [
        -(t * math.log(_sigmoid(x)) + (1 - t) * math.log(1 - _sigmoid(x)))
        for rx, rt in zip(OUT, T, strict=True)
        for x, t in zip(rx, rt, strict=True)
    ]
    expected = sum(terms) / len(terms)
    assert gradient(network, params, OUT, T).loss == pytest.approx(expected, rel=1e-13)


def test_cross_entropy_is_pytorchs_cross_entropy_loss_with_probability_targets() -> None:
    network, params = _logits_network("softmax", "cross_entropy")
    # torch.nn.CrossEntropyLoss() on logits x with probability targets:
    # mean over the batch of -sum_c t_c log(e^x_c / sum_k e^x_k)
    per_sample = [
        -sum(
            t * math.log(math.exp(x) / sum(math.exp(v) for v in rx))
            for x, t in zip(rx, rt, strict=True)
        )
        for rx, rt in zip(OUT, PROB, strict=True)
    ]
    expected = sum(per_sample) / len(per_sample)
    assert gradient(network, params, OUT, PROB).loss == pytest.approx(expected, rel=1e-13)


def test_cross_entropy_with_one_hot_targets_is_the_class_index_form() -> None:
    network, params = _logits_network("softmax", "cross_entropy")
    classes = [2, 0]
    T = [[1.0 if c == k else 0.0 for c in range(3)] for k in classes]
    # CrossEntropyLoss with class indices: mean of logsumexp(x) - x[class]
    per_sample = [
        math.log(sum(math.exp(v) for v in rx)) - rx[k] for rx, k in zip(OUT, classes, strict=True)
    ]
    expected = sum(per_sample) / len(per_sample)
    assert gradient(network, params, OUT, T).loss == pytest.approx(expected, rel=1e-13)


def test_cross_entropy_gradient_is_softmax_minus_target_over_rows() -> None:
    network, params = _logits_network("softmax", "cross_entropy")
    result = gradient(network, params, OUT, PROB)
    expected = [
        [
            (math.exp(x) / sum(math.exp(v) for v in rx) - t) / len(OUT)
            for x, t in zip(rx, rt, strict=True)
        ]
        for rx, rt in zip(OUT, PROB, strict=True)
    ]
    np.testing.assert_allclose(result.deltas[0], expected, rtol=1e-13, atol=1e-16)


# -- overflow raises -----------------------------------------------------------------------


def _identity_network(dtype: DType = "float64") -> Network:
    return Network(2, (Layer(2, "identity"), Layer(2, "identity")), "half_squared_error", dtype)


def _identity_params(network: Network, w0: float, w1: float) -> Params:
    return check_parameters(
        network, [(np.full((2, 2), w0), np.zeros(2)), (np.full((2, 2), w1), np.zeros(2))]
    )


@pytest.mark.parametrize(
    ("w0", "w1", "layer"), [(1e10, 1e10, 0), (1.0, 1e10, 1)], ids=["layer 0", "layer 1"]
)
def test_forward_that_overflows_raises_numeric_overflow(w0: float, w1: float, layer: int) -> None:
    network = _identity_network()
    params = _identity_params(network, w0, w1)
    with pytest.raises(NumericOverflow) as info:
        forward(network, params, [[1e300, 1e300]])
    assert info.value.pointer == f"/layers/{layer}"
    assert f"layer {layer}" in info.value.message and "float64" in info.value.message
    with pytest.raises(NumericOverflow):
        gradient(network, params, [[1e300, 1e300]], [[0.0, 0.0]])


def test_forward_that_overflows_in_float32_raises_numeric_overflow() -> None:
    network = _identity_network("float32")
    params = _identity_params(network, 1e10, 1.0)
    in_float64 = _identity_network("float64")
    assert _finite(
        forward(in_float64, _identity_params(in_float64, 1e10, 1.0), [[1e30, 0.0]])[-1].out
    )
    with pytest.raises(NumericOverflow) as info:
        forward(network, params, [[1e30, 0.0]])  # 1e40 is beyond float32's 3.4e38
    assert info.value.pointer == "/layers/0" and "float32" in info.value.message


def test_leaky_relu_output_that_overflows_raises_numeric_overflow() -> None:
    network = Network(1, (Layer(1, "leaky_relu", negative_slope=1e300),), "half_squared_error")
    params = check_parameters(network, [([[1e10]], [0.0])])
    with pytest.raises(NumericOverflow) as info:
        forward(network, params, [[-1.0]])
    assert info.value.pointer == "/layers/0"


def test_loss_that_overflows_raises_numeric_overflow() -> None:
    network = _identity_network()
    params = _identity_params(network, 1.0, 1.0)
    assert _finite(forward(network, params, [[1e200, 0.0]])[-1].out)  # 1e200: finite outputs
    with pytest.raises(NumericOverflow) as info:
        gradient(network, params, [[1e200, 0.0]], [[0.0, 0.0]])  # (1e200)^2 is not
    assert "loss" in info.value.message


# -- dtype ---------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["cross_entropy", "mean_squared_error"])
def test_float32_is_kept_through_forward_and_gradient(loss: Loss) -> None:
    network = Network(
        4, (Layer(5, "relu"), Layer(4, "leaky_relu"), Layer(3, "softmax")), loss, "float32"
    )
    params = initialize(network, "he_normal", seed=2)
    X = np.random.default_rng(0).normal(size=(6, 4))  # float64 in, float32 inside
    T = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    for p in params:
        assert p.W.dtype == p.b.dtype == np.float32
    for layer in forward(network, params, X):
        assert layer.net.dtype == layer.out.dtype == np.float32
    result = gradient(network, params, X, T)
    assert isinstance(result.loss, float)
    for layer in result.trace:
        assert layer.net.dtype == layer.out.dtype == np.float32
    for g, d in zip(result.gradients, result.deltas, strict=True):
        assert g.W.dtype == g.b.dtype == d.dtype == np.float32


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "half_squared_error"])
def test_float32_sigmoid_losses_keep_float32(loss: Loss) -> None:
    network = Network(2, (Layer(3, "tanh"), Layer(2, "sigmoid")), loss, "float32")
    params = initialize(network, "xavier_normal", seed=1)
    result = gradient(network, params, [[0.5, -1.0]], [[0.0, 1.0]])
    assert all(d.dtype == np.float32 for d in result.deltas)
    assert all(g.W.dtype == np.float32 for g in result.gradients)


# -- nothing kept between calls ------------------------------------------------------------


def _copy(params: Params) -> Params:
    return tuple(LayerParams(p.W.copy(), p.b.copy()) for p in params)


def test_gradient_keeps_no_state_between_calls() -> None:
    network = Network(3, (Layer(4, "tanh"), Layer(2, "softmax")), "cross_entropy")
    params = initialize(network, "xavier_uniform", seed=11)
    before = _copy(params)
    rng = np.random.default_rng(1)
    X1, X2 = rng.normal(size=(5, 3)), rng.normal(size=(7, 3))
    T1, T2 = np.eye(2)[rng.integers(0, 2, 5)], np.eye(2)[rng.integers(0, 2, 7)]
    X1_copy, T1_copy = X1.copy(), T1.copy()

    first = gradient(network, params, X1, T1)
    first_grads = _copy(first.gradients)
    second = gradient(network, params, X2, T2)
    again = gradient(network, params, X1, T1)

    assert second.loss != first.loss
    assert second.deltas[0].shape == (7, 4)
    assert again.loss == first.loss
    for g, g_copy, g_again in zip(first.gradients, first_grads, again.gradients, strict=True):
        # the first result is untouched by the later calls, and recomputed identically
        assert np.array_equal(g.W, g_copy.W) and np.array_equal(g.b, g_copy.b)
        assert np.array_equal(g_again.W, g_copy.W) and np.array_equal(g_again.b, g_copy.b)
    for p, q in zip(params, before, strict=True):
        assert np.array_equal(p.W, q.W) and np.array_equal(p.b, q.b)
    assert np.array_equal(X1, X1_copy) and np.array_equal(T1, T1_copy)


def test_forward_does_not_modify_params_or_inputs() -> None:
    network = Network(2, (Layer(3, "identity"), Layer(2, "relu")), "half_squared_error")
    params = initialize(network, "he_uniform", seed=4)
    before = _copy(params)
    X = np.array([[1.0, -2.0], [0.5, 0.25]])
    trace = forward(network, params, X)
    trace[0].out[...] = 0.0  # a caller scribbling on a result ...
    for p, q in zip(params, before, strict=True):  # ... touches neither params nor inputs
        assert np.array_equal(p.W, q.W) and np.array_equal(p.b, q.b)
    assert X.tolist() == [[1.0, -2.0], [0.5, 0.25]]
    np.testing.assert_array_equal(forward(network, params, X)[0].net, X @ before[0].W + before[0].b)
