"""How a job stops, on every registry backend: early stopping ends the model at the best
epoch's parameters (or, asked, at the last epoch's), and a job stopped short of its end
(cancelled, interrupted) reports the checkpoint it kept, where a resumed one continues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest

from service.jobs.runner import JobRunner
from tests.jobs.conftest import Apps
from tests.jobs.support import (
    SMALL,
    Pause,
    create,
    events_of,
    job_of,
    model,
    noisy,
    train,
    wait_for,
)

pytestmark = pytest.mark.anyio

JSON = Any
# 15 training rows in batches of 5: 3 steps an epoch. The validation loss is lowest after
# epoch 1 and never lower again, so patience 3 stops the job after epoch 4 (step 12), with
# versions 2..5 committed by epochs 1..4.
EARLY: dict[str, JSON] = {
    "dataset": noisy(20),
    "epochs": 30,
    "batch_size": 5,
    "learning_rate": 0.5,
    "seed": 1,
    "validation_split": 0.25,
    "patience": 3,
}


async def version_text(client: httpx.AsyncClient, name: str, version: int) -> str:
    response = await client.get(f"/v1/models/{name}/parameters", params={"version": version})
    assert response.status_code == 200, response.text
    return str(response.json()["parameters"])


async def current_text(client: httpx.AsyncClient, name: str) -> str:
    response = await client.get(f"/v1/models/{name}/parameters")
    assert response.status_code == 200, response.text
    return str(response.json()["parameters"])


def runner_of(apps: Apps, client: httpx.AsyncClient) -> JobRunner:
    runner: JobRunner = apps.apps[id(client)].state.jobs.runner
    return runner


# -- early stopping -----------------------------------------------------------------------------


async def test_early_stopping_ends_the_model_at_the_best_epochs_parameters(
    client: httpx.AsyncClient,
) -> None:
    await create(client, model("early", SMALL))
    job = await train(client, "early", **EARLY)
    assert job["restore_best"] is True  # the default
    done = await wait_for(client, job["id"])
    assert (done["state"], done["stopped_early"], done["epoch"], done["step"]) == (
        "succeeded",
        True,
        4,
        12,
    )
    assert done["best"] == {"epoch": 1, "step": 3, "version": 2}
    assert done["restored_best"] is True
    # One more version after epoch 4's (5): a copy of epoch 1's, parameters and optimizer state.
    assert done["version"] == done["checkpoint"]["version"] == 6
    assert (await client.get("/v1/models/early")).json()["version"] == 6
    assert await current_text(client, "early") == await version_text(client, "early", 2)
    assert await current_text(client, "early") != await version_text(client, "early", 5)
    newest = (await client.get("/v1/models/early/versions")).json()["items"][0]
    assert newest["version"] == 6 and newest["reason"].endswith("restores epoch 1 (version 2)")
    # The history has the four epochs; the copy is not an epoch.
    history = (await client.get("/v1/models/early/history")).json()["items"]
    assert [(e["epoch"], e["version"]) for e in history] == [(1, 2), (2, 3), (3, 4), (4, 5)]
    assert done["best_loss"] == history[0]["validation_loss"]
    end = events_of((await client.get(f"/v1/jobs/{job['id']}/events")).text)[-1]
    assert end["data"]["restored_best"] is True and end["data"]["version"] == 6
    assert end["data"]["best"] == done["best"]


async def test_restore_best_false_leaves_the_last_epochs_parameters(
    client: httpx.AsyncClient,
) -> None:
    await create(client, model("last", SMALL))
    job = await train(client, "last", **EARLY, restore_best=False)
    done = await wait_for(client, job["id"])
    assert (done["state"], done["stopped_early"], done["restore_best"]) == (
        "succeeded",
        True,
        False,
    )
    assert done["best"] == {"epoch": 1, "step": 3, "version": 2}
    assert (done["restored_best"], done["version"]) == (False, 5)
    assert (await client.get("/v1/models/last")).json()["version"] == 5


async def test_a_job_whose_last_epoch_is_its_best_restores_nothing(
    client: httpx.AsyncClient,
) -> None:
    await create(client, model("steady", SMALL))
    job = await train(
        client, "steady", dataset=noisy(20), epochs=3, batch_size=5, learning_rate=0.1, seed=1,
        patience=2,
    )  # fmt: skip
    done = await wait_for(client, job["id"])
    assert done["state"] == "succeeded" and not done["stopped_early"]
    assert done["best"] == {"epoch": 3, "step": 12, "version": 4}
    assert (done["restored_best"], done["version"]) == (False, 4)


async def test_a_job_resumed_after_its_best_epoch_restores_it_as_an_unbroken_run_does(
    apps: Apps,
) -> None:
    """Cancelled in epoch 3, after its best epoch (1), the job no longer holds that epoch's
    parameters when it resumes: it reads them back from the registry (version 2)."""
    client = await apps()
    for name in ("broken", "unbroken"):
        await create(client, model(name, SMALL))
    pause = Pause(runner_of(apps, client), 7)
    job = await train(client, "broken", **EARLY)
    await pause.wait()
    assert (await client.post(f"/v1/jobs/{job['id']}/cancel")).status_code == 200
    pause.release()
    assert (await wait_for(client, job["id"]))["state"] == "cancelled"
    assert (await client.post(f"/v1/jobs/{job['id']}/resume")).status_code == 202
    done = await wait_for(client, job["id"])
    straight = await wait_for(client, (await train(client, "unbroken", **EARLY))["id"])
    for key in ("state", "epoch", "step", "best", "best_loss", "restored_best", "version"):
        assert done[key] == straight[key], key
    assert done["restored_best"] is True
    assert await current_text(client, "broken") == await current_text(client, "unbroken")
    assert await current_text(client, "broken") == await version_text(client, "broken", 2)


# -- stopped short: the checkpoint it kept ------------------------------------------------------


async def test_a_cancelled_job_reports_the_step_it_kept(apps: Apps) -> None:
    """Cancelled after step 7, the job keeps the checkpoint of epoch 2 (step 6), and says so."""
    client = await apps()
    await create(client, model("kept", SMALL))
    pause = Pause(runner_of(apps, client), 7)
    job = await train(client, "kept", **{**EARLY, "patience": None})
    await pause.wait()
    assert (await client.post(f"/v1/jobs/{job['id']}/cancel")).status_code == 200
    pause.release()
    done = await wait_for(client, job["id"])
    history = (await client.get("/v1/models/kept/history")).json()["items"]
    assert done["state"] == "cancelled"
    assert done["checkpoint"] == {"epoch": 2, "step": 6, "version": 3}
    assert (done["epoch"], done["step"], done["version"]) == (2, 6, 3)
    assert (done["loss"], done["validation_loss"]) == (
        history[-1]["loss"],
        history[-1]["validation_loss"],
    )
    assert done["eta_seconds"] is None
    end = events_of((await client.get(f"/v1/jobs/{job['id']}/events")).text)[-1]
    assert (end["event"], end["data"]["state"], end["data"]["step"]) == ("end", "cancelled", 6)


async def test_an_interrupted_job_reports_the_step_it_kept(apps: Apps) -> None:
    """A job whose process stops answering after step 7, once its heartbeat has published
    step 7, is marked interrupted by another replica's sweep at the step it kept (6)."""
    client = await apps()
    await create(client, model("kept", SMALL))
    runner = runner_of(apps, client)
    pause = Pause(runner, 7)
    job = await train(client, "kept", **{**EARLY, "patience": None})
    await pause.wait()
    with anyio.fail_after(30):
        while (await job_of(client, job["id"]))["step"] != 7:  # published by the heartbeat
            await anyio.sleep(0.02)
    stale = datetime.now(UTC) + timedelta(seconds=1)
    await anyio.to_thread.run_sync(lambda: runner.registry.jobs.interrupt_jobs(stale_before=stale))
    pause.release()
    done = await job_of(client, job["id"])
    assert done["state"] == "interrupted"
    assert (done["epoch"], done["step"], done["checkpoint"]["step"]) == (2, 6, 6)
    end = events_of((await client.get(f"/v1/jobs/{job['id']}/events")).text)[-1]
    assert (end["data"]["state"], end["data"]["step"]) == ("interrupted", 6)
