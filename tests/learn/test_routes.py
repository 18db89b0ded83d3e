"""The routes for learners over HTTP: status codes, content types, ETags, and problems for bad
input, on memory and SQLite registries."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest

from tests.api.support import (
    SEED,
    SEED_INPUTS,
    SEED_TARGETS,
    assert_problem,
    create_seed,
)
from tests.learn.support import by_class, seed_figures, title_of

pytestmark = pytest.mark.anyio

EXPLAIN: dict[str, Any] = {"inputs": SEED_INPUTS, "targets": SEED_TARGETS, "parameter": "w7"}
SAMPLE = {"inputs": "0.23,0.55", "targets": "0.01"}
GRAD = SEED["gradients_named"]
SEED_DATA_STEP = {"inputs": SEED_INPUTS, "targets": SEED_TARGETS}


# -- explain --------------------------------------------------------------------------------


async def test_explain_answers_the_chain_rule_of_w7(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.post("/v1/models/seed/explain", json=EXPLAIN)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["etag"] == '"1"'
    body = response.json()
    assert (body["model"], body["version"], body["parameter"]) == ("seed", 1, "w7")
    assert (body["form"], body["path_count"], body["node"], body["source"]) == (
        "paths",
        1,
        "n6",
        "n3",
    )
    (path,) = body["paths"]
    assert path["nodes"] == ["n6", "n9"]
    assert [f["symbol"] for f in path["factors"]] == [
        "dE/dout_n9",
        "dout_n9/dnet_n9",
        "dnet_n9/dout_n6",
        "dout_n6/dnet_n6",
        "dnet_n6/dw7",
    ]
    assert all(
        {"formula", "value", "symbol_latex", "formula_latex"} <= set(f) for f in path["factors"]
    )
    assert abs(path["product"] - GRAD["w7"]) <= 1e-12
    assert abs(body["gradient"] - GRAD["w7"]) <= 1e-12
    assert abs(body["sum"] - GRAD["w7"]) <= 1e-12
    assert "note" not in body and "delta" not in body


async def test_explain_sums_w1_over_three_paths(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.post("/v1/models/seed/explain", json={**EXPLAIN, "parameter": "w1"})
    body = response.json()
    assert [p["nodes"] for p in body["paths"]] == [
        ["n3", "n6", "n9"],
        ["n3", "n7", "n9"],
        ["n3", "n8", "n9"],
    ]
    assert abs(sum(p["product"] for p in body["paths"]) - GRAD["w1"]) <= 1e-12


async def test_explain_gives_the_delta_form_on_request(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.post(
        "/v1/models/seed/explain", json={**EXPLAIN, "parameter": "w1", "form": "delta"}
    )
    body = response.json()
    assert body["form"] == "delta" and body["paths"] == []
    assert body["delta"]["node"] == "n3"
    assert [t["weight"] for t in body["delta"]["terms"]] == ["w7", "w8", "w9"]
    assert abs(body["sum"] - GRAD["w1"]) <= 1e-12


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"format": "markdown"}, {}),
        ({}, {"Accept": "text/markdown"}),
        ({}, {"Accept": "text/markdown, application/json;q=0.5"}),
        # application/json's own range ranks it, not */* (the most specific range counts).
        ({}, {"Accept": "text/markdown;q=0.8, application/json;q=0.5, */*"}),
    ],
)
async def test_explain_answers_markdown_on_request(
    client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str]
) -> None:
    await create_seed(client)
    response = await client.post(
        "/v1/models/seed/explain", json=EXPLAIN, params=params, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert response.headers["etag"] == '"1"'
    assert response.text.startswith("# ∂E/∂w7 on `seed`, version 1")
    assert repr(GRAD["w7"]) in response.text


@pytest.mark.parametrize(
    "accept", ["application/json, text/markdown;q=0.5", "text/markdown;q=0.5, */*", "text/*"]
)
async def test_explain_prefers_json_when_accept_ranks_it_higher(
    client: httpx.AsyncClient, accept: str
) -> None:
    await create_seed(client)
    response = await client.post(
        "/v1/models/seed/explain", json=EXPLAIN, headers={"Accept": accept}
    )
    assert response.headers["content-type"] == "application/json"


async def test_explain_an_older_version(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    step = await client.post(
        "/v1/models/seed/train-step", json={**SEED_DATA_STEP, "learning_rate": 0.01}
    )
    assert step.status_code == 200, step.text
    old = await client.post("/v1/models/seed/explain", json=EXPLAIN, params={"version": 1})
    new = await client.post("/v1/models/seed/explain", json=EXPLAIN)
    assert (old.json()["version"], new.json()["version"]) == (1, 2)
    assert old.json()["gradient"] == GRAD["w7"] != new.json()["gradient"]


async def test_explain_an_unknown_model_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/models/nope/explain", json=EXPLAIN)
    assert_problem(response, 404, type_suffix="model-not-found")


async def test_explain_an_unknown_version_is_404(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.post("/v1/models/seed/explain", json=EXPLAIN, params={"version": 9})
    assert_problem(response, 404)


@pytest.mark.parametrize("parameter", ["w19", "b8", "q1", ""])
async def test_explain_an_unknown_parameter_is_422_naming_it(
    client: httpx.AsyncClient, parameter: str
) -> None:
    await create_seed(client)
    response = await client.post(
        "/v1/models/seed/explain", json={**EXPLAIN, "parameter": parameter}
    )
    body = assert_problem(response, 422, pointer="/parameter")
    if parameter:
        assert repr(parameter) in body["detail"]


async def test_explain_two_rows_is_422(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.post(
        "/v1/models/seed/explain",
        json={**EXPLAIN, "inputs": SEED_INPUTS * 2, "targets": SEED_TARGETS * 2},
    )
    body = assert_problem(response, 422, pointer="/inputs")
    assert "one sample" in body["detail"]


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"inputs": [[0.23]]}, "/inputs/0"),
        ({"targets": [[0.01, 0.02]]}, "/targets/0"),
        ({"form": "all"}, "/form"),
        ({"extra": 1}, "/extra"),
    ],
)
async def test_explain_bad_bodies_are_422_with_pointers(
    client: httpx.AsyncClient, change: dict[str, Any], pointer: str
) -> None:
    await create_seed(client)
    response = await client.post("/v1/models/seed/explain", json={**EXPLAIN, **change})
    assert_problem(response, 422, pointer=pointer)


async def test_explain_missing_parameter_is_422(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    body = {k: v for k, v in EXPLAIN.items() if k != "parameter"}
    response = await client.post("/v1/models/seed/explain", json=body)
    assert_problem(response, 422, pointer="/parameter")


async def test_explain_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.post(
        "/v1/models/seed/explain", content=b"{", headers={"content-type": "application/json"}
    )
    assert_problem(response, 400)


# -- diagram.svg ----------------------------------------------------------------------------


async def test_diagram_is_svg_with_nodes_and_edges(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.get("/v1/models/seed/diagram.svg")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["etag"] == '"1"'
    root = ET.fromstring(response.content)
    assert len(by_class(root, "node")) == 9
    assert len(by_class(root, "edge")) == 18


async def test_diagram_with_a_sample_and_gradients(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.get(
        "/v1/models/seed/diagram.svg", params={**SAMPLE, "gradients": "true"}
    )
    assert response.status_code == 200, response.text
    root = ET.fromstring(response.content)
    edges = {e.get("id"): e for e in by_class(root, "edge")}
    nodes = {n.get("id"): n for n in by_class(root, "node")}
    assert f"dE/dw1 = {GRAD['w1']!r}" in title_of(edges["w1"])
    assert f"out = {SEED['forward']['nodes']['n9']['out']!r}" in title_of(nodes["n9"])


async def test_diagram_with_inputs_only_shows_net_and_out(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.get("/v1/models/seed/diagram.svg", params={"inputs": "0.23,0.55"})
    root = ET.fromstring(response.content)
    nodes = {n.get("id"): n for n in by_class(root, "node")}
    assert f"net = {SEED['forward']['nodes']['n6']['net']!r}" in title_of(nodes["n6"])
    assert "dE/d" not in response.text


async def test_diagram_of_an_unknown_model_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/models/nope/diagram.svg"), 404)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"inputs": "0.23,abc"}, "inputs"),
        ({"inputs": "0.23,nan"}, "inputs"),
        ({"inputs": "0.23,1e999"}, "inputs"),
        ({"inputs": "0.23"}, "inputs"),
        ({"inputs": "0.23,0.55;0.1,0.2"}, "inputs"),
        ({"inputs": "0.23,0.55", "targets": "0.01,0.02"}, "targets"),
        ({"inputs": "0.23,0.55", "gradients": "true"}, "targets"),
        ({"targets": "0.01"}, "inputs"),
        ({"gradients": "maybe"}, "gradients"),
    ],
)
async def test_diagram_bad_queries_are_422_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, str], parameter: str
) -> None:
    await create_seed(client)
    response = await client.get("/v1/models/seed/diagram.svg", params=params)
    assert_problem(response, 422, parameter=parameter)


async def test_diagram_of_a_network_too_large_is_422(client: httpx.AsyncClient) -> None:
    network = {
        "inputs": 40,
        "layers": [{"units": 1, "activation": "sigmoid"}],
        "loss": "half_squared_error",
    }
    created = await client.post("/v1/models", json={"name": "wide", "network": network})
    assert created.status_code == 201, created.text
    body = assert_problem(await client.get("/v1/models/wide/diagram.svg"), 422)
    assert "too large to be drawn" in body["detail"]


# -- history.svg ----------------------------------------------------------------------------


async def test_history_plots_the_loss_of_every_kept_version(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    for _ in range(2):
        step = await client.post(
            "/v1/models/seed/train-step", json={**SEED_DATA_STEP, "learning_rate": 0.01}
        )
        assert step.status_code == 200, step.text
    response = await client.get("/v1/models/seed/history.svg", params=SAMPLE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["etag"] == '"3"'
    points = by_class(ET.fromstring(response.content), "point")
    assert [title_of(p).split(":")[0] for p in points] == ["version 1", "version 2", "version 3"]
    assert repr(SEED["loss"]) in title_of(points[0])
    assert repr(SEED["after_one_sgd_step"]["loss"]) in title_of(points[1])


async def test_history_takes_several_rows(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.get(
        "/v1/models/seed/history.svg",
        params={"inputs": "0.23,0.55;0.1,0.9", "targets": "0.01;0.99"},
    )
    assert response.status_code == 200, response.text
    assert "mean loss on 2 samples" in response.text


async def test_history_needs_both_inputs_and_targets_or_neither(
    client: httpx.AsyncClient,
) -> None:
    await create_seed(client)
    response = await client.get("/v1/models/seed/history.svg", params={"inputs": "0.23,0.55"})
    assert_problem(response, 422, parameter="targets")
    response = await client.get("/v1/models/seed/history.svg", params={"targets": "0.01"})
    assert_problem(response, 422, parameter="inputs")


async def test_history_with_mismatched_rows_is_422(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    response = await client.get(
        "/v1/models/seed/history.svg", params={"inputs": "0.23,0.55;0.1,0.9", "targets": "0.01"}
    )
    assert_problem(response, 422, parameter="targets")


async def test_history_of_an_unknown_model_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/models/nope/history.svg", params=SAMPLE), 404)


# -- walkthrough ----------------------------------------------------------------------------


async def test_walkthrough_holds_every_figure_of_the_worked_example(
    client: httpx.AsyncClient,
) -> None:
    await create_seed(client)
    response = await client.get(
        "/v1/models/seed/walkthrough", params={**SAMPLE, "learning_rate": "0.01"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert response.headers["etag"] == '"1"'
    assert [v for v in seed_figures() if repr(v) not in response.text] == []


async def test_walkthrough_takes_the_models_learning_rate_by_default(
    client: httpx.AsyncClient,
) -> None:
    await create_seed(client)  # the default optimizer: SGD with learning rate 0.01, the seed's
    response = await client.get("/v1/models/seed/walkthrough", params=SAMPLE)
    assert r"\eta = 0.01" in response.text
    assert repr(SEED["after_one_sgd_step"]["loss"]) in response.text


async def test_walkthrough_stores_nothing(client: httpx.AsyncClient) -> None:
    await create_seed(client)
    await client.get("/v1/models/seed/walkthrough", params=SAMPLE)
    model = await client.get("/v1/models/seed")
    assert model.json()["version"] == 1


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"inputs": "0.23,0.55"}, "targets"),
        ({"targets": "0.01"}, "inputs"),
        ({**SAMPLE, "learning_rate": "0"}, "learning_rate"),
        ({**SAMPLE, "learning_rate": "inf"}, "learning_rate"),
        ({"inputs": "0.23,0.55;0.1,0.2", "targets": "0.01;0.5"}, "inputs"),
        ({"inputs": "0.23,0.55", "targets": "x"}, "targets"),
    ],
)
async def test_walkthrough_bad_queries_are_422_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, str], parameter: str
) -> None:
    await create_seed(client)
    response = await client.get("/v1/models/seed/walkthrough", params=params)
    assert_problem(response, 422, parameter=parameter)


async def test_walkthrough_of_an_unknown_model_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/models/nope/walkthrough", params=SAMPLE), 404)


async def test_walkthrough_of_a_network_too_large_is_422(client: httpx.AsyncClient) -> None:
    network = {
        "inputs": 2,
        "layers": [{"units": 17, "activation": "relu"}, {"units": 1, "activation": "sigmoid"}],
        "loss": "half_squared_error",
    }
    created = await client.post("/v1/models", json={"name": "big", "network": network})
    assert created.status_code == 201, created.text
    body = assert_problem(await client.get("/v1/models/big/walkthrough", params=SAMPLE), 422)
    assert "too large to be walked through" in body["detail"]


# -- the docs -------------------------------------------------------------------------------


async def test_openapi_documents_the_routes_with_the_seeds_examples(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    explain = paths["/v1/models/{name}/explain"]["post"]
    example = explain["requestBody"]["content"]["application/json"]["examples"]["worked-example"]
    assert example["value"] == {"inputs": SEED_INPUTS, "targets": SEED_TARGETS, "parameter": "w7"}
    assert "text/markdown" in explain["responses"]["200"]["content"]
    assert (
        "image/svg+xml"
        in paths["/v1/models/{name}/diagram.svg"]["get"]["responses"]["200"]["content"]
    )
    assert (
        "image/svg+xml"
        in paths["/v1/models/{name}/history.svg"]["get"]["responses"]["200"]["content"]
    )
    walk = paths["/v1/models/{name}/walkthrough"]["get"]
    assert "text/markdown" in walk["responses"]["200"]["content"]
    query = {p["name"]: p for p in walk["parameters"] if p["in"] == "query"}
    assert query["inputs"]["examples"]["worked-example"]["value"] == "0.23,0.55"
    assert query["targets"]["examples"]["worked-example"]["value"] == "0.01"
    for path in ("/explain", "/diagram.svg", "/history.svg", "/walkthrough"):
        for op in paths[f"/v1/models/{{name}}{path}"].values():
            assert op["tags"] == ["learn"] and op["operationId"].startswith("learn-")
            assert op["summary"] and op["description"]
