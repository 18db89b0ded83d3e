"""The loss plotted: ticks at round numbers around the data, labelled axes, a point per value."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from service.learn.history import VersionLoss, history_svg
from service.learn.plot import Point, line_plot, tick_labels, ticks
from tests.learn.support import SVG, by_class, title_of


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 20.0], [0, 5, 10, 15, 20]),
        ([0.31480674784787793, 0.31256283733733553], [0.3125, 0.313, 0.3135, 0.314, 0.3145, 0.315]),
        ([0.0, 0.0], [-0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6]),
    ],
)
def test_ticks_are_round_numbers_covering_the_values(
    values: list[float], expected: list[float]
) -> None:
    assert ticks(values) == expected
    assert ticks(values)[0] <= min(values) and ticks(values)[-1] >= max(values)


def test_integer_ticks_fall_on_whole_numbers() -> None:
    assert ticks([1, 2, 3], min_step=1.0) == [1, 2, 3]
    assert ticks([3], min_step=1.0) == [2, 3, 4]


def test_tick_labels_have_the_decimals_of_the_step() -> None:
    assert tick_labels([0.3125, 0.313, 0.3135]) == ["0.3125", "0.3130", "0.3135"]
    assert tick_labels([0, 5, 10]) == ["0", "5", "10"]


def test_plot_has_labelled_axes_and_a_point_per_value() -> None:
    points = [Point(1, 0.5, "create"), Point(2, 0.25, "train-step"), Point(3, 0.125)]
    root = ET.fromstring(
        line_plot(points, title="t", subtitle="s", x_label="version", y_label="loss")
    )
    assert [e.text for e in by_class(root, "axis-label x")] == ["version"]
    assert [e.text for e in by_class(root, "axis-label y")] == ["loss"]
    circles = by_class(root, "point")
    assert len(circles) == 3
    assert title_of(circles[1]) == "version 2: loss 0.25 (train-step)"
    # Lower loss is drawn higher up the page: y grows downwards in SVG.
    ys = [float(c.get("cy", "nan")) for c in circles]
    assert ys[0] < ys[1] < ys[2]
    polyline = root.find(f".//{SVG}polyline")
    assert polyline is not None and len(str(polyline.get("points")).split()) == 3


def test_history_plots_the_loss_against_the_version() -> None:
    losses = [VersionLoss(1, 0.31480674784787793, "create"), VersionLoss(2, 0.3125, "train-step")]
    root = ET.fromstring(history_svg("seed", losses, 1))
    assert [title_of(c) for c in by_class(root, "point")] == [
        "version 1: loss 0.31480674784787793 (create)",
        "version 2: loss 0.3125 (train-step)",
    ]
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "seed: loss by version" in texts
    assert "mean loss on 1 sample at each kept version" in texts


def test_an_empty_history_still_draws() -> None:
    root = ET.fromstring(history_svg("seed", [], 1))
    assert "no points" in [t.text for t in root.iter(f"{SVG}text")]
