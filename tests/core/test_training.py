"""Optimizers: XOR is learnt with each of them, their updates equal the published formulas
computed by hand, their state is plain data that resumes training bit for bit, and nothing
given to ``step`` is modified."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.core import (
    SGD,
    Adam,
    Layer,
    LayerParams,
    Network,
    NumericOverflow,
    Optimizer,
    OptimizerState,
    Params,
    check_parameters,
    gradient,
    initialize,
    step,
)

XOR_X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
XOR_T = [[0.0], [1.0], [1.0], [0.0]]
XOR_NETWORK = Network(2, (Layer(4, "tanh"), Layer(1, "sigmoid")), "binary_cross_entropy")
MAX_STEPS = 2000  # each of these optimizers needs 100 to 700 full-batch steps

OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": SGD(learning_rate=1.0),
    "momentum": SGD(learning_rate=0.1, momentum=0.9),
    "nesterov": SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
    "adam": Adam(learning_rate=0.05),
    "sgd_weight_decay": SGD(learning_rate=0.5, weight_decay=1e-4),
    "adam_weight_decay": Adam(learning_rate=0.05, weight_decay=1e-4),
}


def _train(
    optimizer: Optimizer, params: Params, steps: int, state: OptimizerState | None = None
) -> tuple[Params, OptimizerState | None]:
    for _ in range(steps):
        result = gradient(XOR_NETWORK, params, XOR_X, XOR_T)
        params, state = step(optimizer, params, result.gradients, state)
    return params, state


def _copy_params(params: Params) -> Params:
    return tuple(LayerParams(p.W.copy(), p.b.copy()) for p in params)


def _copy_state(state: OptimizerState) -> OptimizerState:
    return OptimizerState(state.step, {k: _copy_params(v) for k, v in state.slots.items()})


def _assert_params_equal(a: Params, b: Params) -> None:
    assert len(a) == len(b)
    for p, q in zip(a, b, strict=True):
        assert p.W.dtype == q.W.dtype and p.b.dtype == q.b.dtype
        assert np.array_equal(p.W, q.W) and np.array_equal(p.b, q.b)


def _assert_states_equal(a: OptimizerState, b: OptimizerState) -> None:
    assert a.step == b.step
    assert set(a.slots) == set(b.slots)
    for name in a.slots:
        _assert_params_equal(a.slots[name], b.slots[name])


# -- XOR -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_xor_is_learnt_to_a_loss_below_0_01(name: str, seed: int) -> None:
    optimizer = OPTIMIZERS[name]
    params = initialize(XOR_NETWORK, "xavier_uniform", seed=seed)
    state: OptimizerState | None = None
    taken = 0
    result = gradient(XOR_NETWORK, params, XOR_X, XOR_T)
    while result.loss >= 0.01 and taken < MAX_STEPS:
        params, state = step(optimizer, params, result.gradients, state)
        taken += 1
        result = gradient(XOR_NETWORK, params, XOR_X, XOR_T)
    assert result.loss < 0.01, f"{name}: loss {result.loss} after {taken} steps"
    assert state is not None and state.step == taken
    predictions = (result.outputs[:, 0] > 0.5).tolist()
    assert predictions == [False, True, True, False]


# -- state: data that resumes training bit for bit --------------------------------------------


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resuming_with_the_returned_state_equals_training_in_one_go(name: str) -> None:
    optimizer = OPTIMIZERS[name]
    start = initialize(XOR_NETWORK, "xavier_uniform", seed=3)
    n = 25
    in_one_go, state_one_go = _train(optimizer, start, 2 * n)
    halfway, state_halfway = _train(optimizer, start, n)
    assert state_halfway is not None
    # resume from copies, as from a state stored and loaded again
    resumed, state_resumed = _train(optimizer, _copy_params(halfway), n, _copy_state(state_halfway))
    assert state_one_go is not None and state_resumed is not None
    _assert_params_equal(resumed, in_one_go)
    _assert_states_equal(state_resumed, state_one_go)
    assert state_one_go.step == 2 * n


def test_restarting_without_the_state_differs_for_momentum() -> None:
    """The state matters: dropping the velocity halfway gives other parameters."""
    optimizer = OPTIMIZERS["momentum"]
    start = initialize(XOR_NETWORK, "xavier_uniform", seed=3)
    in_one_go, _ = _train(optimizer, start, 20)
    halfway, _ = _train(optimizer, start, 10)
    restarted, _ = _train(optimizer, halfway, 10)
    assert not np.array_equal(restarted[0].W, in_one_go[0].W)


@pytest.mark.parametrize(
    ("optimizer", "slots"),
    [
        (SGD(learning_rate=0.1), set()),
        (SGD(learning_rate=0.1, momentum=0.9), {"velocity"}),
        (SGD(learning_rate=0.1, momentum=0.9, nesterov=True), {"velocity"}),
        (Adam(), {"m", "v"}),
    ],
)
def test_state_counts_steps_and_holds_its_slots(optimizer: Optimizer, slots: set[str]) -> None:
    params = initialize(XOR_NETWORK, "xavier_uniform", seed=0)
    _, state = _train(optimizer, params, 3)
    assert state is not None
    assert state.step == 3
    assert set(state.slots) == slots
    for values in state.slots.values():
        for v, p in zip(values, params, strict=True):
            assert v.W.shape == p.W.shape and v.b.shape == p.b.shape


# -- one step against the formulas, computed by hand ------------------------------------------

W0 = [[0.5, -1.25], [2.0, 0.75]]
B0 = [0.1, -0.3]
GW = [[0.2, -0.4], [1.5, -0.05]]
GB = [-0.6, 0.25]
V_W = [[0.3, 0.1], [-0.2, 0.4]]  # a velocity (or Adam's m) carried over from earlier steps
V_B = [0.05, -0.15]
S_W = [[0.01, 0.04], [0.09, 0.0025]]  # Adam's v carried over
S_B = [0.16, 0.0004]
TINY = Network(2, (Layer(2, "identity"),), "half_squared_error")


def _tiny(W: list[list[float]], b: list[float]) -> Params:
    return check_parameters(TINY, [(W, b)])


def _expect(params: Params, W: list[list[float]], b: list[float]) -> None:
    np.testing.assert_allclose(params[0].W, np.array(W), rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(params[0].b, np.array(b), rtol=1e-15, atol=1e-15)


def _cells() -> list[tuple[int, int]]:
    return [(i, j) for i in range(2) for j in range(2)]


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_sgd_step_is_w_minus_lr_times_gradient(weight_decay: float) -> None:
    lr = 0.05
    new, state = step(
        SGD(learning_rate=lr, weight_decay=weight_decay), _tiny(W0, B0), _tiny(GW, GB)
    )
    # weight decay adds weight_decay * W to the weights' gradient, not to the biases'
    W = [[W0[i][j] - lr * (GW[i][j] + weight_decay * W0[i][j]) for j in range(2)] for i in range(2)]
    b = [B0[j] - lr * GB[j] for j in range(2)]
    _expect(new, W, b)
    assert state.step == 1


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_momentum_step_follows_pytorch(nesterov: bool, weight_decay: float) -> None:
    lr, mu = 0.05, 0.9
    state = OptimizerState(4, {"velocity": _tiny(V_W, V_B)})
    new, new_state = step(
        SGD(learning_rate=lr, momentum=mu, nesterov=nesterov, weight_decay=weight_decay),
        _tiny(W0, B0),
        _tiny(GW, GB),
        state,
    )
    W = [[0.0, 0.0], [0.0, 0.0]]
    vW = [[0.0, 0.0], [0.0, 0.0]]
    for i, j in _cells():
        g = GW[i][j] + weight_decay * W0[i][j]
        vW[i][j] = mu * V_W[i][j] + g  # v = mu * v + g
        W[i][j] = W0[i][j] - lr * ((g + mu * vW[i][j]) if nesterov else vW[i][j])
    vb = [mu * V_B[j] + GB[j] for j in range(2)]
    b = [B0[j] - lr * ((GB[j] + mu * vb[j]) if nesterov else vb[j]) for j in range(2)]
    _expect(new, W, b)
    _expect(new_state.slots["velocity"], vW, vb)
    assert new_state.step == 5


def test_first_momentum_step_starts_from_zero_velocity() -> None:
    lr, mu = 0.05, 0.9
    new, state = step(SGD(learning_rate=lr, momentum=mu), _tiny(W0, B0), _tiny(GW, GB))
    _expect(
        new,
        [[W0[i][j] - lr * GW[i][j] for j in range(2)] for i in range(2)],
        [B0[j] - lr * GB[j] for j in range(2)],
    )
    _expect(state.slots["velocity"], GW, GB)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("carried", [False, True])
def test_adam_step_follows_kingma_and_ba(weight_decay: float, carried: bool) -> None:
    lr, b1, b2, eps = 0.01, 0.8, 0.99, 1e-3
    t = 3 if carried else 1
    state = OptimizerState(2, {"m": _tiny(V_W, V_B), "v": _tiny(S_W, S_B)}) if carried else None
    new, new_state = step(
        Adam(learning_rate=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=weight_decay),
        _tiny(W0, B0),
        _tiny(GW, GB),
        state,
    )

    def update(p: float, g: float, m0: float, v0: float) -> tuple[float, float, float]:
        m = b1 * m0 + (1 - b1) * g
        v = b2 * v0 + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        return p - lr * m_hat / (math.sqrt(v_hat) + eps), m, v

    W = [[0.0, 0.0], [0.0, 0.0]]
    mW = [[0.0, 0.0], [0.0, 0.0]]
    vW = [[0.0, 0.0], [0.0, 0.0]]
    for i, j in _cells():
        g = GW[i][j] + weight_decay * W0[i][j]
        m0, v0 = (V_W[i][j], S_W[i][j]) if carried else (0.0, 0.0)
        W[i][j], mW[i][j], vW[i][j] = update(W0[i][j], g, m0, v0)
    b, mb, vb = [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    for j in range(2):
        m0, v0 = (V_B[j], S_B[j]) if carried else (0.0, 0.0)
        b[j], mb[j], vb[j] = update(B0[j], GB[j], m0, v0)
    _expect(new, W, b)
    _expect(new_state.slots["m"], mW, mb)
    _expect(new_state.slots["v"], vW, vb)
    assert new_state.step == t


def test_first_adam_step_moves_each_weight_by_about_the_learning_rate() -> None:
    """With bias correction, m_hat / sqrt(v_hat) = g / |g| on the first step."""
    lr = 0.01
    new, _ = step(Adam(learning_rate=lr, eps=1e-12), _tiny(W0, B0), _tiny(GW, GB))
    moved = np.array(W0) - new[0].W
    np.testing.assert_allclose(moved, lr * np.sign(np.array(GW)), rtol=1e-9)


# -- purity and dtype ----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_step_never_modifies_its_inputs(name: str) -> None:
    optimizer = OPTIMIZERS[name]
    params = initialize(XOR_NETWORK, "xavier_uniform", seed=5)
    _, state = _train(optimizer, params, 2)  # a state with slots
    assert state is not None
    grads = gradient(XOR_NETWORK, params, XOR_X, XOR_T).gradients
    before = (_copy_params(params), _copy_params(grads), _copy_state(state))
    new, new_state = step(optimizer, params, grads, state)
    _assert_params_equal(params, before[0])
    _assert_params_equal(grads, before[1])
    _assert_states_equal(state, before[2])
    assert new_state is not state
    for p, q in zip(new, params, strict=True):
        assert not np.shares_memory(p.W, q.W) and not np.shares_memory(p.b, q.b)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_step_keeps_float32(name: str) -> None:
    network = Network(2, XOR_NETWORK.layers, XOR_NETWORK.loss, "float32")
    params = initialize(network, "xavier_uniform", seed=0)
    state: OptimizerState | None = None
    for _ in range(3):
        result = gradient(network, params, XOR_X, XOR_T)
        params, state = step(OPTIMIZERS[name], params, result.gradients, state)
    assert state is not None
    for p in (*params, *(q for values in state.slots.values() for q in values)):
        assert p.W.dtype == np.float32 and p.b.dtype == np.float32


def test_step_rejects_an_update_that_overflows() -> None:
    params = _tiny(W0, B0)
    grads = _tiny([[1e300, 0.0], [0.0, 0.0]], [0.0, 0.0])
    with pytest.raises(NumericOverflow) as info:
        step(SGD(learning_rate=1e10), params, grads)
    assert info.value.pointer == "/layers/0"
