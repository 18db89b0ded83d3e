"""The network drawn: one node per unit, one edge per weight, colours and widths by weight, and
the forward values and gradients of a sample."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from service.core import Layer, Network, check_parameters, forward, gradient, to_named
from service.learn.diagram import NEGATIVE, POSITIVE, ZERO, Sample, network_svg
from service.learn.limits import DIAGRAM_MAX_UNITS, TooLarge
from tests.api.support import SEED
from tests.learn.support import SEED_NET, SEED_PARAMS, SEED_T, SEED_X, SVG, by_class, title_of


def draw(sample: Sample | None = None) -> ET.Element:
    return ET.fromstring(network_svg(SEED_NET, SEED_PARAMS, "seed, version 1", sample))


def line_of(edge: ET.Element) -> ET.Element:
    line = edge.find(f"{SVG}line")
    assert line is not None
    return line


def test_diagram_is_svg_with_a_node_per_unit_and_an_edge_per_weight() -> None:
    root = draw()
    assert root.tag == f"{SVG}svg"
    assert [n.get("id") for n in by_class(root, "node")] == [f"n{k}" for k in range(1, 10)]
    assert [e.get("id") for e in by_class(root, "edge")] == [f"w{k}" for k in range(1, 19)]
    assert [b.get("id") for b in by_class(root, "bias")] == [f"b{k}" for k in range(1, 8)]


def test_edges_join_the_seeds_nodes() -> None:
    edges = {e.get("id"): (e.get("data-from"), e.get("data-to")) for e in by_class(draw(), "edge")}
    assert edges["w1"] == ("n1", "n3")
    assert edges["w4"] == ("n2", "n3")
    assert edges["w7"] == ("n3", "n6")
    assert edges["w16"] == ("n6", "n9")


def test_nodes_stand_in_columns_by_layer_left_to_right() -> None:
    x_of: dict[str, float] = {}
    for node in by_class(draw(), "node"):
        circle = node.find(f"{SVG}circle")
        assert circle is not None
        x_of[str(node.get("id"))] = float(circle.get("cx", "nan"))
    assert x_of["n1"] == x_of["n2"] < x_of["n3"] == x_of["n4"] == x_of["n5"]
    assert x_of["n5"] < x_of["n6"] == x_of["n8"] < x_of["n9"]


def test_edge_colour_follows_the_sign_and_width_the_size_of_the_weight() -> None:
    net = Network(1, (Layer(3, "identity"),), "half_squared_error")
    params = check_parameters(net, [([[0.5, -1.0, 0.0]], [0.0, 0.0, 0.0])])
    root = ET.fromstring(network_svg(net, params, "signs"))
    lines = {e.get("id"): line_of(e) for e in by_class(root, "edge")}
    assert [lines[w].get("stroke") for w in ("w1", "w2", "w3")] == [POSITIVE, NEGATIVE, ZERO]
    widths = {w: float(lines[w].get("stroke-width", "nan")) for w in lines}
    assert widths["w2"] > widths["w1"] > widths["w3"] > 0


def test_labels_name_every_weight_and_tooltips_hold_exact_values() -> None:
    for edge in by_class(draw(), "edge"):
        name = str(edge.get("id"))
        texts = [t.text for t in edge.iter(f"{SVG}text")]
        assert texts[0] == f"{name} = {SEED['parameters_named'][name]}"
        assert repr(SEED["parameters_named"][name]) in title_of(edge)


def test_inputs_show_every_nodes_net_and_out() -> None:
    trace = forward(SEED_NET, SEED_PARAMS, SEED_X)
    root = draw(Sample(SEED["input"], trace))
    nodes = {n.get("id"): n for n in by_class(root, "node")}
    for name, values in SEED["forward"]["nodes"].items():
        tooltip = title_of(nodes[name])
        assert f"net = {values['net']!r}" in tooltip
        assert f"out = {values['out']!r}" in tooltip
    assert "x1 = out = 0.23" in title_of(nodes["n1"])
    shown = [t.text for t in nodes["n9"].iter(f"{SVG}text")]
    assert "net 1.4082" in shown and "out 0.80348" in shown


def test_gradients_show_every_edges_derivative_and_every_nodes_delta() -> None:
    r = gradient(SEED_NET, SEED_PARAMS, SEED_X, SEED_T)
    root = draw(Sample(SEED["input"], r.trace, r.loss, r.gradients, r.deltas))
    title = root.find(f"{SVG}title")
    assert title is not None and repr(SEED["loss"]) in str(title.text)
    named = to_named(r.gradients)
    for edge in by_class(root, "edge"):
        name = str(edge.get("id"))
        assert f"dE/d{name} = {SEED['gradients_named'][name]!r}" in title_of(edge)
        assert named[name] == SEED["gradients_named"][name]
        assert any(t.text and t.text.startswith(f"∂E/∂{name} = ") for t in edge.iter(f"{SVG}text"))
    nodes = {n.get("id"): n for n in by_class(root, "node")}
    assert f"delta = dE/dnet = {SEED['deltas_dE_dnet'][2][0]!r}" in title_of(nodes["n9"])


def test_the_same_model_draws_the_same_bytes() -> None:
    r = gradient(SEED_NET, SEED_PARAMS, SEED_X, SEED_T)
    sample = Sample(SEED["input"], r.trace, r.loss, r.gradients, r.deltas)
    first = network_svg(SEED_NET, SEED_PARAMS, "t", sample)
    assert first == network_svg(SEED_NET, SEED_PARAMS, "t", sample)
    assert first.startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_edge_labels_do_not_overlap_on_the_seed() -> None:
    """Label boxes (estimated as the layout does) of different edges are apart."""
    r = gradient(SEED_NET, SEED_PARAMS, SEED_X, SEED_T)
    root = draw(Sample(SEED["input"], r.trace, r.loss, r.gradients, r.deltas))
    boxes = []
    for edge in by_class(root, "edge"):
        texts = list(edge.iter(f"{SVG}text"))
        x, y = float(texts[0].get("x", "nan")), float(texts[0].get("y", "nan"))
        width = 6.4 * max(len(t.text or "") for t in texts)
        boxes.append((x - width / 2, y - 10, x + width / 2, y - 10 + 13 * len(texts)))
        # Every label stands above its own edge's line at that x.
        line = line_of(edge)
        x1, y1 = float(line.get("x1", "nan")), float(line.get("y1", "nan"))
        x2, y2 = float(line.get("x2", "nan")), float(line.get("y2", "nan"))
        y_line = y1 + (x - x1) / (x2 - x1) * (y2 - y1)
        assert float(texts[-1].get("y", "nan")) < y_line
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def test_a_layer_too_wide_to_draw_is_refused() -> None:
    net = Network(DIAGRAM_MAX_UNITS + 1, (Layer(1, "sigmoid"),), "half_squared_error")
    params = check_parameters(net, [(np.zeros((net.inputs, 1)), np.zeros(1))])
    with pytest.raises(TooLarge, match="too large to be drawn"):
        network_svg(net, params, "wide")
