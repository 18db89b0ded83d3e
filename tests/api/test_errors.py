"""Bad requests: each is answered with its documented status as an RFC 9457 problem (with
JSON pointers for validation errors), and leaves the registry exactly as it was."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from service.settings import DEFAULT_LIMITS as LIMITS
from tests.api.support import (
    AFTER_STEP,
    JSON,
    SEED_DATA,
    SEED_INPUTS,
    SEED_NETWORK,
    SEED_PARAMETERS,
    SEED_PARAMETERS_NAMED,
    SEED_TARGETS,
    SOFT_NETWORK,
    SOFT_PARAMETERS,
    Pool,
    assert_problem,
    parameters_of,
    seed_model,
    snapshot,
)

pytestmark = pytest.mark.anyio

X = "__RAW__"  # stands for a raw JSON token (NaN, Infinity, 1e400) spliced into a body's text
MB = 1024 * 1024


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module-wide, so that the shared apps live in one event loop with the tests."""
    return "asyncio"


@pytest.fixture
async def populated(pool: Pool) -> httpx.AsyncClient:
    """A registry holding the seed model ``seed`` and a softmax/cross-entropy model ``soft``,
    both at version 1 and nothing else."""
    return await pool.client()


@dataclass(frozen=True)
class Case:
    """One bad request and the problem it must get."""

    id: str
    method: str
    path: str
    status: int
    body: JSON = None
    raw: str | None = None  # replaces X in json.dumps(body) to send a raw JSON token
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    pointer: str | None = None
    pointer_prefix: str | None = None
    parameter: str | None = None
    type_suffix: str | None = None

    async def send(self, client: httpx.AsyncClient) -> httpx.Response:
        headers = dict(self.headers)
        content = self.content
        if self.raw is not None:
            content = json.dumps(self.body).replace(json.dumps(X), self.raw).encode()
        if content is not None:
            headers.setdefault("content-type", "application/json")
            return await client.request(self.method, self.path, content=content, headers=headers)
        if self.body is None:
            return await client.request(self.method, self.path, headers=headers)
        return await client.request(self.method, self.path, json=self.body, headers=headers)


def check(response: httpx.Response, case: Case) -> dict[str, JSON]:
    return assert_problem(
        response,
        case.status,
        pointer=case.pointer,
        pointer_prefix=case.pointer_prefix,
        type_suffix=case.type_suffix,
        parameter=case.parameter,
    )


async def assert_rejected_without_change(client: httpx.AsyncClient, case: Case) -> None:
    before = await snapshot(client)
    check(await case.send(client), case)
    assert await snapshot(client) == before


# -- the catalogue -----------------------------------------------------------------------------

COMPUTE = [
    # (id, path, takes targets, takes learning_rate, inline network)
    ("forward", "/v1/models/seed/forward", False, False, False),
    ("gradient", "/v1/models/seed/gradient", True, False, False),
    ("train-step", "/v1/models/seed/train-step", True, True, False),
    ("stateless-forward", "/v1/forward", False, False, True),
    ("stateless-gradient", "/v1/gradient", True, False, True),
    ("stateless-train-step", "/v1/train-step", True, True, True),
]

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]


