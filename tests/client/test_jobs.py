"""Training jobs through the client, on a real server and in process: a job on a stored
dataset followed by its events to the end, ``wait``, the history, listing, cancel and
resume."""

from __future__ import annotations

import pytest

from service.client import AsyncClient, Client, Conflict
from tests.api.support import SEED_NETWORK, SEED_PARAMETERS
from tests.client.conftest import Unique

XOR_INPUTS = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
XOR_TARGETS = [[0.0], [1.0], [1.0], [0.0]]
XOR_NETWORK = {
    "inputs": 2,
    "layers": [{"units": 8, "activation": "tanh"}, {"units": 1, "activation": "sigmoid"}],
    "loss": "binary_cross_entropy",
}


def test_a_job_on_a_dataset_streams_its_events_to_the_end(client: Client, unique: Unique) -> None:
    name = unique("xor")
    client.create_dataset(name, XOR_INPUTS, XOR_TARGETS)
    client.create_model(name, XOR_NETWORK, init={"seed": 2})
    job = client.train(
        name, name, epochs=20, batch_size=2, learning_rate=0.5, optimizer={"kind": "adam"}, seed=9
    )
    assert (job.model, job.dataset, job.state, job.total_steps, job.seed) == (
        name,
        name,
        "queued",
        40,
        9,
    )
    assert job.optimizer.kind == "adam" and job.optimizer.learning_rate == 0.5

    events = list(client.events(job.id))
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert [e.kind for e in events[:2]] == ["state", "state"]
    assert [e.data["state"] for e in events[:2]] == ["queued", "running"]
    assert sum(e.kind == "progress" for e in events) == 20
    end = events[-1]
    assert (end.kind, end.data["state"], end.data["epoch"], end.data["step"]) == (
        "end",
        "succeeded",
        20,
        40,
    )

    final = client.wait(job.id)
    assert (final.state, final.epoch, final.step, final.version) == ("succeeded", 20, 40, 21)
    assert final.loss == end.data["loss"] and final.finished_at is not None
    assert client.get_model(name).version == 21

    later = list(client.events(job.id, last_event_id=events[-3].id))
    assert later == events[-2:]
    assert list(client.events(job.id, last_event_id=end.id)) == []

    history = client.history(name, limit=5)
    assert [e.epoch for e in history.items] == [1, 2, 3, 4, 5] and history.next_cursor is not None
    entries = list(client.iter_history(name, page_size=3))
    assert [(e.epoch, e.version, e.job) for e in entries] == [
        (epoch, epoch + 1, job.id) for epoch in range(1, 21)
    ]
    assert entries[-1].loss == final.loss

    assert [j.id for j in client.list_jobs(model=name).items] == [job.id]
    assert job.id in [j.id for j in client.iter_jobs(page_size=1)]
    with pytest.raises(Conflict) as info:
        client.cancel_job(job.id)
    assert info.value.problem["state"] == "succeeded"


def test_cancel_and_resume_a_running_job(client: Client, unique: Unique) -> None:
    name = unique("long")
    client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)
    job = client.train(
        name,
        {"inputs": [[0.23, 0.55]] * 8, "targets": [[0.01]] * 8},
        epochs=1_000_000,
        batch_size=2,
        learning_rate=0.001,
    )
    for event in client.events(job.id):
        if event.kind == "progress":
            break  # it is running; leaving the loop closes the stream
    cancelling = client.cancel_job(job.id)
    assert cancelling.cancel_requested or cancelling.state == "cancelled"
    cancelled = client.wait(job.id)
    assert cancelled.state == "cancelled" and cancelled.checkpoint is not None
    assert client.get_model(name).version == cancelled.version

    resumed = client.resume_job(job.id)
    assert resumed.state == "queued" and resumed.id == job.id
    client.cancel_job(job.id)
    again = client.wait(job.id)
    assert again.state == "cancelled" and again.step >= cancelled.step
    kinds = [e.data["state"] for e in client.events(job.id) if e.kind != "progress"]
    assert kinds[:3] == ["queued", "running", "cancelled"] and kinds[-1] == "cancelled"


@pytest.mark.anyio
async def test_async_train_wait_and_history(aclient: AsyncClient) -> None:
    await aclient.create_model("xor", XOR_NETWORK, init={"seed": 2})
    job = await aclient.train(
        "xor",
        {"inputs": XOR_INPUTS, "targets": XOR_TARGETS},
        epochs=5,
        batch_size=4,
        learning_rate=0.1,
        seed=3,
        validation_split=0.25,
    )
    assert job.dataset is None and job.validation_split == 0.25
    final = await aclient.wait(job.id)
    assert (final.state, final.epoch, final.version) == ("succeeded", 5, 6)
    assert final.validation_loss is not None
    events = [e async for e in aclient.events(job.id)]
    assert events[-1].kind == "end" and events[-1].data["version"] == 6
    history = [e async for e in aclient.iter_history("xor", page_size=2)]
    assert [e.epoch for e in history] == [1, 2, 3, 4, 5]
    assert history[-1].validation_loss == final.validation_loss
    assert [j.id async for j in aclient.iter_jobs()] == [job.id]
    assert (await aclient.get_job(job.id)) == final
    assert (await aclient.list_jobs(model="other")).items == []
