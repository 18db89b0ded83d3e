"""The gradient check: it passes on correct backpropagation (the seed, every pairing of
activations and losses, float32), fails on a wrong one, and samples as documented."""

from __future__ import annotations

import math

import pytest

from service.core import (
    Activation,
    DType,
    FloatArray,
    InvalidOption,
    Layer,
    Loss,
    Network,
    NumericOverflow,
    Params,
    Trace,
    check_parameters,
    gradient,
    gradient_check,
    parameter_names,
    propagation,
    to_named,
)
from service.core.gradient_check import relative_error, sampled
from tests.core.test_gradients import HIDDEN, OUTPUT_AND_LOSS, make_case
from tests.seed import SEED

X, T = [SEED["input"]], [SEED["target"]]


def seed(dtype: DType = "float64") -> tuple[Network, Params]:
    spec = SEED["network"]
    layers = tuple(Layer(layer["units"], layer["activation"]) for layer in spec["layers"])
    network = Network(spec["inputs"], layers, "half_squared_error", dtype)
    weights, biases = SEED["parameters"]["weights"], SEED["parameters"]["biases"]
    return network, check_parameters(network, list(zip(weights, biases, strict=True)))


def test_the_seed_passes_with_the_gradients_of_backpropagation() -> None:
    network, params = seed()
    check = gradient_check(network, params, X, T)
    assert check.max_relative_error < 1e-7
    assert check.loss == SEED["loss"]
    assert [p.name for p in check.parameters] == parameter_names(network)
    assert {p.name: p.backprop for p in check.parameters} == SEED["gradients_named"]
    # The seed's dead n4 (net -0.079): its weights and bias have no effect within epsilon.
    for name in ("w2", "w5", "w10", "w11", "w12", "b2"):
        entry = next(p for p in check.parameters if p.name == name)
        assert entry.backprop == entry.numeric == entry.relative_error == 0.0


def test_a_wrong_backpropagation_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deltas off by 10% below the last layer: the check must see it."""
    right = propagation.backward

    def wrong(
        network: Network, params: Params, trace: Trace, delta: FloatArray
    ) -> tuple[FloatArray, ...]:
        deltas = right(network, params, trace, delta)
        return (*(1.1 * d for d in deltas[:-1]), deltas[-1])

    monkeypatch.setattr(propagation, "backward", wrong)
    network, params = seed()
    check = gradient_check(network, params, X, T)
    assert check.max_relative_error > 0.05
    w1 = next(p for p in check.parameters if p.name == "w1")
    assert w1.relative_error == pytest.approx(0.1 / 1.1, rel=1e-6)
    w16 = next(p for p in check.parameters if p.name == "w16")  # the last layer's: still right
    assert w16.relative_error < 1e-7


@pytest.mark.parametrize(("out_activation", "loss"), OUTPUT_AND_LOSS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_every_pairing_passes(hidden: Activation, out_activation: Activation, loss: Loss) -> None:
    layers = (Layer(4, hidden, 0.1), Layer(3, out_activation, 0.1))
    case = make_case(Network(3, layers, loss), rows=3, seed=7)
    check = gradient_check(case.network, case.params, case.X, case.T)
    # Relative to the loss: tiny gradients are differences of rounding noise.
    for p in check.parameters:
        assert abs(p.backprop - p.numeric) <= 1e-6 * abs(p.backprop) + 1e-9 * max(1, check.loss)


def test_float32_is_checked_in_float64_against_its_own_gradient() -> None:
    network, params = seed("float32")
    check = gradient_check(network, params, X, T)
    grads = to_named(gradient(network, params, X, T).gradients)
    assert {p.name: p.backprop for p in check.parameters} == grads
    assert 1e-9 < check.max_relative_error < 1e-4  # float32's rounding, not a wrong gradient


@pytest.mark.parametrize("sample", [1, 2, 7, 24, 25, 100])
def test_sample_checks_that_many_distinct_parameters_spread_evenly(sample: int) -> None:
    network, params = seed()
    check = gradient_check(network, params, X, T, sample=sample)
    names = [p.name for p in check.parameters]
    assert len(names) == len(set(names)) == min(sample, 25)
    again = gradient_check(network, params, X, T, sample=sample)
    assert [p.name for p in again.parameters] == names
    order = parameter_names(network)
    assert names == sorted(names, key=order.index)


def test_sampled_indices_are_distinct_for_every_size() -> None:
    for count in range(1, 60):
        for sample in range(1, count + 2):
            indices = sampled(count, sample)
            assert len(set(indices)) == len(indices) == min(sample, count)
            assert all(0 <= i < count for i in indices)


def test_relative_error_is_zero_for_two_zeros_and_two_for_opposite_signs() -> None:
    assert relative_error(0.0, 0.0) == 0.0
    assert relative_error(1.0, -1.0) == 2.0
    assert relative_error(0.0, 1e-300) == 1.0
    assert relative_error(1.0, 1.1) == pytest.approx(0.1 / 1.1)
    assert math.isfinite(relative_error(1.7e308, -1.7e308))


@pytest.mark.parametrize(
    ("options", "pointer"),
    [
        ({"epsilon": 0.0}, "/epsilon"),
        ({"epsilon": -1e-6}, "/epsilon"),
        ({"epsilon": math.inf}, "/epsilon"),
        ({"epsilon": math.nan}, "/epsilon"),
        ({"sample": 0}, "/sample"),
    ],
)
def test_bad_options_are_refused_with_a_pointer(options: dict[str, float], pointer: str) -> None:
    network, params = seed()
    with pytest.raises(InvalidOption) as error:
        gradient_check(network, params, X, T, **options)  # type: ignore[arg-type]
    assert error.value.pointer == pointer


def test_a_perturbation_that_overflows_the_loss_points_at_epsilon() -> None:
    network = Network(1, (Layer(1, "identity"),), "half_squared_error")
    params = check_parameters(network, [([[1.0]], [0.0])])
    with pytest.raises(NumericOverflow) as error:
        gradient_check(network, params, [[1e10]], [[0.0]], epsilon=1e300)
    assert error.value.pointer == "/epsilon"
