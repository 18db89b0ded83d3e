"""A line plot as SVG: points joined by a line, axes with ticks at round numbers, a title and a
label on each axis. Each point is a ``<circle class="point">`` whose ``<title>`` holds its exact
values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.learn import svg

WIDTH, HEIGHT = 800, 480
LEFT, RIGHT, TOP, BOTTOM = 96, 32, 72, 72
LINE_COLOUR = "#2166ac"


@dataclass(frozen=True)
class Point:
    """One point; ``note`` is added to its tooltip."""

    x: float
    y: float
    note: str = ""


def line_plot(
    points: Sequence[Point],
    *,
    title: str,
    subtitle: str,
    x_label: str,
    y_label: str,
    integer_x: bool = False,
) -> str:
    """The SVG of ``points`` (in the order given) on axes spanning round numbers around them;
    with ``integer_x`` the x ticks fall on whole numbers only."""
    root = svg.document(WIDTH, HEIGHT, title)
    svg.sub(root, "text", {"x": 20, "y": 28, "font-size": 18, "font-weight": "bold"}, title)
    svg.sub(root, "text", {"x": 20, "y": 48, "fill": "#555555"}, subtitle)
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP
    if not points:
        svg.sub(
            root, "text", {"x": WIDTH / 2, "y": HEIGHT / 2, "text-anchor": "middle"}, "no points"
        )
        return svg.to_string(root)
    x_ticks = ticks([p.x for p in points], min_step=1.0 if integer_x else 0.0)
    y_ticks = ticks([p.y for p in points])

    def sx(x: float) -> float:
        return x0 + (x - x_ticks[0]) / (x_ticks[-1] - x_ticks[0]) * (x1 - x0)

    def sy(y: float) -> float:
        return y0 - (y - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * (y0 - y1)

    axes = svg.sub(root, "g", {"class": "axes", "stroke": "#333333"})
    svg.sub(axes, "line", {"class": "axis x", "x1": x0, "y1": y0, "x2": x1, "y2": y0})
    svg.sub(axes, "line", {"class": "axis y", "x1": x0, "y1": y0, "x2": x0, "y2": y1})
    labels = svg.sub(root, "g", {"class": "ticks", "font-size": 11, "fill": "#333333"})
    for value, text in zip(x_ticks, tick_labels(x_ticks), strict=True):
        x = sx(value)
        svg.sub(axes, "line", {"x1": x, "y1": y0, "x2": x, "y2": y0 + 5})
        svg.sub(labels, "text", {"x": x, "y": y0 + 18, "text-anchor": "middle"}, text)
    for value, text in zip(y_ticks, tick_labels(y_ticks), strict=True):
        y = sy(value)
        svg.sub(axes, "line", {"x1": x0 - 5, "y1": y, "x2": x0, "y2": y})
        svg.sub(axes, "line", {"x1": x0, "y1": y, "x2": x1, "y2": y, "stroke": "#e5e5e5"})
        svg.sub(labels, "text", {"x": x0 - 8, "y": y + 4, "text-anchor": "end"}, text)
    svg.sub(
        root,
        "text",
        {"class": "axis-label x", "x": (x0 + x1) / 2, "y": HEIGHT - 24, "text-anchor": "middle"},
        x_label,
    )
    svg.sub(
        root,
        "text",
        {
            "class": "axis-label y",
            "x": 24,
            "y": (y0 + y1) / 2,
            "text-anchor": "middle",
            "transform": f"rotate(-90 24 {svg.coord((y0 + y1) / 2)})",
        },
        y_label,
    )
    series = svg.sub(root, "g", {"class": "series"})
    svg.sub(
        series,
        "polyline",
        {
            "class": "line",
            "points": " ".join(f"{svg.coord(sx(p.x))},{svg.coord(sy(p.y))}" for p in points),
            "fill": "none",
            "stroke": LINE_COLOUR,
            "stroke-width": 2,
        },
    )
    for p in points:
        point = svg.sub(
            series,
            "circle",
            {"class": "point", "cx": sx(p.x), "cy": sy(p.y), "r": 4, "fill": LINE_COLOUR},
        )
        tooltip = f"{x_label} {p.x!r}: {y_label} {p.y!r}"
        svg.sub(point, "title", {}, f"{tooltip} ({p.note})" if p.note else tooltip)
    return svg.to_string(root)


def ticks(values: Sequence[float], count: int = 5, min_step: float = 0.0) -> list[float]:
    """About ``count`` + 1 ticks at multiples of 1, 2 or 5 times a power of ten, the first at or
    below ``min(values)`` and the last at or above ``max(values)``; at least ``min_step`` apart.
    A single value gets a range around it."""
    lo, hi = min(values), max(values)
    if hi == lo:
        pad = max(abs(lo) * 0.05, min_step / 2) or 0.5
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(step, min_step)
    first, last = math.floor(lo / step), math.ceil(hi / step)
    # round() takes off the float noise of k * step (0.30000000000000004).
    digits = max(0, -math.floor(math.log10(step)) + 1)
    return [round(k * step, digits) for k in range(first, last + 1)]


def tick_labels(values: Sequence[float]) -> list[str]:
    """Labels with as many decimals as the step between ticks needs."""
    step = values[1] - values[0] if len(values) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return [f"{v:.{decimals}f}" for v in values]