def compute_cases() -> list[Case]:
    cases: list[Case] = []
    for name, path, targets, rate, inline in COMPUTE:

        def body(
            inputs: JSON = SEED_INPUTS,
            _targets: bool = targets,
            _inline: bool = inline,
            **extra: JSON,
        ) -> dict[str, JSON]:
            b: dict[str, JSON] = {"inputs": inputs}
            if _targets:
                b["targets"] = SEED_TARGETS
            if _inline:
                b["network"] = SEED_NETWORK
                b["parameters"] = SEED_PARAMETERS
            b.update(extra)
            return b

        def case(
            id: str, status: int = 422, _name: str = name, _path: str = path, **kw: JSON
        ) -> Case:
            return Case(f"{_name}-{id}", "POST", _path, status, **kw)

        cases += [
            case(
                "malformed-json",
                400,
                content=b'{"inputs": [[0.23, 0.55]',
                type_suffix="malformed-body",
            ),
            case("not-an-object", content=b"[[0.23, 0.55]]", pointer_prefix=""),
            case("empty-body", 400, content=b"", type_suffix="malformed-body"),
            case(
                "json-as-text",
                415,
                content=json.dumps(body(SEED_INPUTS)).encode(),
                headers={"content-type": "text/plain"},
                type_suffix="unsupported-media-type",
            ),
            case(
                "json-as-form",
                415,
                content=json.dumps(body(SEED_INPUTS)).encode(),
                headers={"content-type": "application/x-www-form-urlencoded"},
                type_suffix="unsupported-media-type",
            ),
            case("input-row-of-wrong-width", body=body([[0.23, 0.55, 1.0]]), pointer="/inputs/0"),
            case(
                "input-rows-of-wrong-width",
                body={**body([[0.23]]), **({"targets": [[0.01]]} if targets else {})},
                pointer="/inputs/0",
            ),
            case("ragged-input-rows", body=body([[0.23, 0.55], [0.1]]), pointer_prefix="/inputs"),
            case("empty-inputs", body=body([]), pointer="/inputs"),
            case("one-dimensional-inputs", body=body([0.23, 0.55]), pointer_prefix="/inputs/0"),
            case("string-in-inputs", body=body([["0.23", 0.55]]), pointer="/inputs/0/0"),
            case("boolean-in-inputs", body=body([[True, 0.55]]), pointer="/inputs/0/0"),
            case(
                "missing-inputs",
                body={k: v for k, v in body().items() if k != "inputs"},
                pointer="/inputs",
            ),
            case("unknown-field", body=body(bogus=1), pointer="/bogus"),
        ]
        cases += [
            case(f"inputs-{token}", body=body([[X, 0.55]]), raw=token, pointer="/inputs/0/0")
            for token in NON_FINITE
        ]
        if targets:
            cases += [
                case(
                    "targets-with-wrong-row-count",
                    body=body(targets=[[0.01], [0.02]]),
                    pointer="/targets",
                ),
                case(
                    "targets-of-wrong-width",
                    body=body(targets=[[0.01, 0.02]]),
                    pointer="/targets/0",
                ),
                case(
                    "missing-targets",
                    body={k: v for k, v in body().items() if k != "targets"},
                    pointer="/targets",
                ),
                case("targets-NaN", body=body(targets=[[X]]), raw="NaN", pointer="/targets/0/0"),
            ]
        if rate:
            cases += [
                case("learning-rate-zero", body=body(learning_rate=0), pointer="/learning_rate"),
                case(
                    "learning-rate-negative",
                    body=body(learning_rate=-0.01),
                    pointer="/learning_rate",
                ),
                case(
                    "learning-rate-string",
                    body=body(learning_rate="0.01"),
                    pointer="/learning_rate",
                ),
            ]
            cases += [
                case(
                    f"learning-rate-{token}",
                    body=body(learning_rate=X),
                    raw=token,
                    pointer="/learning_rate",
                )
                for token in ("NaN", "Infinity", "1e400")
            ]
        else:
            cases.append(
                case(
                    "learning-rate-not-accepted",
                    body=body(learning_rate=0.01),
                    pointer="/learning_rate",
                )
            )
        if inline:
            transposed = {
                "layers": [
                    {"weights": [[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]], "biases": [0.1, -0.4, 0.3]},
                    *SEED_PARAMETERS["layers"][1:],
                ]
            }
            missing = {k: v for k, v in SEED_PARAMETERS_NAMED.items() if k != "b7"}
            cases += [
                case(
                    "parameters-of-wrong-shape",
                    body=body(parameters=transposed),
                    pointer="/parameters/layers/0/weights",
                ),
                case(
                    "named-parameters-missing-a-name",
                    body=body(parameters=missing),
                    pointer="/parameters/b7",
                ),
                case(
                    "parameters-NaN",
                    body=body(parameters={**SEED_PARAMETERS_NAMED, "w5": X}),
                    raw="NaN",
                    pointer="/parameters/w5",
                ),
                case(
                    "network-unknown-activation",
                    body=body(
                        network={
                            **SEED_NETWORK,
                            "layers": [
                                {"units": 3, "activation": "swish"},
                                *SEED_NETWORK["layers"][1:],
                            ],
                        }
                    ),
                    pointer="/network/layers/0/activation",
                ),
                case(
                    "missing-network",
                    body={k: v for k, v in body().items() if k != "network"},
                    pointer="/network",
                ),
            ]
    return cases


def layers_with(index: int, **change: JSON) -> list[JSON]:
    layers: list[JSON] = [dict(layer) for layer in SEED_NETWORK["layers"]]
    layers[index].update(change)
    return layers


def network_with(**change: JSON) -> dict[str, JSON]:
    return {**SEED_NETWORK, **change}


def too_many_parameters() -> dict[str, JSON]:
    """The smallest stack of widest layers over ``LIMITS.max_parameters``."""
    units = LIMITS.max_units
    per_layer = units * units + units
    count = LIMITS.max_parameters // per_layer + 1
    assert count <= LIMITS.max_layers
    layers = [{"units": units, "activation": "relu"} for _ in range(count)]
    return {"inputs": units, "layers": layers, "loss": "half_squared_error"}


