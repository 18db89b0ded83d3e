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
from tests.learn.support import (
    SEED_NET,
    SEED_PARAMS,
    SEED_T,
    SEED_X,
    SVG,
    by_class,
    labels_of,
    title_of,
)


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
    root = draw()
    labels = labels_of(root)
    assert list(labels) == [e.get("id") for e in by_class(root, "edge")]
    for edge in by_class(root, "edge"):
        name = str(edge.get("id"))
        assert title_of(labels[name]) == title_of(edge)
        texts = [t.text for t in labels[name].iter(f"{SVG}text")]
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
    labels = labels_of(root)
    for edge in by_class(root, "edge"):
        name = str(edge.get("id"))
        assert f"dE/d{name} = {SEED['gradients_named'][name]!r}" in title_of(edge)
        assert named[name] == SEED["gradients_named"][name]
        texts = labels[name].iter(f"{SVG}text")
        assert any(t.text and t.text.startswith(f"∂E/∂{name} = ") for t in texts)
    nodes = {n.get("id"): n for n in by_class(root, "node")}
    assert f"delta = dE/dnet = {SEED['deltas_dE_dnet'][2][0]!r}" in title_of(nodes["n9"])


def test_the_same_model_draws_the_same_bytes() -> None:
    r = gradient(SEED_NET, SEED_PARAMS, SEED_X, SEED_T)
    sample = Sample(SEED["input"], r.trace, r.loss, r.gradients, r.deltas)
    first = network_svg(SEED_NET, SEED_PARAMS, "t", sample)
    assert first == network_svg(SEED_NET, SEED_PARAMS, "t", sample)
    assert first.startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_edge_labels_do_not_overlap_and_no_other_line_runs_through_them_on_the_seed() -> None:
    """Label boxes (estimated as the layout does) of different edges are apart, each beside its
    own line (its line passes neither through the middle of its text nor far from it), and the
    lines of other edges run through a label only where it has a card to hide them (the seed's
    crowded middle, where the hidden layers meet)."""
    r = gradient(SEED_NET, SEED_PARAMS, SEED_X, SEED_T)
    root = draw(Sample(SEED["input"], r.trace, r.loss, r.gradients, r.deltas))
    labels = labels_of(root)
    lines = {str(e.get("id")): line_of(e) for e in by_class(root, "edge")}
    boxes = {}
    for name, label in labels.items():
        texts = list(label.iter(f"{SVG}text"))
        x, y = float(texts[0].get("x", "nan")), float(texts[0].get("y", "nan"))
        width = 6.4 * max(len(t.text or "") for t in texts)
        boxes[name] = (x - width / 2, y - 10, x + width / 2, y - 10 + 13 * len(texts))
        line = lines[name]
        x1, y1 = float(line.get("x1", "nan")), float(line.get("y1", "nan"))
        x2, y2 = float(line.get("x2", "nan")), float(line.get("y2", "nan"))
        y_line = y1 + (x - x1) / (x2 - x1) * (y2 - y1)
        top, bottom = boxes[name][1], boxes[name][3]
        assert not top < y_line < bottom or name == "", (name, top, y_line, bottom)
        assert min(abs(top - y_line), abs(bottom - y_line)) < 16, name
    names = list(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            p, q = boxes[a], boxes[b]
            assert not (p[0] < q[2] and q[0] < p[2] and p[1] < q[3] and q[1] < p[3]), (a, b)
    carded = {name for name, label in labels.items() if label.find(f"{SVG}rect") is not None}
    for name, box in boxes.items():
        crossing = [other for other, line in lines.items() if other != name and _crosses(line, box)]
        assert not crossing or name in carded, (name, crossing)
    assert len(carded) <= 3, carded  # most labels find a free spot


def _crosses(line: ET.Element, box: tuple[float, float, float, float]) -> bool:
    """Whether the line has a point inside ``box`` (sampled finely: an independent check)."""
    x1, y1 = float(line.get("x1", "nan")), float(line.get("y1", "nan"))
    x2, y2 = float(line.get("x2", "nan")), float(line.get("y2", "nan"))
    for k in range(1001):
        x, y = x1 + (x2 - x1) * k / 1000, y1 + (y2 - y1) * k / 1000
        if box[0] < x < box[2] and box[1] < y < box[3]:
            return True
    return False


def test_a_layer_too_wide_to_draw_is_refused() -> None:
    net = Network(DIAGRAM_MAX_UNITS + 1, (Layer(1, "sigmoid"),), "half_squared_error")
    params = check_parameters(net, [(np.zeros((net.inputs, 1)), np.zeros(1))])
    with pytest.raises(TooLarge, match="too large to be drawn"):
        network_svg(net, params, "wide")
