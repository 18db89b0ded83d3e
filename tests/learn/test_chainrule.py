"""An explanation in Markdown: every path's chain, formulas and values, and their sum."""

from __future__ import annotations

from service.core import Layer, Network, check_parameters
from service.learn.chainrule import explanation_markdown, num, term
from service.learn.explained import explain
from tests.api.support import SEED
from tests.learn.support import SEED_NET, SEED_PARAMS, SEED_T, SEED_X


def test_numbers_are_exact_and_negative_factors_parenthesised() -> None:
    assert num(0.1 + 0.2) == "0.30000000000000004"
    assert term(-0.5) == "(-0.5)" and term(0.5) == "0.5"


def test_markdown_of_w1_lists_three_paths_with_tables_and_their_sum() -> None:
    text = explanation_markdown(explain(SEED_NET, SEED_PARAMS, SEED_X, SEED_T, "w1"), "seed", 1)
    assert text.startswith("# ∂E/∂w1 on `seed`, version 1")
    assert text.count("| factor | formula | value |") == 3
    assert "| `dnet_n9/dout_n6` | `w16` | 0.7 |" in text
    assert (
        r"$$\frac{\partial E}{\partial out_{n_{9}}} \cdot \frac{\partial out_{n_{9}}}"
        r"{\partial net_{n_{9}}} \cdot \frac{\partial net_{n_{9}}}{\partial out_{n_{6}}}" in text
    )
    assert f"**∂E/∂w1 = {SEED['gradients_named']['w1']!r}**" in text


def test_markdown_of_the_delta_form_states_the_recursion() -> None:
    e = explain(SEED_NET, SEED_PARAMS, SEED_X, SEED_T, "w4", form="delta")
    text = explanation_markdown(e, "seed", 1)
    assert r"\delta_j = f'(net_j) \sum_k w_{jk} \, \delta_k" in text
    assert repr(SEED["deltas_dE_dnet"][0][0]) in text
    assert repr(SEED["gradients_named"]["w4"]) in text


def test_markdown_says_when_the_output_factor_is_fused() -> None:
    net = Network(1, (Layer(2, "softmax"),), "cross_entropy")
    params = check_parameters(net, [([[0.5, -0.5]], [0.0, 0.1])])
    text = explanation_markdown(explain(net, params, [[1.0]], [[1.0, 0.0]], "w2"), "m", 1)
    assert "> Softmax and cross_entropy are differentiated together" in text
    assert "| `dE/dnet_n3` | `out_n3 - target_n3` |" in text