def too_many_layers() -> dict[str, JSON]:
    layers = [{"units": 1, "activation": "identity"} for _ in range(LIMITS.max_layers + 1)]
    return {"inputs": 1, "layers": layers, "loss": "half_squared_error"}


def create_cases() -> list[Case]:
    def case(id: str, status: int = 422, **kw: JSON) -> Case:
        return Case(f"create-{id}", "POST", "/v1/models", status, **kw)

    def model(name: str = "new", **change: JSON) -> dict[str, JSON]:
        return {**seed_model(name), **change}

    transposed = {
        "layers": [
            {"weights": [[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]], "biases": [0.1, -0.4, 0.3]},
            *SEED_PARAMETERS["layers"][1:],
        ]
    }
    short_bias = {
        "layers": [
            SEED_PARAMETERS["layers"][0],
            {"weights": SEED_PARAMETERS["layers"][1]["weights"], "biases": [0.1]},
            SEED_PARAMETERS["layers"][2],
        ]
    }
    nan_layered = {
        "layers": [
            {"weights": [[X, 0.2, 0.3], [0.4, 0.5, 0.6]], "biases": [0.1, -0.4, 0.3]},
            *SEED_PARAMETERS["layers"][1:],
        ]
    }
    missing_w3 = {k: v for k, v in SEED_PARAMETERS_NAMED.items() if k != "w3"}
    cases = [
        case(
            "malformed-json",
            400,
            content=b'{"name": "new", "network": ',
            type_suffix="malformed-body",
        ),
        case(
            "trailing-garbage",
            400,
            content=json.dumps(seed_model("new")).encode() + b"}",
            type_suffix="malformed-body",
        ),
        case(
            "NaN-in-named-parameters",
            body=model(parameters={**SEED_PARAMETERS_NAMED, "w1": X}),
            raw="NaN",
            pointer="/parameters/w1",
        ),
        case(
            "Infinity-in-named-parameters",
            body=model(parameters={**SEED_PARAMETERS_NAMED, "b2": X}),
            raw="-Infinity",
            pointer="/parameters/b2",
        ),
        case(
            "NaN-in-layered-parameters",
            body=model(parameters=nan_layered),
            raw="NaN",
            pointer="/parameters/layers/0/weights/0/0",
        ),
        case(
            "1e400-in-layered-parameters",
            body=model(parameters=nan_layered),
            raw="1e400",
            pointer="/parameters/layers/0/weights/0/0",
        ),
        case(
            "unknown-activation",
            body=model(network=network_with(layers=layers_with(1, activation="swish"))),
            pointer="/network/layers/1/activation",
        ),
        case(
            "softmax-in-hidden-layer",
            body=model(network=network_with(layers=layers_with(0, activation="softmax"))),
            pointer="/network/layers/0/activation",
        ),
        case(
            "cross-entropy-without-softmax",
            body=model(network=network_with(loss="cross_entropy")),
            pointer="/network/layers/2/activation",
        ),
        case(
            "binary-cross-entropy-without-sigmoid",
            body=model(
                network=network_with(
                    layers=layers_with(2, activation="relu"), loss="binary_cross_entropy"
                )
            ),
            pointer="/network/layers/2/activation",
        ),
        case(
            "softmax-output-of-one-unit",
            body=model(
                network=network_with(
                    layers=layers_with(2, activation="softmax"), loss="cross_entropy"
                )
            ),
            pointer="/network/layers/2/activation",
        ),
        case(
            "unknown-loss", body=model(network=network_with(loss="hinge")), pointer="/network/loss"
        ),
        case(
            "zero-units",
            body=model(network=network_with(layers=layers_with(0, units=0))),
            pointer="/network/layers/0/units",
        ),
        case(
            "fractional-units",
            body=model(network=network_with(layers=layers_with(0, units=2.5))),
            pointer="/network/layers/0/units",
        ),
        case("zero-inputs", body=model(network=network_with(inputs=0)), pointer="/network/inputs"),
        case("no-layers", body=model(network=network_with(layers=[])), pointer="/network/layers"),
        case(
            "unknown-dtype",
            body=model(network=network_with(dtype="float16")),
            pointer="/network/dtype",
        ),
        case(
            "NaN-negative-slope",
            body=model(
                network=network_with(
                    layers=layers_with(0, activation="leaky_relu", negative_slope=X)
                )
            ),
            raw="NaN",
            pointer="/network/layers/0/negative_slope",
        ),
        case(
            "parameters-of-wrong-shape",
            body=model(parameters=transposed),
            pointer="/parameters/layers/0/weights",
        ),
        case(
            "biases-of-wrong-length",
            body=model(parameters=short_bias),
            pointer="/parameters/layers/1/biases",
        ),
        case(
            "parameters-for-too-few-layers",
            body=model(parameters={"layers": SEED_PARAMETERS["layers"][:2]}),
            pointer="/parameters/layers",
        ),
        case(
            "named-parameters-missing-a-name",
            body=model(parameters=missing_w3),
            pointer="/parameters/w3",
        ),
        case(
            "named-parameters-with-unknown-name",
            body=model(parameters={**SEED_PARAMETERS_NAMED, "w99": 0.5}),
            pointer="/parameters/w99",
        ),
        case(
            "more-parameters-than-the-limit",
            body=model(
                network=too_many_parameters(), parameters=None, init={"scheme": "zeros", "seed": 0}
            ),
            pointer_prefix="/network",
        ),
        case(
            "more-parameters-than-the-limit-without-init",
            body={"name": "new", "network": too_many_parameters()},
            pointer_prefix="/network",
        ),
        case(
            "more-layers-than-the-limit",
            body={"name": "new", "network": too_many_layers()},
            pointer_prefix="/network/layers",
        ),
        case(
            "more-units-than-the-limit",
            body=model(
                network=network_with(layers=layers_with(0, units=LIMITS.max_units + 1)),
                parameters=None,
            ),
            pointer="/network/layers/0/units",
        ),
        case("unknown-field", body=model(bogus=True), pointer="/bogus"),
        case(
            "unknown-field-in-a-layer",
            body=model(network=network_with(layers=layers_with(0, bogus=1))),
            pointer="/network/layers/0/bogus",
        ),
        case(
            "unknown-field-in-the-network",
            body=model(network=network_with(bogus=1)),
            pointer="/network/bogus",
        ),
        case(
            "parameters-and-init",
            body=model(init={"scheme": "zeros", "seed": 1}),
            pointer_prefix="",
        ),
        case(
            "unknown-init-scheme",
            body={"name": "new", "network": SEED_NETWORK, "init": {"scheme": "magic"}},
            pointer="/init/scheme",
        ),
        case(
            "negative-init-seed",
            body={"name": "new", "network": SEED_NETWORK, "init": {"scheme": "zeros", "seed": -1}},
            pointer="/init/seed",
        ),
        case(
            "unknown-optimizer",
            body=model(optimizer={"kind": "rmsprop"}),
            pointer_prefix="/optimizer",
        ),
        case(
            "momentum-of-one",
            body=model(optimizer={"kind": "sgd", "momentum": 1.0}),
            pointer="/optimizer/momentum",
        ),
        case(
            "optimizer-learning-rate-zero",
            body=model(optimizer={"kind": "adam", "learning_rate": 0}),
            pointer="/optimizer/learning_rate",
        ),
        case(
            "missing-name",
            body={"network": SEED_NETWORK, "parameters": SEED_PARAMETERS},
            pointer="/name",
        ),
        case("name-taken", 409, body=seed_model("seed"), type_suffix="name-taken"),
        case(
            "name-taken-by-a-different-network",
            409,
            body={"name": "soft", "network": SEED_NETWORK},
            type_suffix="name-taken",
        ),
    ]
    bad_names = {
        "slash": "a/b",
        "dot-dot": "..",
        "inner-dot-dot": "a..b",
        "dot": ".",
        "leading-dot": ".hidden",
        "control-character": "a\x01b",
        "newline": "a\nb",
        "space": "a b",
        "65-characters": "a" * 65,
        "empty": "",
        "non-ascii": "modèle",
        "number": 7,
    }
    cases += [
        case(f"name-{key}", body=seed_model(name), pointer="/name")  # type: ignore[arg-type]
        for key, name in bad_names.items()
    ]
    return cases


