"""history.svg without samples plots the training history that jobs keep: one point per epoch,
with the loss the history holds."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest

from tests.jobs.support import SMALL, create, model, noisy, train, wait_for

pytestmark = pytest.mark.anyio
SVG_NS = "{http://www.w3.org/2000/svg}"


def _points(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [
        "".join(point.itertext())
        for point in root.iter(f"{SVG_NS}circle")
        if point.get("class") == "point"
    ]


async def test_the_training_history_is_drawn_one_point_per_epoch(
    memory_client: httpx.AsyncClient,
) -> None:
    client = memory_client
    await create(client, model("curve", SMALL))
    for seed in (1, 2):  # two jobs: the plot runs on across them
        job = await train(
            client, "curve", dataset=noisy(16), epochs=3, batch_size=4, learning_rate=0.1, seed=seed
        )
        assert (await wait_for(client, job["id"]))["state"] == "succeeded"
    history = (await client.get("/v1/models/curve/history")).json()["items"]
    assert len(history) == 6

    response = await client.get("/v1/models/curve/history.svg")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    tooltips = _points(response.text)
    assert len(tooltips) == 6
    for i, (tooltip, entry) in enumerate(zip(tooltips, history, strict=True), start=1):
        assert tooltip.startswith(f"epoch {i}: loss {entry['loss']!r}")
        assert f"version {entry['version']}" in tooltip
    assert "6 epochs of 2 jobs" in response.text


async def test_a_model_never_trained_by_a_job_draws_an_empty_plot(
    memory_client: httpx.AsyncClient,
) -> None:
    await create(memory_client, model("fresh", SMALL))
    response = await memory_client.get("/v1/models/fresh/history.svg")
    assert response.status_code == 200
    assert _points(response.text) == []
    assert "no points" in response.text
    missing = await memory_client.get("/v1/models/nobody/history.svg")
    assert missing.status_code == 404
