"""The cost estimates, checked against the peaks measured while the work runs: an estimate is
an upper bound of the working memory (so that what is admitted fits), and not so loose that it
refuses work several times smaller than the limit."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest
from pydantic_core import to_json

from service.core import (
    Layer,
    Network,
    forward,
    forward_outputs,
    gradient,
    gradient_check,
    initialize,
    input_gradient,
    mean_gradient,
)
from service.operations import ComputeBudgetExceeded, Limits, Work, WorkTooLarge, admit
from service.operations.cost import estimate

LIMITS = Limits(max_seconds=60.0, rate=1e9, max_memory=1 << 30, max_answer=256 << 20)
SMALL_BLOCKS = Limits(max_seconds=60.0, rate=1e9, max_memory=32 << 20, max_answer=256 << 20)

WIDE = Network(1, (Layer(2048, "tanh"), Layer(1, "identity")), "half_squared_error")
DEEP = Network(8, (Layer(512, "relu"), Layer(512, "sigmoid"), Layer(3, "softmax")), "cross_entropy")
F32 = Network(
    8,
    (Layer(512, "relu"), Layer(256, "tanh"), Layer(2, "identity")),
    "mean_squared_error",
    "float32",
)


def peak(run: Callable[[], object]) -> int:
    """Bytes allocated at the peak of ``run()``, beyond what was allocated before."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        run()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def data(network: Network, rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(rows)
    X = rng.normal(size=(rows, network.inputs)).astype(network.dtype)
    T = np.full((rows, network.outputs), 1 / network.outputs, dtype=network.dtype)
    return X, T


@pytest.mark.parametrize("network", [WIDE, DEEP, F32], ids=["wide", "deep", "float32"])
@pytest.mark.parametrize("limits", [LIMITS, SMALL_BLOCKS], ids=["one-block", "blocks"])
def test_the_forward_estimate_bounds_the_measured_peak(network: Network, limits: Limits) -> None:
    params = initialize(network, "xavier_uniform", seed=1)
    X, _ = data(network, 3000)
    cost = estimate(network, Work("forward", 3000, outputs=True), limits)

    def run() -> None:
        outputs = forward_outputs(network, params, X, cost.block_rows)
        to_json({"outputs": outputs.tolist()})

    measured = peak(run)
    assert measured <= cost.memory, (measured, cost)
    assert cost.memory <= 4 * measured + (1 << 20), (measured, cost)


@pytest.mark.parametrize("network", [WIDE, DEEP, F32], ids=["wide", "deep", "float32"])
def test_the_trace_estimate_bounds_the_measured_peak(network: Network) -> None:
    params = initialize(network, "xavier_uniform", seed=1)
    X, _ = data(network, 500)
    cost = estimate(network, Work("forward", 500, outputs=True, trace=True), LIMITS)

    def run() -> None:
        trace = forward(network, params, X)
        to_json([[t.net.tolist(), t.out.tolist()] for t in trace])

    measured = peak(run)
    assert measured <= cost.memory, (measured, cost)
    assert cost.memory <= 4 * measured + (1 << 20), (measured, cost)


@pytest.mark.parametrize("network", [WIDE, DEEP, F32], ids=["wide", "deep", "float32"])
@pytest.mark.parametrize("limits", [LIMITS, SMALL_BLOCKS], ids=["one-block", "blocks"])
def test_the_gradient_estimate_bounds_the_measured_peak(network: Network, limits: Limits) -> None:
    params = initialize(network, "xavier_uniform", seed=1)
    X, T = data(network, 3000)
    cost = estimate(network, Work("gradient", 3000, parameters=True), limits)

    def run() -> None:
        _, grads = mean_gradient(network, params, X, T, cost.block_rows)
        to_json([[g.W.tolist(), g.b.tolist()] for g in grads])

    measured = peak(run)
    assert measured <= cost.memory, (measured, cost)
    assert cost.memory <= 4 * measured + (4 << 20), (measured, cost)


def test_the_estimate_with_deltas_and_trace_bounds_the_measured_peak() -> None:
    params = initialize(DEEP, "xavier_uniform", seed=1)
    X, T = data(DEEP, 500)
    work = Work("gradient", 500, parameters=True, deltas=True, trace=True)
    cost = estimate(DEEP, work, LIMITS)

    def run() -> None:
        result = gradient(DEEP, params, X, T)
        to_json([d.tolist() for d in result.deltas] + [t.out.tolist() for t in result.trace])

    measured = peak(run)
    assert measured <= cost.memory, (measured, cost)