def model_cases() -> list[Case]:
    valid = {
        "forward": {"inputs": SEED_INPUTS},
        "gradient": SEED_DATA,
        "train-step": SEED_DATA,
    }
    cases = [
        Case("get-name-with-encoded-slash", "GET", "/v1/models/a%2Fb", 404),
        Case("parameters-of-name-with-encoded-slash", "GET", "/v1/models/a%2Fb/parameters", 404),
        Case("unknown-model-get", "GET", "/v1/models/ghost", 404, type_suffix="not-found"),
        Case(
            "unknown-model-parameters",
            "GET",
            "/v1/models/ghost/parameters",
            404,
            type_suffix="not-found",
        ),
        Case(
            "unknown-model-versions",
            "GET",
            "/v1/models/ghost/versions",
            404,
            type_suffix="not-found",
        ),
        Case("unknown-model-delete", "DELETE", "/v1/models/ghost", 404, type_suffix="not-found"),
        Case(
            "unknown-model-put-parameters",
            "PUT",
            "/v1/models/ghost/parameters",
            404,
            body={"parameters": SEED_PARAMETERS},
            type_suffix="not-found",
        ),
        Case(
            "unknown-model-rollback",
            "POST",
            "/v1/models/ghost/rollback",
            404,
            body={"version": 1},
            type_suffix="not-found",
        ),
        Case(
            "unknown-model-train-step-with-if-match",
            "POST",
            "/v1/models/ghost/train-step",
            404,
            body=SEED_DATA,
            headers={"If-Match": '"1"'},
            type_suffix="not-found",
        ),
        Case("unknown-route", "GET", "/v1/nothing", 404, type_suffix="not-found"),
        Case(
            "unknown-route-below-a-model",
            "GET",
            "/v1/models/seed/nothing",
            404,
            type_suffix="not-found",
        ),
        Case(
            "unknown-version",
            "GET",
            "/v1/models/seed/parameters?version=2",
            404,
            type_suffix="not-found",
        ),
        Case(
            "version-zero", "GET", "/v1/models/seed/parameters?version=0", 422, parameter="version"
        ),
        Case(
            "version-not-a-number",
            "GET",
            "/v1/models/seed/parameters?version=two",
            422,
            parameter="version",
        ),
        Case(
            "forward-unknown-notation",
            "POST",
            "/v1/models/seed/forward?notation=greek",
            422,
            body={"inputs": SEED_INPUTS},
            parameter="notation",
        ),
        Case("list-limit-zero", "GET", "/v1/models?limit=0", 422, parameter="limit"),
        Case(
            "unknown-notation",
            "GET",
            "/v1/models/seed/parameters?notation=greek",
            422,
            parameter="notation",
        ),
        Case(
            "wrong-method-on-forward",
            "PUT",
            "/v1/models/seed/forward",
            405,
            body={"inputs": SEED_INPUTS},
        ),
        Case("wrong-method-on-models", "DELETE", "/v1/models", 405),
        Case("wrong-method-on-train-step", "GET", "/v1/models/seed/train-step", 405),
        Case("wrong-method-on-stateless-forward", "GET", "/v1/forward", 405),
        Case(
            "put-parameters-of-wrong-shape",
            "PUT",
            "/v1/models/seed/parameters",
            422,
            body={
                "parameters": {
                    "layers": [
                        {
                            "weights": [[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]],
                            "biases": [0.1, -0.4, 0.3],
                        },
                        *SEED_PARAMETERS["layers"][1:],
                    ]
                }
            },
            pointer="/parameters/layers/0/weights",
        ),
        Case(
            "put-named-parameters-missing-a-name",
            "PUT",
            "/v1/models/seed/parameters",
            422,
            body={"parameters": {k: v for k, v in SEED_PARAMETERS_NAMED.items() if k != "w18"}},
            pointer="/parameters/w18",
        ),
        Case(
            "put-named-parameters-with-unknown-name",
            "PUT",
            "/v1/models/seed/parameters",
            422,
            body={"parameters": {**SEED_PARAMETERS_NAMED, "b8": 0.1}},
            pointer="/parameters/b8",
        ),
        Case(
            "put-parameters-NaN",
            "PUT",
            "/v1/models/seed/parameters",
            422,
            body={"parameters": {**SEED_PARAMETERS_NAMED, "w18": X}},
            raw="NaN",
            pointer="/parameters/w18",
        ),
        Case(
            "put-parameters-of-another-model",
            "PUT",
            "/v1/models/seed/parameters",
            422,
            body={"model": "soft", "parameters": SEED_PARAMETERS},
            pointer="/model",
        ),
        Case(
            "put-parameters-missing",
            "PUT",
            "/v1/models/seed/parameters",
            422,
            body={},
            pointer="/parameters",
        ),
        Case(
            "put-malformed-json",
            "PUT",
            "/v1/models/seed/parameters",
            400,
            content=b'{"parameters": ',
            type_suffix="malformed-body",
        ),
        Case(
            "rollback-to-version-zero",
            "POST",
            "/v1/models/seed/rollback",
            422,
            body={"version": 0},
            pointer="/version",
        ),
        Case(
            "rollback-to-unknown-version",
            "POST",
            "/v1/models/seed/rollback",
            404,
            body={"version": 7},
            type_suffix="not-found",
        ),
        Case(
            "cross-entropy-targets-not-summing-to-one",
            "POST",
            "/v1/models/soft/gradient",
            422,
            body={"inputs": [[1.0, 2.0]], "targets": [[0.5, 0.2]]},
            pointer="/targets/0",
        ),
        Case(
            "cross-entropy-targets-not-summing-to-one-in-row-1",
            "POST",
            "/v1/models/soft/train-step",
            422,
            body={"inputs": [[1.0, 2.0], [0.5, 0.5]], "targets": [[0.0, 1.0], [0.7, 0.7]]},
            pointer="/targets/1",
        ),
        Case(
            "cross-entropy-negative-targets",
            "POST",
            "/v1/models/soft/train-step",
            422,
            body={"inputs": [[1.0, 2.0]], "targets": [[1.5, -0.5]]},
            pointer="/targets/0/1",
        ),
        Case(
            "stateless-cross-entropy-targets-not-summing-to-one",
            "POST",
            "/v1/train-step",
            422,
            body={
                "network": SOFT_NETWORK,
                "parameters": SOFT_PARAMETERS,
                "inputs": [[1.0, 2.0]],
                "targets": [[0.4, 0.4]],
            },
            pointer="/targets/0",
        ),
    ]
    for op, body in valid.items():
        cases.append(
            Case(
                f"unknown-model-{op}",
                "POST",
                f"/v1/models/ghost/{op}",
                404,
                body=body,
                type_suffix="not-found",
            )
        )
    writes: list[tuple[str, str, JSON]] = [
        ("PUT", "/v1/models/seed/parameters", {"parameters": AFTER_STEP}),
        ("POST", "/v1/models/seed/train-step", SEED_DATA),
        ("DELETE", "/v1/models/seed", None),
        ("POST", "/v1/models/seed/rollback", {"version": 1}),
    ]
    for method, path, payload in writes:
        for tag in ("abc", '"x1"', '"-1"', "1.5"):
            cases.append(
                Case(
                    f"malformed-if-match-{tag}-on-{method}-{path.rsplit('/', 1)[-1]}",
                    method,
                    path,
                    400,
                    body=payload,
                    headers={"If-Match": tag},
                )
            )
    return cases


