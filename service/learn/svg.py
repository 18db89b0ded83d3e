"""A few helpers to write SVG with :mod:`xml.etree.ElementTree`, deterministically: attributes
in the order given, coordinates rounded to hundredths, numbers in labels to five figures."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
Attrs = Mapping[str, str | float | int]


def document(width: float, height: float, title: str) -> ET.Element:
    """An ``<svg>`` root of the given size with a ``<title>`` and a white background."""
    root = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "width": coord(width),
            "height": coord(height),
            "viewBox": f"0 0 {coord(width)} {coord(height)}",
            "font-family": FONT,
            "font-size": "12",
        },
    )
    sub(root, "title", {}, title)
    sub(root, "rect", {"width": width, "height": height, "fill": "#ffffff"})
    return root


def sub(parent: ET.Element, tag: str, attrs: Attrs, text: str | None = None) -> ET.Element:
    """A child element; numeric attribute values are written as coordinates."""
    element = ET.SubElement(
        parent, tag, {k: v if isinstance(v, str) else coord(v) for k, v in attrs.items()}
    )
    if text is not None:
        element.text = text
    return element


def label(parent: ET.Element, x: float, y: float, text: str, attrs: Attrs | None = None) -> None:
    """Text with a white halo, so that it stays readable where it crosses lines."""
    sub(
        parent,
        "text",
        {
            "x": x,
            "y": y,
            "text-anchor": "middle",
            "stroke": "#ffffff",
            "stroke-width": 3,
            "stroke-linejoin": "round",
            "paint-order": "stroke",
            **(attrs or {}),
        },
        text,
    )


def to_string(root: ET.Element) -> str:
    """The document with an XML declaration, as text."""
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def coord(value: float) -> str:
    """A coordinate to hundredths, without trailing zeros: ``12.5``, ``40``."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def short(value: float) -> str:
    """A number to five significant figures for a label (the exact value goes in a tooltip)."""
    text = f"{value:.5g}"
    return "0" if text == "-0" else text
