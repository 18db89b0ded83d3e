"""The committed OpenAPI spec is the app's, and documents every operation fully."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scripts.gen_openapi import SPEC, render
from service.api.app import create_app
from service.settings import Settings
from tests.seed import SEED

ROOT = Path(__file__).resolve().parents[1]


def committed() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC.read_text())
    return spec


def served() -> dict[str, Any]:
    """The spec as the app serves it at /openapi.json, in its own order."""
    app = create_app(Settings(registry="memory://"))
    try:
        spec: dict[str, Any] = app.openapi()
    finally:
        app.state.store.close()
    return spec


def test_committed_spec_equals_the_generated_one() -> None:
    assert SPEC.read_text() == render(), (
        "openapi/openapi.json drifted from the app: run python -m scripts.gen_openapi"
    )


def test_every_operation_has_summary_description_and_a_stable_id() -> None:
    ids: list[str] = []
    for path, operations in committed()["paths"].items():
        for method, op in operations.items():
            assert op.get("summary"), f"{method.upper()} {path} has no summary"
            assert op.get("description"), f"{method.upper()} {path} has no description"
            tag = op["tags"][0]
            assert op["operationId"].startswith(f"{tag}-"), op["operationId"]
            ids.append(op["operationId"])
    assert len(ids) == len(set(ids))


def test_error_responses_are_problem_details() -> None:
    for path, operations in committed()["paths"].items():
        for method, op in operations.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], (
                        f"{method.upper()} {path} {status}"
                    )


def test_worked_example_is_the_example_of_forward_gradient_and_train_step() -> None:
    seed = SEED
    paths = committed()["paths"]
    for path in (
        "/v1/models/{name}/forward",
        "/v1/models/{name}/gradient",
        "/v1/models/{name}/train-step",
        "/v1/forward",
        "/v1/gradient",
        "/v1/train-step",
    ):
        content = paths[path]["post"]["requestBody"]["content"]["application/json"]
        example = content["examples"]["worked-example"]["value"]
        assert example["inputs"] == [seed["input"]], path
        if "gradient" in path or "train-step" in path:
            assert example["targets"] == [seed["target"]], path
        if "train-step" in path:
            assert example["learning_rate"] == seed["learning_rate"]
        if path.startswith("/v1/models"):
            continue
        layers = example["parameters"]["layers"]
        assert [layer["weights"] for layer in layers] == seed["parameters"]["weights"]
        assert [layer["biases"] for layer in layers] == seed["parameters"]["biases"]


def test_limits_show_in_the_spec() -> None:
    schemas = committed()["components"]["schemas"]
    assert schemas["NetworkSpec"]["properties"]["layers"]["maxItems"] >= 1
    assert schemas["LayerSpec"]["properties"]["units"]["maximum"] >= 1
    assert schemas["ForwardRequest"]["properties"]["inputs"]["maxItems"] >= 1


def _parameters() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", parameter)
        for path, operations in committed()["paths"].items()
        for method, op in operations.items()
        for parameter in op.get("parameters", [])
    ]


def test_every_path_parameter_shows_an_example_that_swagger_ui_fills_in() -> None:
    """Swagger UI shows and fills in the examples of the Parameter object, not its schema's:
    the model is the worked example's ``seed``, the dataset ``xor``, the version 1."""
    expected: dict[str, set[object] | None] = {
        "name": {"seed", "xor"},
        "version": {1},
        "job_id": None,
    }
    path_parameters = [(where, p) for where, p in _parameters() if p["in"] == "path"]
    assert path_parameters
    for where, parameter in path_parameters:
        examples = parameter.get("examples")
        assert examples, f"{where}: {parameter['name']} has no example"
        values = {example["value"] for example in examples.values()}
        allowed = expected[parameter["name"]]
        if allowed is not None:
            assert values <= allowed, where
        if where.split(" ", 1)[1].startswith(("/v1/models/{name}", "/v2/models/{name}")):
            assert parameter["name"] != "name" or values == {"seed"}, where


@pytest.mark.parametrize("spec", ["served", "committed"])
def test_the_preselected_create_example_is_the_seed_every_other_example_works_on(
    spec: str,
) -> None:
    """Swagger UI preselects the first example: the README's body, in the served spec's order
    and in the committed file's (whose keys are sorted)."""
    paths = (served() if spec == "served" else committed())["paths"]
    content = paths["/v1/models"]["post"]["requestBody"]["content"]["application/json"]
    first = next(iter(content["examples"].values()))["value"]
    assert first["name"] == "seed"
    assert first["parameters"] == SEED["parameters_named"]
    for example in content["examples"].values():
        if example["value"]["network"]["layers"] == first["network"]["layers"]:
            assert example["value"]["name"] == "seed"


def test_no_query_parameter_for_binary_bodies_only_is_filled_in_by_swagger_ui() -> None:
    """Swagger UI sends a parameter that has a default or an example; those of the binary
    bodies (refused with JSON) have neither, and say that they apply to those bodies only."""
    binary_only = {
        "POST /v1/models": {"name", "loss"},
        "POST /v1/models/{name}/forward": {"trace"},
        "POST /v1/models/{name}/gradient": {"trace", "deltas"},
        "POST /v1/models/{name}/train-step": {"learning_rate"},
        "POST /v1/datasets": {"name", "input_columns"},
    }
    found: dict[str, set[str]] = {}
    for where, parameter in _parameters():
        if parameter["in"] != "query" or where not in binary_only:
            continue
        found.setdefault(where, set()).add(parameter["name"])
        if parameter["name"] not in binary_only[where]:
            continue
        schemas = [parameter["schema"], *parameter["schema"].get("anyOf", [])]
        assert all("default" not in schema for schema in schemas), (where, parameter["name"])
        assert "example" not in parameter and "examples" not in parameter, where
        assert "only" in parameter["description"], (where, parameter["name"])
        assert "refused" in parameter["description"], (where, parameter["name"])
    for where, names in binary_only.items():
        assert names <= found.get(where, set()), where
