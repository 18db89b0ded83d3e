"""The drawings render in a real browser: headless Chromium, driven by Playwright
(:mod:`tests.browser.support`), takes a screenshot of each SVG.

Chromium is a system package (``apt-get install -y chromium``). Where it is missing the tests
fail under CI (``CI=true``), so that a CI machine without it cannot pass unnoticed, and are
skipped with the reason elsewhere. The screenshots stay under ``artifacts/render`` to be looked
at.
"""

from __future__ import annotations

import math
import struct
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

from service.core import gradient
from service.learn.diagram import Sample, network_svg
from service.learn.history import VersionLoss, history_svg
from tests.api.support import SEED
from tests.browser.support import ARTIFACTS, chromium
from tests.learn.support import SEED_NET, SEED_PARAMS, SEED_T, SEED_X

MARGIN = 16  # the window is the drawing's size and a little more: no scrollbars, nothing cut


def window_of(svg: str) -> tuple[int, int]:
    root = ET.fromstring(svg)
    width, height = (math.ceil(float(root.get(side, "0"))) for side in ("width", "height"))
    return width + MARGIN, height + MARGIN


def screenshot(svg: str, tmp_path: Path, name: str) -> tuple[Path, tuple[int, int]]:
    """The SVG opened as a file in a window of its size; the screenshot, kept in
    ``artifacts/render`` after the run, and the window's size."""
    window = window_of(svg)
    source = tmp_path / f"{name}.svg"
    source.write_text(svg, encoding="utf-8")
    png = ARTIFACTS / "render" / f"{name}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": window[0], "height": window[1]})
        page.goto(source.as_uri())
        page.screenshot(path=str(png))
    return png, window


def png_size_and_pixels(png: Path) -> tuple[tuple[int, int], bytes]:
    """Width and height from the IHDR chunk, and the inflated image data."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, size, idat = 8, (0, 0), b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    return size, zlib.decompress(idat)


def assert_drawn(shot: tuple[Path, tuple[int, int]]) -> None:
    png, window = shot
    size, pixels = png_size_and_pixels(png)
    assert size == window
    # A blank page inflates to little more than filter bytes and white; a drawing to many values.
    assert len(set(pixels)) > 32, "the screenshot is blank"


def test_diagram_renders_in_headless_chromium(tmp_path: Path) -> None:
    png = screenshot(network_svg(SEED_NET, SEED_PARAMS, "seed, version 1"), tmp_path, "diagram")
    assert_drawn(png)


def test_diagram_with_gradients_renders_in_headless_chromium(tmp_path: Path) -> None:
    r = gradient(SEED_NET, SEED_PARAMS, SEED_X, SEED_T)
    sample = Sample(SEED["input"], r.trace, r.loss, r.gradients, r.deltas)
    png = screenshot(network_svg(SEED_NET, SEED_PARAMS, "seed", sample), tmp_path, "gradients")
    assert_drawn(png)


def test_history_renders_in_headless_chromium(tmp_path: Path) -> None:
    losses = [
        VersionLoss(1, SEED["loss"], "create"),
        VersionLoss(2, SEED["after_one_sgd_step"]["loss"], "train-step"),
    ]
    assert_drawn(screenshot(history_svg("seed", losses, 1), tmp_path, "history"))
