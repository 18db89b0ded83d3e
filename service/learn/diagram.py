"""The network drawn as the seed blog draws it: nodes n1..nK in columns by layer, left to right,
and an edge per weight labelled w1..wN, coloured by the sign of the weight (blue positive, red
negative, grey zero) and as wide as its size relative to the largest weight.

Each node is a ``<g class="node" id="n3">`` and each edge a ``<g class="edge" id="w7">`` with a
``<title>`` holding the exact values; biases are ``<text class="bias" id="b1">`` under their
nodes. Given a forward trace, every node shows its net and out; given gradients, every edge its
dE/dw and every node its delta.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from service.core import FloatArray, Network, Params, Trace, locations, node_names
from service.learn import svg
from service.learn.limits import check_drawable

COLUMN_GAP = 250  # wide enough for labels of one line; two lines (gradients) need more
COLUMN_GAP_GRADIENTS = 360
ROW_GAP = 130
RADIUS = 24
MARGIN_X = 90
TOP = 96
BOTTOM = 80
POSITIVE, NEGATIVE, ZERO = "#2166ac", "#b2182b", "#9e9e9e"
FILL = {"input": "#e8eef6", "hidden": "#ffffff", "output": "#fff3d1"}

#: Up to this many edges a label's place also avoids the lines of other edges (the drawings
#: learners read); above it the search for a free spot would take seconds, and the labels,
#: drawn above every line with a halo, are placed apart from each other only.
AVOID_LINES_EDGES = 128

Centre = Callable[[int, int], tuple[float, float]]  # (column, unit) -> (x, y) of the node


@dataclass(frozen=True)
class Sample:
    """What one sample adds to a drawing: the inputs and the forward trace (row 0 is drawn), and
    optionally the loss, the gradients and the deltas for its targets."""

    inputs: Sequence[float]
    trace: Trace
    loss: float | None = None
    gradients: Params | None = None
    deltas: tuple[FloatArray, ...] | None = None


def network_svg(network: Network, params: Params, title: str, sample: Sample | None = None) -> str:
    """The SVG drawing of ``network`` with ``params``; raises :class:`TooLarge` for networks too
    large to draw."""
    check_drawable(network)
    names = node_names(network)
    rows = max(len(column) for column in names)
    gap = COLUMN_GAP if sample is None or sample.gradients is None else COLUMN_GAP_GRADIENTS
    width = max(2 * MARGIN_X + (len(names) - 1) * gap, 640)
    height = TOP + rows * ROW_GAP + BOTTOM
    heading = title if sample is None or sample.loss is None else f"{title}, E = {sample.loss!r}"
    root = svg.document(width, height, heading)
    svg.sub(root, "text", {"x": 20, "y": 30, "font-size": 18, "font-weight": "bold"}, heading)
    left = (width - (len(names) - 1) * gap) / 2

    def centre(column: int, unit: int) -> tuple[float, float]:
        offset = (rows - len(names[column])) / 2
        return left + column * gap, TOP + (offset + unit + 0.4) * ROW_GAP

    for column, heading_text in enumerate(_layer_headings(network)):
        svg.sub(
            root,
            "text",
            {"x": left + column * gap, "y": TOP - 30, "text-anchor": "middle"},
            heading_text,
        ).set("class", "layer")
    edges = svg.sub(root, "g", {"class": "edges"})
    # Above every line, so that a line never runs through a label's text.
    labels = svg.sub(root, "g", {"class": "edge-labels"})
    nodes = svg.sub(root, "g", {"class": "nodes"})
    _draw_edges(edges, labels, network, params, centre, sample)
    _draw_nodes(nodes, network, params, names, centre, sample)
    _legend(root, height, sample)
    return svg.to_string(root)


def _layer_headings(network: Network) -> list[str]:
    last = len(network.layers) - 1
    return ["inputs"] + [
        f"{'output' if l == last else f'hidden {l + 1}'}: {layer.activation}"
        for l, layer in enumerate(network.layers)
    ]


def _draw_edges(
    parent: ET.Element,
    labels: ET.Element,
    network: Network,
    params: Params,
    centre: Centre,
    sample: Sample | None,
) -> None:
    biggest = max(float(abs(p.W).max()) for p in params)
    names = node_names(network)
    taken = Boxes(_node_boxes(names, centre, sample))
    weights = [(name, loc) for name, loc in locations(network).items() if loc.kind == "W"]
    avoid_lines = len(weights) <= AVOID_LINES_EDGES
    # Every edge is known before any label is placed, so that no label lands on a line.
    for index, (_, loc) in enumerate(weights):
        (x1, y1), (x2, y2) = centre(loc.layer, loc.row), centre(loc.layer + 1, loc.col)
        taken.add_segment(index, (x1 + RADIUS, y1, x2 - RADIUS, y2))
    for index, (name, loc) in enumerate(weights):
        w = float(params[loc.layer].W[loc.row, loc.col])
        (x1, y1), (x2, y2) = centre(loc.layer, loc.row), centre(loc.layer + 1, loc.col)
        colour = POSITIVE if w > 0 else NEGATIVE if w < 0 else ZERO
        frm, to = names[loc.layer][loc.row], names[loc.layer + 1][loc.col]
        tooltip = f"{name} = {w!r} ({frm} → {to})"
        text = [f"{name} = {svg.short(w)}"]
        if sample is not None and sample.gradients is not None:
            g = float(sample.gradients[loc.layer].W[loc.row, loc.col])
            tooltip += f"\ndE/d{name} = {g!r}"
            text.append(f"∂E/∂{name} = {svg.short(g)}")
        edge = svg.sub(parent, "g", {"class": "edge", "id": name, "data-from": frm, "data-to": to})
        svg.sub(edge, "title", {}, tooltip)
        svg.sub(
            edge,
            "line",
            {
                "x1": x1 + RADIUS,
                "y1": y1,
                "x2": x2 - RADIUS,
                "y2": y2,
                "stroke": colour,
                "stroke-width": 0.75 + 5.25 * abs(w) / biggest if biggest > 0 else 0.75,
                "stroke-linecap": "round",
                "stroke-opacity": 0.8,
            },
        )
        n_out = network.layers[loc.layer].units
        box, crossed = _place(
            text, (x1 + RADIUS, y1), (x2 - RADIUS, y2), loc.col, n_out, taken, index, avoid_lines
        )
        label = svg.sub(labels, "g", {"class": "edge-label", "data-edge": name})
        svg.sub(label, "title", {}, tooltip)
        if crossed:
            # No free spot along the edge: an opaque card hides the other lines under the text.
            svg.sub(
                label,
                "rect",
                {
                    "x": box[0],
                    "y": box[1],
                    "width": box[2] - box[0],
                    "height": box[3] - box[1],
                    "rx": 3,
                    "fill": "#ffffff",
                    "fill-opacity": 0.92,
                },
            )
        x, y = (box[0] + box[2]) / 2, box[1]
        for k, line in enumerate(text):
            svg.label(label, x, y + LINE * (k + 1) - 3, line, {"font-size": 11, "fill": colour})


Box = tuple[float, float, float, float]  # left, top, right, bottom
LINE = 13  # height of a line of 11-point text
CHAR = 6.4  # average width of a character of 11-point text


def _place(
    text: list[str],
    start: tuple[float, float],
    end: tuple[float, float],
    unit: int,
    units: int,
    taken: Boxes,
    edge: int,
    avoid_lines: bool,
) -> tuple[Box, int]:
    """Where along its edge a label goes: the first of a fixed sequence of spots (starting
    where edges into different nodes part, ``0.25..0.75`` of the way by the target unit, then
    outwards; at each, just above the edge, then just below) whose box touches no other label
    or node and no other edge's line; else the one that touches fewest lines, then overlaps
    least. Without ``avoid_lines``: the first spot just above the edge whose box touches no
    label or node, else the one that overlaps least. The box is then taken; returned with the
    number of other lines that run through it."""
    width = CHAR * max(len(line) for line in text) + 4
    height = LINE * len(text)
    preferred = 0.5 if units == 1 else 0.25 + 0.5 * unit / (units - 1)
    spots = [preferred]
    for step in range(1, 28):
        spots += [preferred + 0.03 * step, preferred - 0.03 * step]
    best: tuple[tuple[bool, int, float], Box] | None = None
    for t in (t for t in spots if 0.1 <= t <= 0.9):
        x = start[0] + t * (end[0] - start[0])
        y = start[1] + t * (end[1] - start[1])
        # Beside its edge, never on it, so that its own line never runs through the text.
        for lift in (3, 3 + LINE / 2) if avoid_lines else (3,):
            above = (x - width / 2, y - height - lift, x + width / 2, y - lift)
            below = (x - width / 2, y + lift, x + width / 2, y + height + lift)
            for box in (above, below) if avoid_lines else (above,):
                clash = taken.overlap(box)
                if best is not None and (clash > 0) > best[0][0]:
                    continue  # worse whatever lines run through it
                crossed = 0
                if avoid_lines:
                    most = None if best is None or (clash > 0) < best[0][0] else best[0][1]
                    crossed = taken.crossings(box, edge, most)
                score = (clash > 0, crossed, clash)
                if best is None or score < best[0]:
                    best = (score, box)
        if best is not None and best[0] == (False, 0, 0.0):
            break
    assert best is not None  # the preferred spot always lies in range
    chosen = best[1]
    taken.add(chosen)
    return chosen, best[0][1] if avoid_lines else taken.crossings(chosen, edge)


class Boxes:
    """The boxes taken so far, indexed by the cells of a square grid that they touch, so that
    finding the boxes near a new one looks at a few cells instead of every box: placing the
    labels takes time linear in the edges (times how crowded the labels are: in a wide layer's
    column gap, at most 32 units a layer, about a dozen boxes a spot) instead of quadratic.

    :meth:`overlap` sums the areas shared with the taken boxes in the order they were taken,
    exactly as a sum over all of them would (the others add 0.0), so that the layout, and the
    bytes of the drawing, do not depend on the index."""

    CELL = 64.0  # about a label's width: a label's box touches a few cells

    def __init__(self, boxes: Sequence[Box] = ()) -> None:
        self._boxes: list[Box] = []
        self._cells: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
        self._segments: list[tuple[int, Box]] = []
        self._segment_cells: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
        for box in boxes:
            self.add(box)

    def add_segment(self, owner: int, segment: Box) -> None:
        """An edge's line ``(x1, y1, x2, y2)``, which labels of other edges avoid."""
        index = len(self._segments)
        self._segments.append((owner, segment))
        for cell in self._cells_along(segment):
            self._segment_cells[cell].append(index)

    def _cells_along(self, segment: Box) -> Iterator[tuple[int, int]]:
        """The cells a segment touches: column by column, those of
        the segment's part within that column. Every box it runs through shares one."""
        x1, y1, x2, y2 = segment
        if x2 < x1:
            x1, y1, x2, y2 = x2, y2, x1, y1
        first, last = math.floor(x1 / self.CELL), math.floor(x2 / self.CELL)
        for cx in range(first, last + 1):
            ends = []
            for x in (max(x1, cx * self.CELL), min(x2, (cx + 1) * self.CELL)):
                ends.append(y1 if x2 == x1 else y1 + (x - x1) / (x2 - x1) * (y2 - y1))
            if x2 == x1:
                ends = [y1, y2]
            top, bottom = math.floor(min(ends) / self.CELL), math.floor(max(ends) / self.CELL)
            for cy in range(top, bottom + 1):
                yield cx, cy

    def crossings(self, box: Box, owner: int, most: int | None = None) -> int:
        """How many lines of edges other than ``owner`` run through ``box`` (counted up to
        ``most`` + 1 when ``most`` is given: past it, the box loses anyway)."""
        near: set[int] = set()
        for cell in self._cells_of(box):
            near.update(self._segment_cells.get(cell, ()))
        count = 0
        for i in sorted(near):
            other, segment = self._segments[i]
            if other != owner and _crosses(segment, box):
                count += 1
                if most is not None and count > most:
                    break
        return count

    def add(self, box: Box) -> None:
        index = len(self._boxes)
        self._boxes.append(box)
        for cell in self._cells_of(box):
            self._cells[cell].append(index)

    def overlap(self, box: Box) -> float:
        """The sum of the areas ``box`` shares with the boxes taken, in the order taken."""
        near: set[int] = set()
        for cell in self._cells_of(box):
            near.update(self._cells.get(cell, ()))
        left, top, right, bottom = box
        total = 0.0
        for i in sorted(near):
            other = self._boxes[i]
            # Boxes that share no area would add 0.0, which changes no sum: skipped.
            if other[0] < right and left < other[2] and other[1] < bottom and top < other[3]:
                total += _overlap(box, other)
        return total

    def _cells_of(self, box: Box) -> Iterator[tuple[int, int]]:
        """The cells ``box`` touches: two boxes that share any area share one of them."""
        left, top = math.floor(box[0] / self.CELL), math.floor(box[1] / self.CELL)
        right, bottom = math.floor(box[2] / self.CELL), math.floor(box[3] / self.CELL)
        for cx in range(left, right + 1):
            for cy in range(top, bottom + 1):
                yield cx, cy


