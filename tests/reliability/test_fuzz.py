"""Schemathesis against the live app's OpenAPI spec: every operation with the positive and
negative data it generates, and stateful sequences along the links it infers (create a model,
then read it, compute on it, write and delete it).

The checks that matter for this service:

- ``not_a_server_error``: no 5xx, whatever is sent;
- ``status_code_conformance``: every status is one the spec documents for the operation (the
  4xx problems come from ``problem_responses``);
- ``content_type_conformance``: ``application/json`` for results, ``application/problem+json``
  for problems, as documented;
- ``response_schema_conformance``: the body validates against the documented schema;
- ``negative_data_rejection``: a request that breaks the schema gets a 4xx, never a 2xx (412
  included: If-Match is checked before the body, as the contract says).

``positive_data_acceptance`` is left out: a request that fits the schema may still be refused
with a documented 404 (a name no model has), 409 (a taken name) or 422 (inputs of the wrong
width for the model), which that check would call failures.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from service import specs
from service.api.app import create_app
from service.api.schemas.common import NAME_PATTERN
from service.core import initialize
from service.interop import onnx_io
from service.settings import Settings
from tests.reliability.support import record_case

Case = schemathesis.Case[Any]

MAX_EXAMPLES = 30
STATEFUL_EXAMPLES = 30
STATEFUL_STEPS = 12

CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


# Models that exist before the fuzzer starts. Two inputs and one output, like the spec's
# examples (whose path example is "seed"), so that the compute operations on stored
# models reach the numeric core and answer 200, not only 404 or 422.
def _model(layers: list[dict[str, Any]], loss: str, **extra: Any) -> dict[str, Any]:
    return {"network": {"inputs": 2, "layers": layers, "loss": loss}, **extra}


KNOWN_MODELS: dict[str, dict[str, Any]] = {
    "seed": _model(
        [
            {"units": 3, "activation": "relu"},
            {"units": 3, "activation": "relu"},
            {"units": 1, "activation": "sigmoid"},
        ],
        "half_squared_error",
        init={"scheme": "xavier_uniform", "seed": 1},
    ),
    "fz-bce": _model(
        [{"units": 2, "activation": "tanh"}, {"units": 1, "activation": "sigmoid"}],
        "binary_cross_entropy",
        init={"scheme": "he_normal", "seed": 2},
    ),
    "fz-softmax": _model(
        [{"units": 3, "activation": "relu"}, {"units": 2, "activation": "softmax"}],
        "cross_entropy",
        init={"scheme": "xavier_normal", "seed": 3},
    ),
    "fz-identity": _model(
        [{"units": 1, "activation": "identity"}],
        "half_squared_error",
        init={"scheme": "uniform", "seed": 4},
        optimizer={"kind": "sgd", "learning_rate": 0.5, "momentum": 0.9, "nesterov": True},
    ),
    "fz-adam32": {
        "network": {
            "inputs": 2,
            "layers": [
                {"units": 4, "activation": "leaky_relu", "negative_slope": 0.2},
                {"units": 1, "activation": "identity"},
            ],
            "loss": "mean_squared_error",
            "dtype": "float32",
        },
        "init": {"scheme": "he_uniform", "seed": 5},
        "optimizer": {"kind": "adam", "learning_rate": 0.1},
    },
}


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


# Binary bodies: well-formed files of the right and the wrong shapes, and arbitrary bytes.
_rows = st.integers(1, 4)
_junk = st.binary(max_size=64)
NPY_BODIES = st.one_of(
    _rows.map(lambda n: _npy(np.linspace(-1, 1, 2 * n).reshape(n, 2))),
    _rows.map(lambda n: _npy(np.ones((n, 3)))),
    _junk,
)
NPZ_BODIES = st.one_of(
    _rows.map(
        lambda n: _npz(inputs=np.linspace(-1, 1, 2 * n).reshape(n, 2), targets=np.full((n, 1), 0.5))
    ),
    _rows.map(lambda n: _npz(inputs=np.ones((n, 2)))),
    _junk,
)
ONNX_BODIES = st.one_of(
    st.sampled_from(sorted(KNOWN_MODELS)).map(lambda name: _onnx_of(name)),
    _junk,
)


def _onnx_of(name: str) -> bytes:
    spec = KNOWN_MODELS[name]
    network = specs.network_from_dict({"dtype": "float64", **spec["network"]})
    params = initialize(network, "xavier_uniform", 0)
    return onnx_io.to_onnx(network, params, name, 1)


schemathesis.openapi.media_type("application/x-npy", NPY_BODIES)
schemathesis.openapi.media_type("application/x-npz", NPZ_BODIES)
schemathesis.openapi.media_type("application/onnx", ONNX_BODIES)

_names = itertools.count()


def _valid_name(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(NAME_PATTERN, value) is not None


def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Aim a share of the calls with a valid ``name`` at a model that exists.

    Only valid names are replaced, so a negative case stays negative."""
    if not path_parameters or not _valid_name(path_parameters.get("name")):
        return st.just(path_parameters)
    known = st.sampled_from(sorted(KNOWN_MODELS)).map(lambda n: {**path_parameters, "name": n})
    return st.one_of(st.just(path_parameters), known)


