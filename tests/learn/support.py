"""The seed's worked example in the core's types, and helpers to read SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

from service.core import Layer, Network, Params, check_parameters
from tests.api.support import SEED

SVG = "{http://www.w3.org/2000/svg}"
SEED_NET = Network(
    2, (Layer(3, "relu"), Layer(3, "relu"), Layer(1, "sigmoid")), "half_squared_error"
)
SEED_PARAMS: Params = check_parameters(
    SEED_NET, list(zip(SEED["parameters"]["weights"], SEED["parameters"]["biases"], strict=True))
)
SEED_X: list[list[float]] = [SEED["input"]]
SEED_T: list[list[float]] = [SEED["target"]]
# The sections of the worked-example file whose every number a walkthrough must show.
FIGURES = (
    "forward",
    "loss",
    "deltas_dE_dnet",
    "gradients",
    "gradients_named",
    "after_one_sgd_step",
)


def numbers(value: Any) -> Iterator[float]:
    """Every float in a JSON value."""
    if isinstance(value, dict):
        for v in value.values():
            yield from numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from numbers(v)
    elif isinstance(value, float):
        yield value


def seed_figures() -> list[float]:
    return [v for section in FIGURES for v in numbers(SEED[section])]


def by_class(root: ET.Element, cls: str) -> list[ET.Element]:
    """Elements whose class attribute is exactly ``cls``."""
    return [e for e in root.iter() if e.get("class") == cls]


def labels_of(root: ET.Element) -> dict[str, ET.Element]:
    """The diagram's edge labels (drawn above every line) by the weight they name."""
    return {str(e.get("data-edge")): e for e in by_class(root, "edge-label")}


def title_of(element: ET.Element) -> str:
    title = element.find(f"{SVG}title")
    assert title is not None and title.text is not None
    return title.text