CASES = compute_cases() + create_cases() + model_cases()


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_bad_request_answers_problem_and_changes_nothing(
    populated: httpx.AsyncClient, case: Case
) -> None:
    await assert_rejected_without_change(populated, case)


# -- If-Match -----------------------------------------------------------------------------------

STALE_WRITES: list[tuple[str, str, str, JSON]] = [
    ("put-parameters", "PUT", "/v1/models/seed/parameters", {"parameters": AFTER_STEP}),
    ("train-step", "POST", "/v1/models/seed/train-step", SEED_DATA),
    ("delete", "DELETE", "/v1/models/seed", None),
    ("rollback", "POST", "/v1/models/seed/rollback", {"version": 1}),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), [w[1:] for w in STALE_WRITES], ids=[w[0] for w in STALE_WRITES]
)
@pytest.mark.parametrize("tag", ['"1"', '"3"', 'W/"1"'])
async def test_stale_if_match_answers_412_and_changes_nothing(
    populated: httpx.AsyncClient, method: str, path: str, body: JSON, tag: str
) -> None:
    step = await populated.post("/v1/models/seed/train-step", json=SEED_DATA)
    assert step.json()["version"] == 2
    case = Case(
        "stale",
        method,
        path,
        412,
        body=body,
        headers={"If-Match": tag},
        type_suffix="precondition-failed",
    )
    before = await snapshot(populated)
    response = await case.send(populated)
    check(response, case)
    assert response.headers.get("etag") == '"2"'
    assert await snapshot(populated) == before


