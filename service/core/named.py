"""The seed's named notation: weights w1..wN row-major layer after layer, biases b1..bM unit
after unit, nodes n1..nK with the inputs first."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.core.errors import NonFiniteValue, ShapeMismatch
from service.core.network import Network
from service.core.parameters import LayerParams, Params


@dataclass(frozen=True)
class Location:
    """Where a named parameter sits: ``kind`` "W" at ``[layer][row][col]`` or "b" at
    ``[layer][col]`` (``row`` is then -1)."""

    kind: Literal["W", "b"]
    layer: int
    row: int
    col: int


def parameter_names(network: Network) -> list[str]:
    """``["w1", ..., "wN", "b1", ..., "bM"]`` in the seed's order."""
    n_w = sum(n_in * n_out for n_in, n_out in network.shapes)
    n_b = sum(n_out for _, n_out in network.shapes)
    return [f"w{i}" for i in range(1, n_w + 1)] + [f"b{i}" for i in range(1, n_b + 1)]


def locations(network: Network) -> dict[str, Location]:
    """Every parameter name with its place in the layered form."""
    out: dict[str, Location] = {}
    w = b = 0
    for l, (n_in, n_out) in enumerate(network.shapes):
        for i in range(n_in):
            for j in range(n_out):
                w += 1
                out[f"w{w}"] = Location("W", l, i, j)
    for l, (_, n_out) in enumerate(network.shapes):
        for j in range(n_out):
            b += 1
            out[f"b{b}"] = Location("b", l, -1, j)
    return out


def location_of(network: Network, index: int) -> tuple[str, Location]:
    """The name and place of parameter ``index`` (0-based) in the order of
    :func:`parameter_names`, found without listing the others (a network may have millions)."""
    k = index
    for l, (n_in, n_out) in enumerate(network.shapes):
        if k < n_in * n_out:
            i, j = divmod(k, n_out)
            return f"w{index + 1}", Location("W", l, i, j)
        k -= n_in * n_out
    weights = index - k
    for l, (_, n_out) in enumerate(network.shapes):
        if k < n_out:
            return f"b{index - weights + 1}", Location("b", l, -1, k)
        k -= n_out
    raise IndexError(f"parameter {index} of a network of {network.parameter_count}")


def node_names(network: Network) -> list[list[str]]:
    """Node names per layer, the inputs first: ``[["n1", "n2"], ["n3", "n4", "n5"], ...]``."""
    sizes = [network.inputs, *(layer.units for layer in network.layers)]
    names: list[list[str]] = []
    k = 0
    for size in sizes:
        names.append([f"n{k + j + 1}" for j in range(size)])
        k += size
    return names


def to_named(params: Params) -> dict[str, float]:
    """Flatten layered parameters (or gradients) into ``{"w1": ..., "b1": ...}``."""
    weights = np.concatenate([p.W.ravel() for p in params])
    biases = np.concatenate([p.b.ravel() for p in params])
    named = {f"w{i}": float(v) for i, v in enumerate(weights.tolist(), start=1)}
    named.update({f"b{i}": float(v) for i, v in enumerate(biases.tolist(), start=1)})
    return named


def from_named(network: Network, named: Mapping[str, float]) -> Params:
    """Layered parameters from the named notation; every name exactly once, nothing else.

    Raises :class:`ShapeMismatch` naming a missing or unknown name, :class:`NonFiniteValue`
    for NaN or infinity.
    """
    expected = parameter_names(network)
    missing = [n for n in expected if n not in named]
    if missing:
        raise ShapeMismatch(
            f"named parameters lack {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
            f"; this network has {expected[0]}..w{_count(expected, 'w')} and "
            f"b1..b{_count(expected, 'b')}",
            f"/{missing[0]}",
        )
    known = set(expected)
    unknown = [n for n in named if n not in known]
    if unknown:
        raise ShapeMismatch(
            f"unknown parameter name {unknown[0]!r}; this network has w1..w{_count(expected, 'w')}"
            f" and b1..b{_count(expected, 'b')}",
            f"/{unknown[0]}",
        )
    for n in expected:
        if not math.isfinite(named[n]):
            raise NonFiniteValue(f"parameter {n} must be a finite number", f"/{n}")
    dtype = network.np_dtype
    layers = [
        LayerParams(np.zeros((n_in, n_out), dtype=dtype), np.zeros(n_out, dtype=dtype))
        for n_in, n_out in network.shapes
    ]
    for name, loc in locations(network).items():
        if loc.kind == "W":
            layers[loc.layer].W[loc.row, loc.col] = named[name]
        else:
            layers[loc.layer].b[loc.col] = named[name]
    return tuple(layers)


def _count(names: list[str], prefix: str) -> int:
    return sum(1 for n in names if n.startswith(prefix))
