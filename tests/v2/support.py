"""Helpers of the Open Inference Protocol tests: V2 request bodies built by hand, following the
spec rather than the service's codec, and models to run."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
from numpy.typing import NDArray

JSON = Any


def json_request(data: NDArray[Any], datatype: str = "FP64", **extra: JSON) -> dict[str, JSON]:
    """An inference request with ``data`` as JSON (flat, row-major)."""
    tensor = {"name": "input", "shape": list(data.shape), "datatype": datatype}
    return {"inputs": [{**tensor, "data": data.ravel().tolist()}], **extra}


def binary_request(
    data: NDArray[Any], datatype: str = "FP64", **extra: JSON
) -> tuple[bytes, dict[str, str]]:
    """A request with ``data`` as binary (little-endian) after the JSON header, and its
    ``Inference-Header-Content-Length`` header."""
    raw = data.astype(data.dtype.newbyteorder("<")).tobytes()
    tensor = {
        "name": "input",
        "shape": list(data.shape),
        "datatype": datatype,
        "parameters": {"binary_data_size": len(raw)},
    }
    header = json.dumps({"inputs": [tensor], **extra}).encode()
    return header + raw, {"Inference-Header-Content-Length": str(len(header))}


def split_response(body: bytes, header_length: str | None) -> tuple[dict[str, JSON], bytes]:
    """The JSON header of a V2 response and the binary data after it."""
    if header_length is None:
        return json.loads(body), b""
    n = int(header_length)
    return json.loads(body[:n]), body[n:]


def random_model(
    name: str,
    sizes: list[int],
    activations: list[str],
    *,
    dtype: str = "float64",
    seed: int = 0,
) -> dict[str, JSON]:
    """A create body of a network with the given layer sizes (inputs first) and parameters
    drawn from a normal distribution."""
    rng = np.random.default_rng(seed)
    layers = [
        {
            "weights": rng.normal(size=(n_in, n_out)).tolist(),
            "biases": rng.normal(size=n_out).tolist(),
        }
        for n_in, n_out in itertools.pairwise(sizes)
    ]
    loss = "cross_entropy" if activations[-1] == "softmax" else "half_squared_error"
    return {
        "name": name,
        "network": {
            "inputs": sizes[0],
            "layers": [
                {"units": units, "activation": kind}
                for units, kind in zip(sizes[1:], activations, strict=True)
            ],
            "loss": loss,
            "dtype": dtype,
        },
        "parameters": {"layers": layers},
    }