@pytest.mark.parametrize(
    "case",
    [
        Case(
            "wrong-shape",
            "PUT",
            "/v1/models/seed/parameters",
            412,
            body={"parameters": {"layers": []}},
        ),
        Case("unknown-field", "PUT", "/v1/models/seed/parameters", 412, body={"bogus": 1}),
        Case(
            "non-finite",
            "PUT",
            "/v1/models/seed/parameters",
            412,
            body={"parameters": {**SEED_PARAMETERS_NAMED, "w1": X}},
            raw="NaN",
        ),
        Case(
            "malformed-json", "PUT", "/v1/models/seed/parameters", 412, content=b'{"parameters": '
        ),
        Case(
            "train-step-wrong-width",
            "POST",
            "/v1/models/seed/train-step",
            412,
            body={"inputs": [[1.0]], "targets": [[0.0]]},
        ),
    ],
    ids=lambda case: case.id,
)
async def test_if_match_is_checked_before_the_body(
    populated: httpx.AsyncClient, case: Case
) -> None:
    step = await populated.post("/v1/models/seed/train-step", json=SEED_DATA)
    assert step.status_code == 200
    stale = Case(
        case.id,
        case.method,
        case.path,
        412,
        body=case.body,
        raw=case.raw,
        content=case.content,
        headers={"If-Match": '"1"'},
        type_suffix="precondition-failed",
    )
    await assert_rejected_without_change(populated, stale)


