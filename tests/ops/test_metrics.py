"""``/metrics``: Prometheus text that a Prometheus parser reads, counting requests by route
template (never the raw path) and status, their latency, train-steps and models."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.support import (
    SEED_DATA,
    SEED_NETWORK,
    SEED_PARAMETERS,
    AppFactory,
    client_for,
    seed_model,
)

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


async def test_requests_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/v1/models", json=seed_model("seed"))).status_code == 201
    for _ in range(3):
        await client.post("/v1/models/seed/forward", json={"inputs": [[0.23, 0.55]]})
    await client.get("/v1/models/missing-one")
    await client.get("/v1/models/missing-two")
    await client.post("/v1/models/seed/forward", json={"inputs": [[0.23]]})
    found = await scrape(client)
    forward = "/v1/models/{name}/forward"
    total = "backprop_http_requests_total"
    assert value(found, total, method="POST", route=forward, status="200") == 3
    assert value(found, total, method="POST", route=forward, status="422") == 1
    assert value(found, total, method="POST", route="/v1/models", status="201") == 1
    assert value(found, total, method="GET", route="/v1/models/{name}", status="404") == 2
    routes = {dict(labels).get("route") for name, labels in found if name == total}
    assert not any("missing" in str(r) or "seed" in str(r) for r in routes), routes


async def test_latency_histogram_has_one_observation_per_request(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/models", json=seed_model("seed"))
    for _ in range(4):
        await client.post("/v1/models/seed/gradient", json=SEED_DATA)
    found = await scrape(client)
    labels = {"method": "POST", "route": "/v1/models/{name}/gradient", "status": "200"}
    histogram = "backprop_http_request_duration_seconds"
    assert value(found, f"{histogram}_count", **labels) == 4
    assert value(found, f"{histogram}_bucket", **labels, le="+Inf") == 4
    assert value(found, f"{histogram}_sum", **labels) > 0
    # Buckets are cumulative.
    buckets = sorted(
        (float(dict(lab)["le"]), v)
        for (name, lab), v in found.items()
        if name == f"{histogram}_bucket" and dict(lab)["route"] == labels["route"]
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)


async def test_train_steps_and_models_are_counted(client: httpx.AsyncClient) -> None:
    await client.post("/v1/models", json=seed_model("seed"))
    await client.post("/v1/models", json=seed_model("other"))
    for _ in range(2):
        assert (await client.post("/v1/models/seed/train-step", json=SEED_DATA)).is_success
    stateless = {"network": SEED_NETWORK, "parameters": SEED_PARAMETERS, **SEED_DATA}
    assert (await client.post("/v1/train-step", json=stateless)).is_success
    await client.post("/v1/models/nobody/train-step", json=SEED_DATA)  # 404: no step
    found = await scrape(client)
    assert value(found, "backprop_train_steps_total", kind="stored") == 2
    assert value(found, "backprop_train_steps_total", kind="stateless") == 1
    assert value(found, "backprop_models") == 2
    assert value(found, "backprop_registry_up") == 1
    await client.delete("/v1/models/other")
    assert value(await scrape(client), "backprop_models") == 1


async def test_unknown_paths_share_one_label(client: httpx.AsyncClient) -> None:
    for n in range(5):
        await client.get(f"/no/such/page/{n}")
    found = await scrape(client)
    total = "backprop_http_requests_total"
    assert value(found, total, method="GET", route="unmatched", status="404") == 5


async def test_refused_requests_are_counted(make_app: AppFactory) -> None:
    key = "metrics-reader-key"
    async with client_for(make_app(api_keys=f"{key}:read")) as client:
        await client.get("/v1/models")
        found = samples(
            (await client.get("/metrics", headers={"Authorization": f"Bearer {key}"})).text
        )
    total = "backprop_http_requests_total"
    assert value(found, total, method="GET", route="unmatched", status="401") == 1


async def test_openmetrics_is_served_when_asked_for(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
