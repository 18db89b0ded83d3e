"""A stored model as a file that recreates it: the JSON body of ``POST /v1/models``, or an
``.npz`` archive holding that body's JSON (without parameters) as the 0-d string ``model`` and
every layer's weights and biases as the arrays ``W0``, ``b0``, ``W1``, ... (``W{l}`` of shape
inputs x units), bit-exact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.core import Params
from service.interop import jsontext, npy
from service.interop.errors import MalformedContent, UnsupportedContent

JSON = dict[str, Any]
_ARRAY = re.compile(r"^([Wb])(0|[1-9][0-9]*)$")


def create_body(name: str, spec: Mapping[str, Any], params: Params | None) -> JSON:
    """The body of ``POST /v1/models`` that recreates the model; without ``params``, the body
    less its parameters (what the ``.npz`` archive keeps as JSON)."""
    body: JSON = {"name": name, "network": spec["network"]}
    if params is not None:
        body["parameters"] = {
            "layers": [{"weights": p.W.tolist(), "biases": p.b.tolist()} for p in params]
        }
    body["optimizer"] = spec["optimizer"]
    if spec.get("description") is not None:
        body["description"] = spec["description"]
    body["tags"] = list(spec.get("tags", []))
    return body


def json_pieces(name: str, spec: Mapping[str, Any], params: Params) -> Iterator[str]:
    """The JSON text of ``create_body(name, spec, params)``, as ``json.dumps`` writes it
    compactly, in pieces of a few thousand numbers each: a thread writing millions of them lets
    go of the interpreter lock between pieces."""
    body = create_body(name, spec, None)
    yield "{"
    for i, (key, value) in enumerate(body.items()):
        yield ("," if i else "") + jsontext.dumps(key) + ":" + jsontext.dumps(value)
        if key == "network":  # the parameters come next, as in create_body
            yield ',"parameters":{"layers":['
            for j, p in enumerate(params):
                yield ("," if j else "") + '{"weights":'
                yield from jsontext.array(p.W)
                yield ',"biases":'
                yield from jsontext.array(p.b)
                yield "}"
            yield "]}"
    yield "}"


def to_npz(body: JSON, params: Params) -> bytes:
    """The ``.npz`` archive of a model: ``body`` as JSON and its parameters as arrays."""
    arrays: dict[str, NDArray[Any]] = {"model": np.array(json.dumps(body))}
    for i, p in enumerate(params):
        arrays[f"W{i}"] = p.W
        arrays[f"b{i}"] = p.b
    return npy.dumps_npz(arrays)


def from_npz(data: bytes, max_bytes: int) -> tuple[JSON, list[tuple[NDArray[Any], NDArray[Any]]]]:
    """The JSON body (without parameters) and the ``(W, b)`` of every layer of an archive."""
    arrays = npy.loads_npz(data, max_bytes)
    if "model" not in arrays:
        raise UnsupportedContent("the archive lacks the string array 'model'", "/model")
    try:
        body = jsontext.loads(npy.text(arrays.pop("model"), "the array 'model'", "/model"))
    except json.JSONDecodeError as exc:
        raise MalformedContent(f"the array 'model' is not JSON ({exc})", "/model") from exc
    if not isinstance(body, dict):
        raise UnsupportedContent("the array 'model' must hold a JSON object", "/model")
    for key in ("parameters", "init"):
        if key in body:
            raise UnsupportedContent(
                f"the model JSON of an archive must not hold {key}: its parameters are the "
                "archive's arrays",
                f"/model/{key}",
            )
    for key in arrays:
        if not _ARRAY.match(key):
            raise UnsupportedContent(
                f"the archive holds an array {key!r}; only model, W0, b0, W1, b1, ... are taken",
                f"/{key}",
            )
    layers = sum(1 for key in arrays if key.startswith("W"))
    params: list[tuple[NDArray[Any], NDArray[Any]]] = []
    for i in range(layers):
        for key in (f"W{i}", f"b{i}"):
            if key not in arrays:
                raise UnsupportedContent(f"the archive lacks the array {key!r}", f"/{key}")
            npy.numeric(arrays[key], f"the array {key!r}", f"/{key}")
        params.append((arrays[f"W{i}"], arrays[f"b{i}"]))
    if len(params) * 2 != len(arrays):
        raise UnsupportedContent("the archive has biases without weights", "/")
    return body, params
