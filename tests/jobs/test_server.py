"""Jobs on real server processes: progress streamed live as Server-Sent Events (read with
httpx streaming, resumed with Last-Event-ID), recovery of a job whose server was killed with
SIGKILL, and the command line's ``train``."""

from __future__ import annotations

import io
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from service.cli import main
from service.client.events import parse_events
from tests.jobs.support import WIDE, XOR, model, noisy
from tests.servers import Server, running, start

JSON = Any
QUIET = {"BACKPROP_LOG_LEVEL": "warning"}


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """One server on a memory registry for the tests that need no restart."""
    running = start("--registry", "memory://", env=QUIET)
    try:
        yield running
    finally:
        running.stop()


def created(response: httpx.Response) -> JSON:
    assert response.status_code in (201, 202), response.text
    return response.json()


def wait_for(
    client: httpx.Client, job_id: str, states: tuple[str, ...], step: int = 0, timeout: float = 120
) -> JSON:
    deadline = time.monotonic() + timeout
    while True:
        job: JSON = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in states and (job["checkpoint"] or {"step": -1})["step"] >= step:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.02)


def test_progress_streams_live_and_a_reconnect_resumes_after_the_last_event_id(
    server: Server,
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        created(client.post("/v1/models", json=model("streamed", WIDE)))
        body = {
            "dataset": noisy(400),
            "epochs": 60,
            "batch_size": 4,
            "learning_rate": 0.01,
            "seed": 1,
        }
        job = created(client.post("/v1/models/streamed/train", json=body))
        url = f"/v1/jobs/{job['id']}/events"
        first: list[JSON] = []
        with client.stream("GET", url) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for event in parse_events(response):
                first.append(event)
                if len(first) == 5:
                    break  # the client drops the connection mid-job
        assert first[-1].data["state"] == "running"  # it was live, not a replay of the end
        rest: list[JSON] = []
        headers = {"Last-Event-ID": str(first[-1].id)}
        with client.stream("GET", url, headers=headers) as response:
            rest.extend(parse_events(response))  # to the end of the stream
        ids = [e.id for e in first + rest]
        assert ids == list(range(1, len(ids) + 1))
        assert [e.kind for e in first[:3]] == ["state", "state", "progress"]
        end = rest[-1]
        assert (end.kind, end.data["state"], end.data["epoch"]) == ("end", "succeeded", 60)
        assert sum(e.kind == "progress" for e in first + rest) == 60  # one per epoch
        replay = client.get(url)
        assert [e.id for e in parse_events(replay)] == ids


def test_a_job_killed_with_its_server_is_interrupted_and_resumes_bit_exact(
    tmp_path: Path,
) -> None:
    """SIGKILL mid-job on SQLite, restart, the job shows ``interrupted``, resume: the final
    parameters equal those of an uninterrupted run with the same seed, bit for bit."""
    registry = f"sqlite:///{tmp_path}/jobs.db"
    env = {
        **QUIET,
        "BACKPROP_JOB_CHECKPOINT_STEPS": "40",
        "BACKPROP_JOB_HEARTBEAT_SECONDS": "0.2",
        "BACKPROP_JOB_STALE_SECONDS": "1",
    }
    data = noisy(600, inputs=8, seed=3)
    buffer = io.BytesIO()
    np.savez(buffer, inputs=np.array(data["inputs"]), targets=np.array(data["targets"]))
    body = {
        "dataset": "noisy",
        "epochs": 60,
        "batch_size": 8,
        "learning_rate": 0.002,
        "optimizer": {"kind": "adam"},
        "seed": 42,
        "validation_split": 0.1,
    }

    first = start("--registry", registry, env=env)
    try:
        with httpx.Client(base_url=first.url, timeout=30) as client:
            created(
                client.post(
                    "/v1/datasets?name=noisy",
                    content=buffer.getvalue(),
                    headers={"Content-Type": "application/x-npz"},
                )
            )
            for name in ("killed", "straight"):
                created(client.post("/v1/models", json=model(name, WIDE, inputs=8)))
            job = created(client.post("/v1/models/killed/train", json=body))
            before = wait_for(client, job["id"], ("running",), step=200)
    finally:
        first.kill()
        first.log()  # closes its output pipe
    assert before["step"] < before["total_steps"]

    second = start("--registry", registry, env=env)
    try:
        with httpx.Client(base_url=second.url, timeout=30) as client:
            interrupted = wait_for(client, job["id"], ("interrupted",), timeout=20)
            assert interrupted["checkpoint"]["step"] >= 200
            model_now = client.get("/v1/models/killed").json()
            assert model_now["version"] == interrupted["version"]
            resumed = client.post(f"/v1/jobs/{job['id']}/resume")
            assert resumed.status_code == 202, resumed.text
            straight = created(client.post("/v1/models/straight/train", json=body))
            done = wait_for(client, job["id"], ("succeeded", "failed"))
            reference = wait_for(client, straight["id"], ("succeeded", "failed"))
            assert done["state"] == reference["state"] == "succeeded", (done, reference)
            params = [
                json.dumps(client.get(f"/v1/models/{name}/parameters").json()["parameters"])
                for name in ("killed", "straight")
            ]
            assert params[0] == params[1]
            assert (done["loss"], done["validation_loss"]) == (
                reference["loss"],
                reference["validation_loss"],
            )
            events = list(parse_events(client.get(f"/v1/jobs/{job['id']}/events")))
            states = [e.data["state"] for e in events if e.kind != "progress"]
            assert states == ["queued", "running", "interrupted", "queued", "running", "succeeded"]
    finally:
        second.stop()


def test_cli_train_shows_progress_and_exits_0_on_success(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        created(client.post("/v1/datasets", json={"name": "cli-xor", **XOR}))
        created(client.post("/v1/models", json=model("cli-xor", [(8, "tanh"), (1, "sigmoid")])))
    argv = [
        "train",
        "cli-xor",
        "cli-xor",
        "--epochs",
        "300",
        "--batch-size",
        "4",
        "--learning-rate",
        "0.05",
        "--optimizer",
        "adam",
        "--seed",
        "5",
        "--url",
        server.url,
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # Captured output is no terminal: a line per epoch, not frames redrawn with \r.
    assert "\r" not in out and "epoch 300/300" in out and "loss " in out
    assert sum(line.startswith("[") for line in out.splitlines()) >= 300
    assert out.rstrip().splitlines()[-1].startswith("job ")
    assert "succeeded" in out.rstrip().splitlines()[-1]


def test_cli_train_exits_1_with_the_problem_when_refused(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "train",
        "no-such-model",
        "x",
        "--epochs",
        "1",
        "--batch-size",
        "1",
        "--learning-rate",
        "0.1",
        "--url",
        server.url,
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "404" in err and "no-such-model" in err


def test_shutdown_ends_open_event_streams_and_interrupts_running_jobs(tmp_path: Path) -> None:
    """A SIGTERM is not held up by a client following a job: its stream ends (it may reconnect
    with Last-Event-ID), and the job is marked interrupted at once, not when it goes stale."""
    registry = f"sqlite:///{tmp_path}/jobs.db"
    first = start("--registry", registry)  # info logs: the shutdown's are checked
    lines: list[str] = []
    try:
        with httpx.Client(base_url=first.url, timeout=30) as client:
            created(client.post("/v1/models", json=model("long", WIDE)))
            body = {"dataset": noisy(64), "epochs": 100_000, "batch_size": 8, "learning_rate": 0.01}
            job = created(client.post("/v1/models/long/train", json=body))
            wait_for(client, job["id"], ("running",), step=8)

            def follow() -> None:
                with (
                    httpx.Client(base_url=first.url, timeout=None) as own,
                    own.stream("GET", f"/v1/jobs/{job['id']}/events") as response,
                ):
                    lines.extend(response.iter_lines())

            follower = threading.Thread(target=follow)
            follower.start()
            time.sleep(0.5)
    finally:
        started = time.monotonic()
        log = first.stop()
    assert time.monotonic() - started < 10, log
    assert first.process.returncode in (0, -signal.SIGTERM) and "Finished server process" in log
    follower.join(timeout=10)
    assert not follower.is_alive() and "event: progress" in lines
    with running("--registry", registry) as client:
        assert client.get(f"/v1/jobs/{job['id']}").json()["state"] == "interrupted"
