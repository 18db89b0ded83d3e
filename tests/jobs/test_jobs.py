"""Training jobs through the HTTP API, in process: their life cycle on every registry backend,
the numbers they produce against an independent reference, and their effect on the model."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from service.registry import NewJob
from tests.api.support import SEED_PARAMETERS, arrays, assert_close, assert_problem
from tests.jobs.conftest import Apps
from tests.jobs.support import (
    SMALL,
    WIDE,
    XOR,
    create,
    events_of,
    job_of,
    model,
    noisy,
    parameters_text,
    reference_training,
    train,
    wait_for,
)

pytestmark = pytest.mark.anyio

JSON = Any
XOR_ARRAYS = {key: np.array(value) for key, value in XOR.items()}
LONG = {"epochs": 100_000, "batch_size": 8, "learning_rate": 0.01, "seed": 3}


async def long_job(client: httpx.AsyncClient, name: str = "long", step: int = 0) -> JSON:
    """A job on a new model that runs until it is stopped (8 steps an epoch), once it has
    checkpointed `step` steps."""
    await create(client, model(name, WIDE))
    job = await train(client, name, dataset=noisy(64), **LONG)
    return await wait_for(client, job["id"], ["running"], step=step or None)


# -- the life cycle (every backend) -----------------------------------------------------------


async def test_train_answers_202_with_a_queued_job(client: httpx.AsyncClient) -> None:
    await create(client, model("xor", SMALL))
    job = await train(client, "xor", dataset=XOR, epochs=3, batch_size=2, learning_rate=0.1)
    assert (job["model"], job["state"], job["version"], job["dataset"]) == (
        "xor",
        "queued",
        1,
        None,
    )
    assert (job["epochs"], job["steps_per_epoch"], job["total_steps"], job["rows"]) == (3, 2, 6, 4)
    assert (job["epoch"], job["step"], job["checkpoint"]) == (0, 0, None)
    assert isinstance(job["seed"], int)  # drawn and reported
    assert job["optimizer"]["kind"] == "sgd" and job["optimizer"]["learning_rate"] == 0.1


async def test_job_runs_to_success_with_a_version_per_epoch(client: httpx.AsyncClient) -> None:
    await create(client, model("xor", SMALL))
    job = await train(client, "xor", dataset=XOR, epochs=3, batch_size=2, learning_rate=0.1)
    done = await wait_for(client, job["id"])
    assert done["state"] == "succeeded", done
    assert (done["epoch"], done["step"], done["version"]) == (3, 6, 4)
    assert done["checkpoint"] == {"epoch": 3, "step": 6, "version": 4}
    assert done["eta_seconds"] == 0.0 and done["started_at"] and done["finished_at"]
    versions = (await client.get("/v1/models/xor/versions")).json()["items"]
    assert [v["reason"] for v in versions[:3]] == [f"job {job['id']} epoch {e}" for e in (3, 2, 1)]
    events = events_of((await client.get(f"/v1/jobs/{job['id']}/events")).text)
    assert [(e["id"], e["event"], e["data"]["state"]) for e in events] == [
        (1, "state", "queued"),
        (2, "state", "running"),
        (3, "progress", "running"),
        (4, "progress", "running"),
        (5, "progress", "running"),
        (6, "end", "succeeded"),
    ]
    assert [e["data"]["version"] for e in events[2:5]] == [2, 3, 4]


async def test_history_has_one_entry_per_epoch_with_its_version(
    client: httpx.AsyncClient,
) -> None:
    await create(client, model("xor", SMALL))
    job = await train(client, "xor", dataset=XOR, epochs=5, batch_size=4, learning_rate=0.1)
    await wait_for(client, job["id"])
    first = (await client.get("/v1/models/xor/history", params={"limit": 3})).json()
    rest = (
        await client.get("/v1/models/xor/history", params={"cursor": first["next_cursor"]})
    ).json()
    entries = first["items"] + rest["items"]
    assert rest["next_cursor"] is None
    assert [(e["epoch"], e["step"], e["version"], e["job"]) for e in entries] == [
        (e, e, e + 1, job["id"]) for e in range(1, 6)
    ]
    assert all(e["loss"] > 0 and e["validation_loss"] is None for e in entries)


async def test_a_model_under_training_refuses_other_writes_naming_the_job(
    client: httpx.AsyncClient,
) -> None:
    job = await long_job(client)
    body = {"inputs": [[0.0, 0.0]], "targets": [[0.0]]}
    for method, path, json in [
        ("POST", "/v1/models/long/train-step", body),
        ("POST", "/v1/models/long/rollback", {"version": 1}),
        ("DELETE", "/v1/models/long", None),
        (
            "POST",
            "/v1/models/long/train",
            {"dataset": XOR, "epochs": 1, "batch_size": 1, "learning_rate": 0.1},
        ),
    ]:
        response = await client.request(method, path, json=json)
        problem = assert_problem(response, 409, type_suffix="model-busy")
        assert problem["job"] == job["id"] and job["id"] in problem["detail"], problem
    forward = await client.post("/v1/models/long/forward", json={"inputs": [[0.0, 0.0]]})
    assert forward.status_code == 200  # reads go on
    await client.post(f"/v1/jobs/{job['id']}/cancel")
    await wait_for(client, job["id"])
    step = await client.post("/v1/models/long/train-step", json=body)
    assert step.status_code == 200, step.text


async def test_cancel_stops_a_running_job_and_keeps_its_last_checkpoint(
    client: httpx.AsyncClient,
) -> None:
    await create(client, model("long", WIDE))
    job = await train(client, "long", dataset=noisy(64), **LONG)
    await wait_for(client, job["id"], ["running"], step=16)
    cancelled = await client.post(f"/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    done = await wait_for(client, job["id"])
    assert done["state"] == "cancelled" and done["error"] is None
    model_now = (await client.get("/v1/models/long")).json()
    assert model_now["version"] == done["version"] == done["checkpoint"]["version"]
    assert done["checkpoint"]["epoch"] >= 2
    again = await client.post(f"/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 200 and again.json()["state"] == "cancelled"


async def test_cancel_ends_a_queued_job_at_once(apps: Apps) -> None:
    client = await apps(max_jobs=1)  # the long job holds the only worker
    running = await long_job(client, "first")
    await create(client, model("second", SMALL))
    queued = await train(client, "second", dataset=XOR, epochs=1, batch_size=1, learning_rate=0.1)
    assert (await job_of(client, queued["id"]))["state"] == "queued"
    response = await client.post(f"/v1/jobs/{queued['id']}/cancel")
    assert response.json()["state"] == "cancelled"
    await client.post(f"/v1/jobs/{running['id']}/cancel")
    await wait_for(client, running["id"])
    assert (await job_of(client, queued["id"]))["state"] == "cancelled"  # never ran
    assert (await client.get("/v1/models/second")).json()["version"] == 1


async def test_a_job_whose_step_overflows_fails_and_keeps_its_last_checkpoint(
    client: httpx.AsyncClient,
) -> None:
    await create(client, model("wild", [(3, "identity"), (1, "identity")]))
    before = await parameters_text(client, "wild")
    job = await train(
        client,
        "wild",
        dataset={"inputs": [[1e3, 1e3]], "targets": [[1e3]]},
        epochs=10,
        batch_size=1,
        learning_rate=1e300,
    )
    done = await wait_for(client, job["id"])
    assert done["state"] == "failed", done
    assert "non-finite" in done["error"] or "finite" in done["error"], done["error"]
    # The first step still gives finite parameters (its epoch is committed); the second not.
    assert done["checkpoint"] == {"epoch": 1, "step": 1, "version": 2}
    assert (await client.get("/v1/models/wild")).json()["version"] == 2
    assert await parameters_text(client, "wild") != before
    end = events_of((await client.get(f"/v1/jobs/{job['id']}/events")).text)[-1]
    assert (end["event"], end["data"]["state"], end["data"]["error"]) == (
        "end",
        "failed",
        done["error"],
    )


async def test_ended_jobs_cannot_be_cancelled_or_resumed(client: httpx.AsyncClient) -> None:
    await create(client, model("xor", SMALL))
    job = await train(client, "xor", dataset=XOR, epochs=1, batch_size=4, learning_rate=0.1)
    await wait_for(client, job["id"])
    for action in ("cancel", "resume"):
        response = await client.post(f"/v1/jobs/{job['id']}/{action}")
        problem = assert_problem(response, 409, type_suffix="job-state-conflict")
        assert problem["state"] == "succeeded"


async def test_a_cancelled_job_resumes_from_its_checkpoint(client: httpx.AsyncClient) -> None:
    job = await long_job(client, step=8)
    await client.post(f"/v1/jobs/{job['id']}/cancel")
    cancelled = await wait_for(client, job["id"])
    resumed = await client.post(f"/v1/jobs/{job['id']}/resume")
    assert resumed.status_code == 202, resumed.text
    assert resumed.headers["location"] == f"/v1/jobs/{job['id']}"
    assert resumed.json()["state"] == "queued"
    running = await wait_for(client, job["id"], ["running"])
    assert running["finished_at"] is None and not running["cancel_requested"]
    await client.post(f"/v1/jobs/{job['id']}/cancel")
    again = await wait_for(client, job["id"])
    assert again["state"] == "cancelled" and again["step"] >= cancelled["checkpoint"]["step"]


async def test_resume_refuses_a_model_changed_since_the_checkpoint(
    client: httpx.AsyncClient,
) -> None:
    job = await long_job(client)
    await client.post(f"/v1/jobs/{job['id']}/cancel")
    await wait_for(client, job["id"])
    step = {"inputs": [[0.0, 0.0]], "targets": [[0.0]]}
    assert (await client.post("/v1/models/long/train-step", json=step)).status_code == 200
    response = await client.post(f"/v1/jobs/{job['id']}/resume")
    problem = assert_problem(response, 409, type_suffix="model-changed")
    assert problem["job"] == job["id"]


async def test_shutdown_interrupts_a_running_job_and_another_app_resumes_it_exactly(
    persistent_apps: Apps,
) -> None:
    """A job interrupted mid-epoch (checkpoints every 5 steps) and resumed on a new app ends
    with the parameters of a run that was never interrupted, bit for bit."""
    body = {
        "dataset": noisy(40),
        "epochs": 30,
        "batch_size": 4,
        "learning_rate": 0.05,
        "seed": 11,
        "validation_split": 0.2,
    }
    first = await persistent_apps(job_checkpoint_steps=5)
    await create(first, model("resumed", WIDE))
    await create(first, model("straight", WIDE))
    job = await train(first, "resumed", **body)
    await wait_for(first, job["id"], ["running"], step=7)
    await persistent_apps.stop(first)

    second = await persistent_apps(job_checkpoint_steps=5)
    interrupted = await job_of(second, job["id"])
    assert interrupted["state"] == "interrupted", interrupted
    assert interrupted["checkpoint"]["version"] == interrupted["version"]
    resumed = await second.post(f"/v1/jobs/{job['id']}/resume")
    assert resumed.status_code == 202, resumed.text
    reference = await train(second, "straight", **body)
    done = await wait_for(second, job["id"], timeout=120)
    straight = await wait_for(second, reference["id"], timeout=120)
    assert done["state"] == straight["state"] == "succeeded"
    assert await parameters_text(second, "resumed") == await parameters_text(second, "straight")
    assert (done["loss"], done["validation_loss"], done["step"]) == (
        straight["loss"],
        straight["validation_loss"],
        straight["step"],
    )
    events = events_of((await second.get(f"/v1/jobs/{job['id']}/events")).text)
    states = [e["data"]["state"] for e in events if e["event"] != "progress"]
    assert states == ["queued", "running", "interrupted", "queued", "running", "succeeded"]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))


async def test_jobs_left_by_a_dead_process_are_marked_interrupted(apps: Apps) -> None:
    client = await apps()
    await create(client, model("orphan", SMALL))
    job = await train(client, "orphan", dataset=XOR, epochs=1, batch_size=4, learning_rate=0.1)
    await wait_for(client, job["id"])
    registry = next(iter(apps.apps.values())).state.store.registry
    config = registry.jobs.get_job(job["id"]).config
    registry.jobs.create_job(
        NewJob("ghost-job", "orphan", None, config, "dead-process", {}, XOR_ARRAYS)
    )
    job = await wait_for(client, "ghost-job", ["interrupted"], timeout=10)
    assert job["finished_at"] is not None


# -- what the jobs compute (memory backend) ---------------------------------------------------


async def test_xor_trained_through_the_api_reaches_a_loss_below_0_01(
    memory_client: httpx.AsyncClient,
) -> None:
    client = memory_client
    created = await client.post("/v1/datasets", json={"name": "xor", **XOR})
    assert created.status_code == 201, created.text
    await create(client, model("xor", [(8, "tanh"), (1, "sigmoid")]))
    job = await train(
        client,
        "xor",
        dataset="xor",
        epochs=1500,
        batch_size=4,
        learning_rate=0.05,
        optimizer={"kind": "adam"},
        seed=5,
    )
    done = await wait_for(client, job["id"], timeout=120)
    assert done["state"] == "succeeded", done
    assert done["loss"] < 0.01
    outputs = (await client.post("/v1/models/xor/forward", json={"inputs": XOR["inputs"]})).json()
    for [out], [target] in zip(outputs["outputs"], XOR["targets"], strict=True):
        assert abs(out - target) < 0.2


async def test_a_job_equals_an_independent_mini_batch_sgd(
    memory_client: httpx.AsyncClient,
) -> None:
    """The seed network trained by a job equals a NumPy re-implementation of the documented
    shuffle and plain SGD: parameters, epoch losses and validation losses."""
    client = memory_client
    data = noisy(11, seed=4)
    await create(client, {**model("seed", SMALL), "parameters": SEED_PARAMETERS, "init": None})
    config: dict[str, Any] = {
        "epochs": 6,
        "batch_size": 3,
        "learning_rate": 0.5,
        "seed": 2024,
        "validation_split": 0.3,
    }
    job = await train(client, "seed", dataset=data, **config)
    assert (await wait_for(client, job["id"]))["state"] == "succeeded"
    expected, losses, validation = reference_training(
        arrays(SEED_PARAMETERS),
        [a for _, a in SMALL],
        data["inputs"],
        data["targets"],
        **config,
    )
    got = (await client.get("/v1/models/seed/parameters")).json()["parameters"]
    assert_close(
        got, {"layers": [{"weights": W.tolist(), "biases": b.tolist()} for W, b in expected]}
    )
    history = (await client.get("/v1/models/seed/history")).json()["items"]
    assert_close([e["loss"] for e in history], losses)
    assert_close([e["validation_loss"] for e in history], validation)


async def test_the_same_seed_gives_bit_identical_parameters(
    memory_client: httpx.AsyncClient,
) -> None:
    client = memory_client
    body = {
        "dataset": noisy(30),
        "epochs": 4,
        "batch_size": 7,
        "learning_rate": 0.1,
        "optimizer": {"kind": "adam"},
        "seed": 99,
    }
    for name in ("a", "b", "c"):
        await create(client, model(name, WIDE))
    jobs = [await train(client, name, **body) for name in ("a", "b")]
    jobs.append(await train(client, "c", **{**body, "seed": 100}))
    for job in jobs:
        assert (await wait_for(client, job["id"]))["state"] == "succeeded"
    a, b, c = [await parameters_text(client, n) for n in ("a", "b", "c")]
    assert a == b != c


async def test_patience_stops_training_early(memory_client: httpx.AsyncClient) -> None:
    client = memory_client
    await create(client, model("flat", SMALL))
    # A learning rate this small barely moves the loss: no epoch beats the first by much,
    # and with lr 0 none beats it at all.
    job = await train(
        client,
        "flat",
        dataset=noisy(20),
        epochs=50,
        batch_size=5,
        learning_rate=1e-300,
        validation_split=0.25,
        patience=3,
    )
    done = await wait_for(client, job["id"])
    assert done["state"] == "succeeded" and done["stopped_early"], done
    assert done["epoch"] == 4 and done["best_loss"] == done["validation_loss"]


async def test_jobs_are_listed_newest_first_a_page_at_a_time(
    memory_client: httpx.AsyncClient,
) -> None:
    client = memory_client
    ids = []
    for name in ("a", "b", "a2"):
        await create(client, model(name, SMALL))
        job = await train(client, name, dataset=XOR, epochs=1, batch_size=4, learning_rate=0.1)
        await wait_for(client, job["id"])
        ids.append(job["id"])
    page = (await client.get("/v1/jobs", params={"limit": 2})).json()
    assert [j["id"] for j in page["items"]] == ids[::-1][:2] and page["total"] == 3
    rest = (await client.get("/v1/jobs", params={"cursor": page["next_cursor"]})).json()
    assert [j["id"] for j in rest["items"]] == ids[:1] and rest["next_cursor"] is None
    only_a = (await client.get("/v1/jobs", params={"model": "a"})).json()
    assert [j["id"] for j in only_a["items"]] == ids[:1] and only_a["total"] == 1


async def test_events_resume_after_last_event_id(memory_client: httpx.AsyncClient) -> None:
    client = memory_client
    await create(client, model("xor", SMALL))
    job = await train(client, "xor", dataset=XOR, epochs=3, batch_size=4, learning_rate=0.1)
    await wait_for(client, job["id"])
    url = f"/v1/jobs/{job['id']}/events"
    whole = events_of((await client.get(url)).text)
    response = await client.get(url, headers={"Last-Event-ID": "3"})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert events_of(response.text) == whole[3:]
    assert events_of((await client.get(url, params={"after": 5})).text) == whole[5:]
    assert_problem(await client.get(url, headers={"Last-Event-ID": "x"}), 400)


# -- requests the service refuses -------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status", "pointer"),
    [
        ({"epochs": 0}, 422, "/epochs"),
        ({"batch_size": 0}, 422, "/batch_size"),
        ({"learning_rate": 0}, 422, "/learning_rate"),
        ({"validation_split": 1.0}, 422, "/validation_split"),
        ({"validation_split": 0.9}, 422, "/validation_split"),  # leaves no training rows
        ({"patience": 0}, 422, "/patience"),
        ({"dataset": {"inputs": [[0.0]], "targets": [[0.0]]}}, 422, "/dataset/inputs/0"),
        ({"dataset": {"inputs": [[0.0, 1.0]], "targets": [[0.0]] * 2}}, 422, "/dataset/targets"),
        ({"dataset": "../x"}, 422, "/dataset"),
        ({"optimizer": {"kind": "rmsprop"}}, 422, "/optimizer"),
        ({"surprise": 1}, 422, "/surprise"),
    ],
)
async def test_invalid_train_requests_get_422_naming_the_field(
    memory_client: httpx.AsyncClient, change: dict[str, JSON], status: int, pointer: str
) -> None:
    client = memory_client
    await create(client, model("xor", SMALL))
    body = {
        "dataset": {"inputs": XOR["inputs"][:2], "targets": XOR["targets"][:2]},
        "epochs": 1,
        "batch_size": 1,
        "learning_rate": 0.1,
        **change,
    }
    response = await client.post("/v1/models/xor/train", json=body)
    assert_problem(response, status, pointer_prefix=pointer)


async def test_a_dataset_of_the_wrong_width_gets_422_at_dataset(
    memory_client: httpx.AsyncClient,
) -> None:
    client = memory_client
    await create(client, model("xor", SMALL))
    await client.post(
        "/v1/datasets", json={"name": "wide", "inputs": [[1.0, 2.0, 3.0]], "targets": [[1.0]]}
    )
    response = await client.post(
        "/v1/models/xor/train",
        json={"dataset": "wide", "epochs": 1, "batch_size": 1, "learning_rate": 0.1},
    )
    problem = assert_problem(response, 422, pointer="/dataset")
    assert "wide" in problem["detail"]


async def test_unknown_model_dataset_or_job_gets_404(memory_client: httpx.AsyncClient) -> None:
    client = memory_client
    body = {"dataset": "nope", "epochs": 1, "batch_size": 1, "learning_rate": 0.1}
    assert_problem(
        await client.post("/v1/models/nope/train", json=body), 404, type_suffix="model-not-found"
    )
    await create(client, model("xor", SMALL))
    assert_problem(
        await client.post("/v1/models/xor/train", json=body), 404, type_suffix="dataset-not-found"
    )
    for method, path in [
        ("GET", "/v1/jobs/nope"),
        ("POST", "/v1/jobs/nope/cancel"),
        ("POST", "/v1/jobs/nope/resume"),
        ("GET", "/v1/jobs/nope/events"),
    ]:
        assert_problem(await client.request(method, path), 404, type_suffix="job-not-found")
    assert_problem(await client.get("/v1/models/nope/history"), 404)
