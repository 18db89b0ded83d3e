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


def test_an_app_with_other_limits_than_the_schemas_is_refused() -> None:
    """The schemas hold the limits read at import: an app must not pretend to other ones."""
    with pytest.raises(ValueError, match="max_batch_rows=2"):
        create_app(Settings(registry="memory://", max_batch_rows=2))
