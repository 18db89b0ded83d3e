"""/metrics counts the training jobs by state, as the registry holds them, and the optimizer
steps they run (on every registry backend)."""

from __future__ import annotations

import httpx
import pytest

from tests.jobs.support import SMALL, create, model, noisy, train, wait_for
from tests.ops.test_metrics import scrape, value

pytestmark = pytest.mark.anyio
STATES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")


async def test_jobs_are_counted_by_state(memory_client: httpx.AsyncClient) -> None:
    client = memory_client
    before = await scrape(client)
    assert [value(before, "backprop_jobs", state=s) for s in STATES] == [0] * 6
    await create(client, model("m", SMALL))
    for seed in (1, 2):
        job = await train(
            client, "m", dataset=noisy(8), epochs=2, batch_size=4, learning_rate=0.1, seed=seed
        )
        assert (await wait_for(client, job["id"]))["state"] == "succeeded"
    failed = await train(
        client, "m", dataset=noisy(8), epochs=1, batch_size=4, learning_rate=1e300, seed=3
    )
    assert (await wait_for(client, failed["id"]))["state"] == "failed"
    found = await scrape(client)
    assert value(found, "backprop_jobs", state="succeeded") == 2
    assert value(found, "backprop_jobs", state="failed") == 1
    assert sum(value(found, "backprop_jobs", state=s) for s in STATES) == 3


async def test_the_steps_of_jobs_are_counted_apart_from_train_steps(
    client: httpx.AsyncClient,
) -> None:
    await create(client, model("m", SMALL))
    before = await scrape(client)
    assert value(before, "backprop_train_steps_total", kind="job") == 0
    job = await train(
        client, "m", dataset=noisy(8), epochs=3, batch_size=3, learning_rate=0.1, seed=1
    )
    done = await wait_for(client, job["id"])
    assert (done["state"], done["total_steps"]) == ("succeeded", 9)
    step = {"inputs": [[0.1, 0.2]], "targets": [[0.3]]}
    assert (await client.post("/v1/models/m/train-step", json=step)).status_code == 200
    found = await scrape(client)
    assert value(found, "backprop_train_steps_total", kind="job") == 9
    assert value(found, "backprop_train_steps_total", kind="stored") == 1
    assert value(found, "backprop_train_steps_total", kind="stateless") == 0