def flatmap_headers(context: Any, headers: dict[str, Any] | None) -> Any:
    """Give a share of the generated If-Match headers the form of an ETag (mostly stale, some
    current), so that conditional writes get past the 400 for a malformed header."""
    if not headers or not isinstance(headers.get("If-Match"), str):
        return st.just(headers)
    rest = {k: v for k, v in headers.items() if k != "If-Match"}
    etags = st.sampled_from(['"1"', '"2"', '"3"', 'W/"1"', "*"])
    return st.one_of(
        st.just(headers), st.just(rest), etags.map(lambda tag: {**rest, "If-Match": tag})
    )


def map_body(context: Any, body: Any) -> Any:
    """Give created models distinct names (the generator favours "0"), so that creates
    succeed and the stateful links have models to follow; taken names (409) still occur
    through the models created above."""
    operation = context.operation
    if (
        operation is not None
        and operation.method.upper() == "POST"
        and operation.path == "/v1/models"
        and isinstance(body, dict)
        and _valid_name(body.get("name"))
    ):
        return {**body, "name": f"{body['name'][:48]}-{next(_names)}"}
    return body


async def _seed_models(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)  # runs no lifespan, which would close the store
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for name, model in KNOWN_MODELS.items():
            response = await client.post("/v1/models", json={"name": name, **model})
            assert response.status_code == 201, response.text


# The spec is read from an app built at import (schemathesis parametrizes the test by its
# operations at collection); the requests go to a fresh app per test on its own SQLite file.
_spec_app = create_app(Settings(registry="memory://"))
CONFIG = schemathesis.Config.from_dict(
    {
        # Positive and negative data in every phase.
        "generation": {"mode": "all"},
        # Any 4xx rejects a request: 412 too, since If-Match is checked before the body (the
        # contract says so), and 413. A 2xx to a schema-violating request is the failure.
        "checks": {"negative_data_rejection": {"expected-statuses": ["4xx"]}},
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _spec_app, config=CONFIG)
shutdown_lifespans()  # from_asgi started the spec app's lifespan; this ends it and its store
schema.hook(flatmap_path_parameters)
schema.hook(flatmap_headers)
schema.hook(map_body)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    """The app on a new SQLite registry with the known models in it."""
    application = create_app(Settings(registry=f"sqlite:///{tmp_path}/fuzz.db"))
    anyio.run(_seed_models, application)
    yield application
    shutdown_lifespans()
    application.state.store.close()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_its_documented_contract(case: Case, app: FastAPI) -> None:
    response = case.call(app=app)
    record_case(f"{case.operation.method.upper()} {case.operation.path}", response.status_code)
    case.validate_response(response, checks=CHECKS, transport_kwargs={"app": app})


def test_stateful_sequences_answer_within_the_documented_contract(tmp_path: Path) -> None:
    calls = 0
    scenarios = itertools.count()

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        """Each scenario on a fresh app, so that what it draws from responses is repeatable."""

        def setup(self) -> None:
            registry = f"sqlite:///{tmp_path}/scenario-{next(scenarios)}.db"
            self.app = create_app(Settings(registry=registry))
            anyio.run(_seed_models, self.app)

        def teardown(self) -> None:
            shutdown_lifespans()
            self.app.state.store.close()
            super().teardown()

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"app": self.app}

        def after_call(self, response: Any, case: Case) -> None:
            nonlocal calls
            super().after_call(response, case)
            calls += 1
            operation = f"stateful: {case.operation.method.upper()} {case.operation.path}"
            record_case(operation, response.status_code)

        def validate_response(
            self,
            response: Any,
            case: Case,
            additional_checks: list[CheckFunction] | None = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)

    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert calls, "the state machine made no call"