async def test_current_if_match_lets_writes_through(populated: httpx.AsyncClient) -> None:
    put = await populated.put(
        "/v1/models/seed/parameters", json={"parameters": AFTER_STEP}, headers={"If-Match": '"1"'}
    )
    assert put.status_code == 200, put.text
    step = await populated.post(
        "/v1/models/seed/train-step", json=SEED_DATA, headers={"If-Match": '"2"'}
    )
    assert step.status_code == 200, step.text
    assert step.json()["version"] == 3
    star = await populated.post(
        "/v1/models/seed/train-step", json=SEED_DATA, headers={"If-Match": "*"}
    )
    assert star.status_code == 200, star.text
    assert star.json()["version"] == 4


# -- overflow -------------------------------------------------------------------------------------

IDENTITY_NETWORK = {
    "inputs": 1,
    "layers": [{"units": 1, "activation": "identity"}],
    "loss": "half_squared_error",
}
HUGE: JSON = {"layers": [{"weights": [[1e150]], "biases": [0.0]}]}
OVERFLOWS = {
    # net = 1e300 is finite, the loss 1/2 * (1e300)^2 is not
    "loss-overflows": {"inputs": [[1e150]], "targets": [[0.0]]},
    # the loss (5e299) and gradient (1e150) are finite, the update 1e308 * 1e150 is not
    "update-overflows": {"inputs": [[1.0]], "targets": [[0.0]], "learning_rate": 1e308},
    # net = 1e150 * 1e200 is not finite
    "net-overflows": {"inputs": [[1e200]], "targets": [[0.0]]},
}


@pytest.mark.parametrize("data", OVERFLOWS.values(), ids=list(OVERFLOWS))
async def test_train_step_that_would_overflow_answers_422_and_commits_nothing(
    populated: httpx.AsyncClient, data: JSON
) -> None:
    created = await populated.post(
        "/v1/models", json={"name": "huge", "network": IDENTITY_NETWORK, "parameters": HUGE}
    )
    assert created.status_code == 201, created.text
    before = await snapshot(populated)
    response = await populated.post("/v1/models/huge/train-step", json=data)
    body = assert_problem(response, 422, type_suffix="numeric-overflow")
    assert body["type"].endswith("numeric-overflow")
    after = await snapshot(populated)
    assert after == before
    assert after["models"]["huge"]["model"]["version"] == 1
    assert await parameters_of(populated, "huge") == HUGE  # bit-identical
    stateless = await populated.post(
        "/v1/train-step", json={"network": IDENTITY_NETWORK, "parameters": HUGE, **data}
    )
    assert_problem(stateless, 422, type_suffix="numeric-overflow")


async def test_gradient_and_forward_that_overflow_answer_422(
    populated: httpx.AsyncClient,
) -> None:
    created = await populated.post(
        "/v1/models", json={"name": "huge", "network": IDENTITY_NETWORK, "parameters": HUGE}
    )
    assert created.status_code == 201
    gradient = await populated.post("/v1/models/huge/gradient", json=OVERFLOWS["loss-overflows"])
    assert_problem(gradient, 422, type_suffix="numeric-overflow")
    forward = await populated.post("/v1/models/huge/forward", json={"inputs": [[1e200]]})
    assert_problem(forward, 422, type_suffix="numeric-overflow")


LEAKY_NETWORK = {
    "inputs": 1,
    "layers": [{"units": 1, "activation": "leaky_relu", "negative_slope": 1e10}],
    "loss": "half_squared_error",
}
LEAKY = {"layers": [{"weights": [[1e300]], "biases": [0.0]}]}


async def test_forward_whose_activation_overflows_answers_422_not_null(
    populated: httpx.AsyncClient,
) -> None:
    """net = -1e300 is finite, leaky_relu's out = 1e10 * net is not: no output exists."""
    created = await populated.post(
        "/v1/models", json={"name": "leaky", "network": LEAKY_NETWORK, "parameters": LEAKY}
    )
    assert created.status_code == 201, created.text
    for trace in (False, True):
        stored = await populated.post(
            "/v1/models/leaky/forward", json={"inputs": [[-1.0]], "trace": trace}
        )
        assert_problem(stored, 422, type_suffix="numeric-overflow")
        stateless = await populated.post(
            "/v1/forward",
            json={
                "network": LEAKY_NETWORK,
                "parameters": LEAKY,
                "inputs": [[-1.0]],
                "trace": trace,
            },
        )
        assert_problem(stateless, 422, type_suffix="numeric-overflow")
    # The same model computes where nothing overflows.
    fine = await populated.post("/v1/models/leaky/forward", json={"inputs": [[1e-300]]})
    assert fine.status_code == 200, fine.text
    assert fine.json()["outputs"] == [[1e-300 * 1e300]]


