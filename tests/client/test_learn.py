"""For learners through the client: explanations (JSON and Markdown), the walkthrough, the
diagram and the loss plot."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from service.client import AsyncClient, Client, InvalidInput
from tests.api.support import (
    SEED,
    SEED_INPUTS,
    SEED_LR,
    SEED_NETWORK,
    SEED_PARAMETERS,
    SEED_TARGETS,
    assert_close,
)
from tests.client.conftest import Unique

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def seed(client: Client, unique: Unique) -> str:
    name = unique("learn")
    client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)
    return name


def test_explain_w1_sums_three_paths_to_the_gradient(client: Client, seed: str) -> None:
    explanation = client.explain(seed, SEED_INPUTS, SEED_TARGETS, "w1")
    assert (explanation.parameter, explanation.kind, explanation.form) == ("w1", "weight", "paths")
    assert_close(explanation.gradient, SEED["gradients_named"]["w1"])
    assert [p.nodes for p in explanation.paths] == [
        ["n3", "n6", "n9"],
        ["n3", "n7", "n9"],
        ["n3", "n8", "n9"],
    ]
    for path in explanation.paths:
        assert_close(path.product, math.prod(f.value for f in path.factors))
    assert_close(sum(p.product for p in explanation.paths), explanation.gradient)


def test_explain_in_the_delta_form_and_as_markdown(client: Client, seed: str) -> None:
    delta = client.explain(seed, SEED_INPUTS, SEED_TARGETS, "w7", form="delta")
    assert delta.form == "delta" and delta.delta is not None
    assert_close(delta.delta.product, SEED["gradients_named"]["w7"])
    markdown = client.explain_markdown(seed, SEED_INPUTS, SEED_TARGETS, "w7")
    assert markdown.startswith("# ") and "w7" in markdown and "$" in markdown


def test_explain_of_an_unknown_parameter_points_at_it(client: Client, seed: str) -> None:
    with pytest.raises(InvalidInput) as info:
        client.explain(seed, SEED_INPUTS, SEED_TARGETS, "w99")
    assert info.value.pointers == ["/parameter"]


def test_walkthrough_has_the_exact_numbers(client: Client, seed: str) -> None:
    text = client.walkthrough(seed, SEED["input"], SEED["target"], learning_rate=SEED_LR)
    for value in (
        SEED["forward"]["out"][-1][0],
        SEED["loss"],
        SEED["after_one_sgd_step"]["named"]["w1"],
    ):
        assert repr(value) in text


def test_diagram_draws_every_node_and_edge(client: Client, seed: str) -> None:
    svg = client.diagram_svg(seed, inputs=SEED["input"], targets=SEED["target"], gradients=True)
    root = ET.fromstring(svg)
    groups = {g.get("id"): g for g in root.iter(f"{SVG}g") if g.get("id")}
    assert {f"n{k}" for k in range(1, 10)} <= set(groups)
    assert {f"w{k}" for k in range(1, 19)} <= set(groups)
    assert repr(SEED["gradients_named"]["w17"]) in svg
    plain = client.diagram_svg(seed)
    assert repr(SEED["gradients_named"]["w17"]) not in plain


def test_history_plot_has_a_point_per_kept_version(client: Client, seed: str) -> None:
    client.train_step(seed, SEED_INPUTS, SEED_TARGETS, learning_rate=SEED_LR)
    svg = client.history_svg(seed, SEED_INPUTS, SEED_TARGETS)
    assert ET.fromstring(svg).tag == f"{SVG}svg"
    assert repr(SEED["loss"]) in svg and repr(SEED["after_one_sgd_step"]["loss"]) in svg


@pytest.mark.anyio
async def test_async_learn_calls(aclient: AsyncClient) -> None:
    await aclient.create_model("seed", SEED_NETWORK, parameters=SEED_PARAMETERS)
    explanation = await aclient.explain("seed", SEED_INPUTS, SEED_TARGETS, "b7")
    assert_close(explanation.gradient, SEED["gradients_named"]["b7"])
    text = await aclient.walkthrough("seed", SEED["input"], SEED["target"])
    assert repr(SEED["loss"]) in text
    svg = await aclient.diagram_svg("seed", inputs=SEED["input"])
    assert 'id="n9"' in svg
    assert "<svg" in await aclient.history_svg("seed", SEED_INPUTS, SEED_TARGETS)
    assert "b7" in await aclient.explain_markdown("seed", SEED_INPUTS, SEED_TARGETS, "b7")
