"""Plain-data forms of the core's types: what the registry stores and the edge speaks.

A network or optimizer travels as a JSON-able dict (the API's shape); parameters and optimizer
state travel to storage as a flat bundle of named arrays (``W0``, ``b0``, ``opt.m.W0``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from service.core import (
    SGD,
    Adam,
    InvalidNetwork,
    Layer,
    LayerParams,
    Network,
    Optimizer,
    OptimizerState,
    Params,
)
from service.registry import Encoded
from service.registry.codec import encode_arrays

JSON = dict[str, Any]


def network_from_dict(d: Mapping[str, Any]) -> Network:
    """The core network of an API network description (already schema-checked)."""
    layers = tuple(
        Layer(
            units=layer["units"],
            activation=layer["activation"],
            negative_slope=layer.get("negative_slope", 0.01),
        )
        for layer in d["layers"]
    )
    return Network(
        inputs=d["inputs"], layers=layers, loss=d["loss"], dtype=d.get("dtype", "float64")
    )


def network_to_dict(network: Network) -> JSON:
    layers: list[JSON] = []
    for layer in network.layers:
        entry: JSON = {"units": layer.units, "activation": layer.activation}
        if layer.activation == "leaky_relu":
            entry["negative_slope"] = layer.negative_slope
        layers.append(entry)
    return {
        "inputs": network.inputs,
        "layers": layers,
        "loss": network.loss,
        "dtype": network.dtype,
    }


def optimizer_from_dict(d: Mapping[str, Any]) -> Optimizer:
    fields = {k: v for k, v in d.items() if k != "kind"}
    match d["kind"]:
        case "sgd":
            return SGD(**fields)
        case "adam":
            return Adam(**fields)
    raise InvalidNetwork(f"unknown optimizer kind {d['kind']!r}", "/optimizer/kind")


def optimizer_to_dict(optimizer: Optimizer) -> JSON:
    kind = "sgd" if isinstance(optimizer, SGD) else "adam"
    return {"kind": kind, **asdict(optimizer)}


def pack(params: Params, state: OptimizerState | None = None) -> dict[str, np.ndarray]:
    """The bundle of named arrays the registry stores for one version."""
    arrays: dict[str, np.ndarray] = {}
    _put(arrays, "", params)
    if state is not None:
        arrays["opt.step"] = np.array(state.step, dtype=np.int64)
        for slot, values in state.slots.items():
            _put(arrays, f"opt.{slot}.", values)
    return arrays


def encoded(params: Params) -> Encoded:
    """:func:`pack`'s bundle encoded as the registry stores it: work for the worker process
    that made ``params`` (an imported file's), so that the server only passes bytes on."""
    return Encoded(encode_arrays(pack(params)))


def unpack(network: Network, arrays: Mapping[str, np.ndarray]) -> tuple[Params, OptimizerState]:
    """Parameters and optimizer state from a stored bundle (inverse of :func:`pack`)."""
    n = len(network.layers)
    params = _get(arrays, "", n)
    slots: dict[str, Params] = {}
    for key in arrays:
        if key.startswith("opt.") and key.endswith(".W0"):
            slot = key[len("opt.") : -len(".W0")]
            slots[slot] = _get(arrays, f"opt.{slot}.", n)
    step = int(arrays["opt.step"]) if "opt.step" in arrays else 0
    return params, OptimizerState(step, slots)


def _put(arrays: dict[str, np.ndarray], prefix: str, params: Params) -> None:
    for i, p in enumerate(params):
        arrays[f"{prefix}W{i}"] = p.W
        arrays[f"{prefix}b{i}"] = p.b


def _get(arrays: Mapping[str, np.ndarray], prefix: str, n: int) -> Params:
    return tuple(LayerParams(arrays[f"{prefix}W{i}"], arrays[f"{prefix}b{i}"]) for i in range(n))