# The loss (5e299) and the weight's gradient (1e160) are finite, its square (Adam's second
# moment) is not: the step's result, optimizer state included, would not be finite.
ADAM_OVERFLOW = {"inputs": [[1e10]], "targets": [[0.0]]}
ADAM_START = {"layers": [{"weights": [[1e140]], "biases": [0.0]}]}


async def test_adam_step_whose_moments_overflow_answers_422_and_commits_nothing(
    populated: httpx.AsyncClient,
) -> None:
    created = await populated.post(
        "/v1/models",
        json={
            "name": "adam",
            "network": IDENTITY_NETWORK,
            "parameters": ADAM_START,
            "optimizer": {"kind": "adam"},
        },
    )
    assert created.status_code == 201, created.text
    before = await snapshot(populated)
    stored = await populated.post("/v1/models/adam/train-step", json=ADAM_OVERFLOW)
    assert_problem(stored, 422, type_suffix="numeric-overflow")
    assert await snapshot(populated) == before


async def test_stateless_adam_step_whose_moments_overflow_answers_422(
    populated: httpx.AsyncClient,
) -> None:
    response = await populated.post(
        "/v1/train-step",
        json={
            "network": IDENTITY_NETWORK,
            "parameters": ADAM_START,
            "optimizer": {"kind": "adam"},
            **ADAM_OVERFLOW,
        },
    )
    assert_problem(response, 422, type_suffix="numeric-overflow")


# -- body size ----------------------------------------------------------------------------------


def fifty_megabytes() -> bytes:
    """A valid JSON forward request of 50 MB (padded with whitespace)."""
    head = json.dumps({"inputs": SEED_INPUTS}).encode()
    return head[:-1] + b" " * (50 * MB - len(head)) + b"}"


BIG_TARGETS = [
    ("forward", "/v1/models/seed/forward"),
    ("create", "/v1/models"),
    ("stateless-forward", "/v1/forward"),
]


@pytest.mark.parametrize("path", [p for _, p in BIG_TARGETS], ids=[i for i, _ in BIG_TARGETS])
async def test_body_over_the_limit_with_content_length_answers_413(
    populated: httpx.AsyncClient, path: str
) -> None:
    content = fifty_megabytes()
    before = await snapshot(populated)
    response = await populated.post(
        path, content=content, headers={"content-type": "application/json"}
    )
    assert "content-length" in response.request.headers
    assert_problem(response, 413, type_suffix="body-too-large")
    assert await snapshot(populated) == before


def chunks(content: bytes, size: int = MB) -> Callable[[], AsyncIterator[bytes]]:
    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(content), size):
            yield content[start : start + size]

    return stream


@pytest.mark.parametrize("path", [p for _, p in BIG_TARGETS], ids=[i for i, _ in BIG_TARGETS])
async def test_streamed_body_over_the_limit_answers_413(
    populated: httpx.AsyncClient, path: str
) -> None:
    stream = chunks(fifty_megabytes())
    before = await snapshot(populated)
    response = await populated.post(
        path, content=stream(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, type_suffix="body-too-large")
    assert await snapshot(populated) == before


async def test_streamed_body_under_the_limit_is_accepted(populated: httpx.AsyncClient) -> None:
    head = json.dumps({"inputs": SEED_INPUTS}).encode()
    content = head[:-1] + b" " * MB + b"}"
    stream = chunks(content, 64 * 1024)
    response = await populated.post(
        "/v1/models/seed/forward", content=stream(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text


def test_limits_fixtures_exceed_the_limits() -> None:
    network = too_many_parameters()
    sizes = [network["inputs"], *(layer["units"] for layer in network["layers"])]
    count = sum(a * b + b for a, b in itertools.pairwise(sizes))
    assert count > LIMITS.max_parameters
    assert len(network["layers"]) <= LIMITS.max_layers
    assert len(too_many_layers()["layers"]) > LIMITS.max_layers
    assert math.isfinite(HUGE["layers"][0]["weights"][0][0] ** 2)


async def test_malformed_json_names_where_once(client: httpx.AsyncClient) -> None:
    """The problem names the line, the column and the character of the error, each once."""
    response = await client.post(
        "/v1/forward",
        content=b'{"inputs": [[1, 2]',
        headers={"Content-Type": "application/json"},
    )
    problem = response.json()
    assert response.status_code == 400, problem
    assert problem["detail"] == (
        "the request body is not valid JSON "
        "(EOF while parsing a list at line 1 column 18; character 17)"
    )
