"""Initial parameters: shapes, dtype, zero biases, the bounds and spreads of each scheme, and
bit-identical draws for a seed, pinned to NumPy's PCG64 stream."""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import pytest

from service.core import SCHEMES, DType, Layer, Network, Scheme, initialize

NETWORK = Network(
    5, (Layer(7, "relu"), Layer(3, "tanh"), Layer(2, "sigmoid")), "half_squared_error"
)

UNIFORM_LIMIT = {
    "uniform": lambda n_in, n_out: 1 / math.sqrt(n_in),
    "xavier_uniform": lambda n_in, n_out: math.sqrt(6 / (n_in + n_out)),
    "he_uniform": lambda n_in, n_out: math.sqrt(6 / n_in),
}
NORMAL_STD = {
    "xavier_normal": lambda n_in, n_out: math.sqrt(2 / (n_in + n_out)),
    "he_normal": lambda n_in, n_out: math.sqrt(2 / n_in),
}


def _network(dtype: DType) -> Network:
    return Network(NETWORK.inputs, NETWORK.layers, NETWORK.loss, dtype)


def test_the_schemes_are_the_documented_six() -> None:
    assert set(SCHEMES) == {"zeros", *UNIFORM_LIMIT, *NORMAL_STD}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_initialize_gives_the_network_shapes_and_dtype(scheme: Scheme, dtype: DType) -> None:
    params = initialize(_network(dtype), scheme, seed=1)
    assert [p.W.shape for p in params] == [(5, 7), (7, 3), (3, 2)]
    assert [p.b.shape for p in params] == [(7,), (3,), (2,)]
    for p in params:
        assert p.W.dtype == p.b.dtype == np.dtype(dtype)
        assert np.isfinite(p.W).all()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_initialize_starts_biases_at_zero(scheme: Scheme) -> None:
    for p in initialize(NETWORK, scheme, seed=2):
        assert not p.b.any()


def test_zeros_scheme_gives_zero_weights() -> None:
    for p in initialize(NETWORK, "zeros", seed=3):
        assert not p.W.any()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scheme", list(UNIFORM_LIMIT))
def test_uniform_schemes_stay_within_their_limit(scheme: Scheme, dtype: DType) -> None:
    network = Network(300, (Layer(200, "relu"), Layer(50, "relu")), "half_squared_error", dtype)
    params = initialize(network, scheme, seed=4)
    for (n_in, n_out), p in zip(network.shapes, params, strict=True):
        limit = UNIFORM_LIMIT[scheme](n_in, n_out)
        # float32 may round a draw just below the limit to the float32 next to it
        slack = 1 + (np.finfo(np.float32).eps if dtype == "float32" else 0.0)
        W = p.W.astype(np.float64)
        assert np.abs(W).max() <= limit * slack
        assert np.abs(W).max() >= 0.99 * limit  # and the draws fill the range
        # U(-a, a) has mean 0 and standard deviation a / sqrt(3)
        assert abs(W.mean()) <= 0.05 * limit
        assert W.std() == pytest.approx(limit / math.sqrt(3), rel=0.03)


@pytest.mark.parametrize("scheme", list(NORMAL_STD))
def test_normal_schemes_have_the_formula_standard_deviation(scheme: Scheme) -> None:
    network = Network(400, (Layer(600, "relu"), Layer(300, "relu")), "half_squared_error")
    params = initialize(network, scheme, seed=5)
    for (n_in, n_out), p in zip(network.shapes, params, strict=True):
        std = NORMAL_STD[scheme](n_in, n_out)
        assert p.W.std() == pytest.approx(std, rel=0.03)
        assert abs(p.W.mean()) <= 0.03 * std


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_same_seed_gives_bit_identical_parameters(scheme: Scheme) -> None:
    first = initialize(NETWORK, scheme, seed=123)
    second = initialize(NETWORK, scheme, seed=123)
    for p, q in zip(first, second, strict=True):
        assert p.W.tobytes() == q.W.tobytes() and p.b.tobytes() == q.b.tobytes()


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s != "zeros"])
def test_another_seed_gives_other_parameters(scheme: Scheme) -> None:
    first = initialize(NETWORK, scheme, seed=123)
    other = initialize(NETWORK, scheme, seed=124)
    for p, q in zip(first, other, strict=True):
        assert not np.array_equal(p.W, q.W)


def test_xavier_uniform_seed_0_is_numpys_pcg64_stream() -> None:
    """The cross-machine contract: a 2-3 layer drawn with seed 0 is
    ``Generator(PCG64(0)).uniform(-a, a, (2, 3))`` with ``a = sqrt(6 / (2 + 3))``."""
    network = Network(2, (Layer(3, "identity"),), "half_squared_error")
    (p,) = initialize(network, "xavier_uniform", seed=0)
    a = math.sqrt(6 / (2 + 3))
    expected = np.random.Generator(np.random.PCG64(0)).uniform(-a, a, (2, 3))
    assert np.array_equal(p.W, expected)


def test_later_layers_continue_the_same_stream() -> None:
    network = Network(2, (Layer(3, "relu"), Layer(2, "identity")), "half_squared_error")
    (p0, p1) = initialize(network, "he_normal", seed=9)
    rng = np.random.Generator(np.random.PCG64(9))
    assert np.array_equal(p0.W, rng.normal(0.0, math.sqrt(2 / 2), (2, 3)))
    assert np.array_equal(p1.W, rng.normal(0.0, math.sqrt(2 / 3), (3, 2)))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_float32_parameters_are_the_float64_draws_rounded(scheme: Scheme) -> None:
    in_64 = initialize(NETWORK, scheme, seed=6)
    in_32 = initialize(_network("float32"), scheme, seed=6)
    for p, q in zip(in_64, in_32, strict=True):
        assert np.array_equal(q.W, p.W.astype(np.float32))


def test_initialize_rejects_an_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="glorot"):
        initialize(NETWORK, cast(Any, "glorot"), seed=0)