def _crosses(segment: Box, box: Box) -> bool:
    """Whether the segment ``(x1, y1, x2, y2)`` has a point inside ``box`` (Liang-Barsky)."""
    x1, y1, x2, y2 = segment
    dx, dy = x2 - x1, y2 - y1
    low, high = 0.0, 1.0
    for p, q in ((-dx, x1 - box[0]), (dx, box[2] - x1), (-dy, y1 - box[1]), (dy, box[3] - y1)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def _overlap(a: Box, b: Box) -> float:
    """The area two boxes share."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _node_boxes(names: list[list[str]], centre: Centre, sample: Sample | None) -> list[Box]:
    """The room every node takes with the lines of text under it."""
    lines = 1 + (0 if sample is None else 2 + (sample.deltas is not None))
    boxes: list[Box] = []
    for column, column_names in enumerate(names):
        for unit in range(len(column_names)):
            x, y = centre(column, unit)
            half = 40 if sample is None else 48
            boxes.append((x - half, y - RADIUS, x + half, y + RADIUS + 8 + 14 * lines))
    return boxes


def _draw_nodes(
    parent: ET.Element,
    network: Network,
    params: Params,
    names: list[list[str]],
    centre: Centre,
    sample: Sample | None,
) -> None:
    biases = {
        (loc.layer, loc.col): name for name, loc in locations(network).items() if loc.kind == "b"
    }
    last = len(names) - 1
    for column, column_names in enumerate(names):
        kind = "input" if column == 0 else "output" if column == last else "hidden"
        for unit, name in enumerate(column_names):
            x, y = centre(column, unit)
            node = svg.sub(parent, "g", {"class": "node", "id": name, "data-kind": kind})
            lines: list[tuple[str, str | None, str]] = []  # (class, id, text) under the node
            tooltip = [name]
            if column == 0:
                tooltip.append(f"input x{unit + 1}")
            else:
                b_name = biases[(column - 1, unit)]
                b = float(params[column - 1].b[unit])
                lines.append(("bias", b_name, f"{b_name} = {svg.short(b)}"))
                tooltip.append(f"{b_name} = {b!r}")
            if sample is not None:
                if column == 0:
                    x_value = float(sample.inputs[unit])
                    lines.append(("value", None, f"x{unit + 1} = {svg.short(x_value)}"))
                    tooltip.append(f"x{unit + 1} = out = {x_value!r}")
                else:
                    t = sample.trace[column - 1]
                    net, out = float(t.net[0, unit]), float(t.out[0, unit])
                    lines.append(("value", None, f"net {svg.short(net)}"))
                    lines.append(("value", None, f"out {svg.short(out)}"))
                    tooltip += [f"net = {net!r}", f"out = {out!r}"]
                    if sample.deltas is not None:
                        d = float(sample.deltas[column - 1][0, unit])
                        lines.append(("delta", None, f"δ = {svg.short(d)}"))
                        tooltip.append(f"delta = dE/dnet = {d!r}")
            svg.sub(node, "title", {}, "\n".join(tooltip))
            svg.sub(
                node,
                "circle",
                {"cx": x, "cy": y, "r": RADIUS, "fill": FILL[kind], "stroke": "#333333"},
            )
            svg.sub(
                node,
                "text",
                {"x": x, "y": y + 5, "text-anchor": "middle", "font-weight": "bold"},
                name,
            )
            for k, (cls, ident, text) in enumerate(lines):
                attrs: dict[str, str | float] = {"class": cls, "font-size": 11}
                if ident is not None:
                    attrs["id"] = ident
                svg.label(node, x, y + RADIUS + 15 + 14 * k, text, attrs)


def _legend(root: ET.Element, height: float, sample: Sample | None) -> None:
    legend = svg.sub(root, "g", {"class": "legend", "font-size": 11})
    y = height - 28
    for k, (colour, text) in enumerate(
        [(POSITIVE, "positive weight"), (NEGATIVE, "negative weight"), (ZERO, "zero weight")]
    ):
        x = 20 + 150 * k
        svg.sub(
            legend,
            "line",
            {"x1": x, "y1": y, "x2": x + 30, "y2": y, "stroke": colour, "stroke-width": 3},
        )
        svg.sub(legend, "text", {"x": x + 36, "y": y + 4}, text)
    note = "line width ∝ |w|; exact values in the tooltips"
    if sample is not None:
        note += "; net = Σ w·out + b, out = f(net)"
        if sample.deltas is not None:
            note += "; δ = ∂E/∂net"
    svg.sub(legend, "text", {"x": 20, "y": y + 22}, note)