def test_blocks_keep_a_large_batch_within_a_small_limit() -> None:
    cost = admit(WIDE, Work("forward", 100_000, outputs=True, binary=True), SMALL_BLOCKS)
    assert cost.block_rows < 100_000
    assert cost.memory <= SMALL_BLOCKS.max_memory


def test_an_answer_over_the_limit_is_refused_with_what_to_change() -> None:
    limits = Limits(max_seconds=60.0, rate=1e9, max_memory=1 << 34, max_answer=1 << 20)
    work = Work("gradient", 1000, parameters=True, deltas=True, trace=True)
    with pytest.raises(WorkTooLarge) as refused:
        admit(WIDE, work, limits)
    message = str(refused.value)
    assert "BACKPROP_MAX_ANSWER_BYTES" in message
    assert "leave out trace and deltas" in message
    assert refused.value.estimate > refused.value.limit == 1 << 20


def test_working_memory_over_the_limit_is_refused_with_what_to_change() -> None:
    work = Work("forward", 20_000, outputs=True, trace=True)
    with pytest.raises(WorkTooLarge) as refused:
        admit(WIDE, work, Limits(60.0, 1e9, 32 << 20, 1 << 34))
    assert "BACKPROP_MAX_REQUEST_MEMORY_BYTES" in str(refused.value)
    assert "leave out trace" in str(refused.value)


def test_time_is_admitted_first() -> None:
    with pytest.raises(ComputeBudgetExceeded):
        admit(WIDE, Work("gradient", 100_000), Limits(0.01, 1e9, 1 << 30, 1 << 28))


@pytest.mark.parametrize("network", [WIDE, DEEP, F32], ids=["wide", "deep", "float32"])
@pytest.mark.parametrize("limits", [LIMITS, SMALL_BLOCKS], ids=["one-block", "blocks"])
@pytest.mark.parametrize("jacobian", [False, True], ids=["gradients", "jacobian"])
def test_the_input_gradient_estimate_bounds_the_measured_peak(
    network: Network, limits: Limits, jacobian: bool
) -> None:
    params = initialize(network, "xavier_uniform", seed=1)
    X, T = data(network, 3000)
    cost = estimate(network, Work("input-gradient", 3000, jacobian=jacobian), limits)

    def run() -> None:
        result = input_gradient(network, params, X, T, cost.block_rows, jacobian)
        J = result.jacobian
        to_json([result.gradients.tolist(), J.tolist() if J is not None else None])

    measured = peak(run)
    assert measured <= cost.memory, (measured, cost)
    assert cost.memory <= 4 * measured + (4 << 20), (measured, cost)


@pytest.mark.parametrize("network", [DEEP, F32], ids=["deep", "float32"])
def test_the_gradient_check_estimate_bounds_the_measured_peak(network: Network) -> None:
    params = initialize(network, "xavier_uniform", seed=1)
    X, T = data(network, 200)
    cost = estimate(network, Work("gradient-check", 200, checked=20), LIMITS)
    measured = peak(lambda: gradient_check(network, params, X, T, sample=20))
    assert measured <= cost.memory, (measured, cost)
    assert cost.memory <= 4 * measured + (4 << 20), (measured, cost)


def test_a_jacobian_over_the_answer_limit_is_refused_saying_fewer_rows() -> None:
    limits = Limits(max_seconds=60.0, rate=1e9, max_memory=1 << 34, max_answer=1 << 20)
    admit(DEEP, Work("input-gradient", 5000), limits)  # 40,000 numbers: within
    with pytest.raises(WorkTooLarge) as refused:
        admit(DEEP, Work("input-gradient", 5000, jacobian=True), limits)
    assert "send fewer rows for the Jacobian" in str(refused.value)


def test_a_gradient_check_over_a_limit_is_refused_saying_pass_sample() -> None:
    limits = Limits(max_seconds=1e9, rate=1e9, max_memory=1 << 34, max_answer=1 << 20)
    checked = DEEP.parameter_count
    with pytest.raises(WorkTooLarge) as refused:
        admit(DEEP, Work("gradient-check", 1, checked=checked), limits)
    assert "pass sample" in str(refused.value)
    with pytest.raises(ComputeBudgetExceeded) as slow:
        admit(DEEP, Work("gradient-check", 100, checked=checked), LIMITS)
    assert "pass sample" in str(slow.value)
    admit(DEEP, Work("gradient-check", 100, checked=100), LIMITS)
