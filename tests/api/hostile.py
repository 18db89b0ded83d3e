"""Hostile input shared by the tests of every class of it (issue 15): the JSON routes and a valid
body of each, raw tokens that ``json.loads`` cannot read, degenerate arrays as ``.npy`` and
``.npz`` files, and a PostgreSQL fixture that fails rather than skips."""

from __future__ import annotations

import io
import json
import os
import re
from typing import Any

import numpy as np
import psycopg
import pytest
from numpy.typing import NDArray

from tests.api.support import SEED_INPUTS, SEED_NETWORK, SEED_PARAMETERS, SEED_TARGETS
from tests.postgres import DEFAULT_POSTGRES_URL

JSON = Any

BIG = "9" * 5000  # an integer longer than the 4,300 digits Python converts
DEEP_ARRAYS = "[" * 1000 + "]" * 1000
DEEP_OBJECTS = '{"a":' * 1000 + "1" + "}" * 1000
HOLE = "__HOLE__"  # stands for a raw JSON token spliced into a body's text

STATELESS: dict[str, JSON] = {"network": SEED_NETWORK, "parameters": SEED_PARAMETERS}
V2_REQUEST: dict[str, JSON] = {
    "id": "r1",
    "parameters": {"binary_data_output": False},
    "inputs": [
        {
            "name": "input",
            "shape": [1, 2],
            "datatype": "FP64",
            "data": SEED_INPUTS[0],
            "parameters": {},
        }
    ],
    "outputs": [{"name": "output", "parameters": {"binary_data": False}}],
}

# Every route with a JSON body: (id, method, path, a valid body on the seed model, the place of
# a number in it).
JSON_ROUTES: list[tuple[str, str, str, dict[str, JSON], tuple[str | int, ...]]] = [
    (
        "create",
        "POST",
        "/v1/models",
        {"name": "new", "network": SEED_NETWORK, "parameters": SEED_PARAMETERS, "tags": ["t"]},
        ("network", "inputs"),
    ),
    (
        "put-parameters",
        "PUT",
        "/v1/models/seed/parameters",
        {"parameters": SEED_PARAMETERS},
        ("parameters", "layers", 0, "biases", 0),
    ),
    ("rollback", "POST", "/v1/models/seed/rollback", {"version": 1}, ("version",)),
    (
        "train",
        "POST",
        "/v1/models/seed/train",
        {
            "dataset": {"inputs": SEED_INPUTS, "targets": SEED_TARGETS},
            "epochs": 1,
            "batch_size": 1,
            "learning_rate": 0.1,
        },
        ("epochs",),
    ),
    (
        "explain",
        "POST",
        "/v1/models/seed/explain",
        {"inputs": SEED_INPUTS, "targets": SEED_TARGETS, "parameter": "w1"},
        ("inputs", 0, 0),
    ),
    (
        "dataset",
        "POST",
        "/v1/datasets",
        {"name": "d", "inputs": SEED_INPUTS, "targets": SEED_TARGETS},
        ("inputs", 0, 1),
    ),
    ("forward", "POST", "/v1/models/seed/forward", {"inputs": SEED_INPUTS}, ("inputs", 0, 0)),
    (
        "gradient",
        "POST",
        "/v1/models/seed/gradient",
        {"inputs": SEED_INPUTS, "targets": SEED_TARGETS},
        ("targets", 0, 0),
    ),
    (
        "train-step",
        "POST",
        "/v1/models/seed/train-step",
        {"inputs": SEED_INPUTS, "targets": SEED_TARGETS, "learning_rate": 0.5},
        ("learning_rate",),
    ),
    (
        "stateless-forward",
        "POST",
        "/v1/forward",
        {**STATELESS, "inputs": SEED_INPUTS},
        ("network", "layers", 0, "units"),
    ),
    (
        "stateless-gradient",
        "POST",
        "/v1/gradient",
        {**STATELESS, "inputs": SEED_INPUTS, "targets": SEED_TARGETS},
        ("inputs", 0, 1),
    ),
    (
        "stateless-train-step",
        "POST",
        "/v1/train-step",
        {
            **STATELESS,
            "inputs": SEED_INPUTS,
            "targets": SEED_TARGETS,
            "optimizer": {"kind": "adam", "learning_rate": 0.1},
            "optimizer_state": {"step": 1, "slots": {}},
        },
        ("optimizer_state", "step"),
    ),
    ("v2-infer", "POST", "/v2/models/seed/infer", V2_REQUEST, ("inputs", 0, "shape", 0)),
    (
        "v2-infer-version",
        "POST",
        "/v2/models/seed/versions/1/infer",
        V2_REQUEST,
        ("inputs", 0, "data", 1),
    ),
    (
        "input-gradient",
        "POST",
        "/v1/models/seed/input-gradient",
        {"inputs": SEED_INPUTS, "targets": SEED_TARGETS, "jacobian": True},
        ("inputs", 0, 1),
    ),
    (
        "gradient-check",
        "POST",
        "/v1/models/seed/gradient-check",
        {"inputs": SEED_INPUTS, "targets": SEED_TARGETS, "epsilon": 1e-6, "sample": 3},
        ("epsilon",),
    ),
    (
        "stateless-input-gradient",
        "POST",
        "/v1/input-gradient",
        {**STATELESS, "inputs": SEED_INPUTS, "targets": SEED_TARGETS},
        ("targets", 0, 0),
    ),
]
ROUTE_IDS = [route[0] for route in JSON_ROUTES]


def replaced(body: JSON, where: tuple[str | int, ...], value: JSON) -> JSON:
    """A copy of ``body`` with the value at ``where`` replaced (the body itself at ``()``)."""
    if not where:
        return value
    head, rest = where[0], where[1:]
    if isinstance(body, dict):
        return {**body, head: replaced(body.get(head), rest, value)}  # a new member if absent
    copy = list(body)
    copy[int(head)] = replaced(copy[int(head)], rest, value)
    return copy


def spliced(body: JSON, where: tuple[str | int, ...], raw: str) -> bytes:
    """The JSON text of ``body`` with the raw token ``raw`` at ``where``."""
    return json.dumps(replaced(body, where, HOLE)).replace(json.dumps(HOLE), raw).encode()


def position(detail: str) -> int:
    """The character a JSON error names: "at character N" or "; character N" (the service's
    problem) or "(char N)" (a JSONDecodeError's own text)."""
    found = re.search(r"(?:at character|; character|\(char) (\d+)", detail)
    assert found, f"no position in {detail!r}"
    return int(found[1])


def npy(array: NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def npz(**arrays: NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def npy_declaring(shape: str, payload: bytes = b"", descr: str = "<f8") -> bytes:
    """An ``.npy`` file whose header declares ``shape`` (any text), followed by ``payload``."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


def reachable_postgres() -> str:
    """The test PostgreSQL database's URL; the test fails (it never skips) when it cannot be
    reached: the NUL cases are PostgreSQL's own."""
    url = os.environ.get("BACKPROP_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(f"PostgreSQL not reachable for the hostile-input tests: {exc}", pytrace=False)
    return url
