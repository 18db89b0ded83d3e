"""The worked example as a walkthrough: every figure of the worked-example file appears, exactly,
and any small network gets one."""

from __future__ import annotations

import numpy as np
import pytest

from service.core import (
    SGD,
    Activation,
    Layer,
    Loss,
    Network,
    check_parameters,
    gradient,
    step,
    to_named,
)
from service.learn.limits import WALKTHROUGH_MAX_PARAMETERS, WALKTHROUGH_MAX_UNITS, TooLarge
from service.learn.walkthrough import walkthrough
from tests.api.support import SEED
from tests.learn.support import SEED_NET, SEED_PARAMS, SEED_T, SEED_X, seed_figures

SEED_WALKTHROUGH = walkthrough(
    SEED_NET, SEED_PARAMS, SEED_X, SEED_T, SEED["learning_rate"], model="seed", version=1
)


def test_seed_walkthrough_holds_every_figure_of_the_worked_example() -> None:
    figures = seed_figures()
    assert len(figures) > 100
    missing = [v for v in figures if repr(v) not in SEED_WALKTHROUGH]
    assert missing == []
    assert "0.31480674784787793" in SEED_WALKTHROUGH


def test_seed_walkthrough_follows_the_blogs_sequence() -> None:
    headings = [
        "## 1. Initial values",
        "## 2. Forward pass",
        "## 3. Total error",
        "## 4. Backpropagation",
        "### The deltas",
        "## 5. The update",
        "## 6. After the step",
    ]
    positions = [SEED_WALKTHROUGH.index(h) for h in headings]
    assert positions == sorted(positions)
    # Gradients from the output back: w16, w17, w18, b7 before w7, and w7 before w1.
    order = [
        SEED_WALKTHROUGH.index(f"#### ∂E/∂{p}\n") for p in ("w16", "w17", "w18", "b7", "w7", "w1")
    ]
    assert order == sorted(order)


def test_seed_walkthrough_fills_the_numbers_into_the_formulas() -> None:
    text = SEED_WALKTHROUGH
    assert (
        r"net_{n_{3}} = w_{1} \cdot x_{1} + w_{4} \cdot x_{2} + b_{1} = "
        r"0.1 \cdot 0.23 + 0.4 \cdot 0.55 + 0.1 = 0.343" in text
    )
    assert r"\max(0, -0.07900000000000001) = 0.0" in text
    assert r"(0.01 - 0.8034818811389179)^2\right) = 0.31480674784787793" in text
    assert (
        r"w_{16}^{\text{new}} = w_{16} - \eta \cdot \frac{\partial E}{\partial w_{16}} = "
        r"0.7 - 0.01 \cdot 0.00246820897036496 = 0.6999753179102963" in text
    )
    assert "| w7 | n3 | n6 | 0.7 |" in text and "| b2 | n4 | -0.4 |" in text
    assert "from 0.31480674784787793 to 0.31256283733733553" in text


def test_seed_walkthrough_sums_w1_over_its_three_paths() -> None:
    section = SEED_WALKTHROUGH.split("#### ∂E/∂w1\n", 1)[1].split("####", 1)[0]
    assert "Path 1: n3 → n6 → n9" in section and "Path 3: n3 → n8 → n9" in section
    assert "= 0.014120159947214736 + 0.018442657890239657 + 0.023341488892334568 = " in section
    assert "0.05590430672978896" in section


CASES: list[tuple[str, list[tuple[int, Activation]], Loss, list[float]]] = [
    ("tanh-identity", [(3, "tanh"), (2, "identity")], "mean_squared_error", [0.3, -0.2]),
    ("leaky-sigmoid-bce", [(2, "leaky_relu"), (1, "sigmoid")], "binary_cross_entropy", [1.0]),
    ("softmax-ce", [(3, "sigmoid"), (3, "softmax")], "cross_entropy", [0.0, 1.0, 0.0]),
    ("softmax-hse", [(2, "softmax")], "half_squared_error", [0.25, 0.75]),
]


@pytest.mark.parametrize(("case", "layers", "loss", "target"), CASES, ids=[c[0] for c in CASES])
def test_walkthrough_of_other_small_networks_shows_their_numbers(
    case: str, layers: list[tuple[int, Activation]], loss: Loss, target: list[float]
) -> None:
    net = Network(2, tuple(Layer(u, a) for u, a in layers), loss)
    rng = np.random.default_rng(11)
    params = check_parameters(
        net, [(rng.uniform(-1, 1, s), rng.uniform(-1, 1, s[1])) for s in net.shapes]
    )
    x, t = [[0.4, -0.7]], [target]
    text = walkthrough(net, params, x, t, 0.1, model=case, version=3)
    before = gradient(net, params, x, t)
    after_params, _ = step(SGD(learning_rate=0.1), params, before.gradients)
    after = gradient(net, after_params, x, t)
    expected = [
        before.loss,
        after.loss,
        *before.trace[-1].out[0].tolist(),
        *to_named(before.gradients).values(),
        *to_named(after_params).values(),
    ]
    assert [v for v in expected if repr(v) not in text] == []
    assert f"# Walkthrough: model `{case}`, version 3" in text
    if net.layers[-1].activation == "softmax" or loss == "binary_cross_entropy":
        assert "dE/dnet_k" in text  # the fused output factor is explained


def test_walkthrough_refuses_a_layer_too_wide() -> None:
    net = Network(WALKTHROUGH_MAX_UNITS + 1, (Layer(1, "sigmoid"),), "half_squared_error")
    params = check_parameters(net, [(np.zeros((net.inputs, 1)), np.zeros(1))])
    with pytest.raises(TooLarge, match="at most 16 units per layer"):
        walkthrough(net, params, [[0.0] * net.inputs], [[0.0]], 0.1, model="m", version=1)


def test_walkthrough_refuses_too_many_parameters() -> None:
    net = Network(10, (Layer(10, "relu"), Layer(10, "relu")), "half_squared_error")
    assert net.parameter_count > WALKTHROUGH_MAX_PARAMETERS
    params = check_parameters(net, [(np.zeros(s), np.zeros(s[1])) for s in net.shapes])
    with pytest.raises(TooLarge, match="weights and biases"):
        walkthrough(net, params, [[0.0] * 10], [[0.0] * 10], 0.1, model="m", version=1)
