"""The compose stack's smoke (run by scripts/compose_smoke.sh on a stack it started): three
replicas on one PostgreSQL behind HAProxy, driven through the load balancer and through each
replica's own port.

1. The worked example through the load balancer: the seed's forward, loss, gradients and its
   one SGD step, to the last digit.
2. Concurrent train-steps from several clients while one replica is killed (SIGKILL) and later
   started again: no acknowledged step is lost (the final version is the acknowledged steps + 1,
   plus any step cut by the kill that had committed without its answer) and the parameters
   equal the sequential result, computed here with NumPy. Meanwhile a training job started
   through that replica is seen interrupted through another, followed through a third and
   resumed through the second; it ends with the parameters of an uninterrupted run.
3. PostgreSQL stopped and started again: 503s (never a 500 or 502), then recovery with no
   restart of the replicas.

Prints the figures: acknowledged steps, replicas killed, times to recover, the duration.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tests.api.support import (
    AFTER_STEP,
    SEED,
    SEED_ACTIVATIONS,
    SEED_PARAMETERS,
    arrays,
    seed_model,
)
from tests.jobs.support import noisy, reference_training
from tests.test_replicas import flat, sequential_steps

JSON = Any
SAMPLE: dict[str, JSON] = {
    "inputs": [SEED["input"]],
    "targets": [SEED["target"]],
    "learning_rate": SEED["learning_rate"],
}
CLIENTS = 6
#: The training job: long enough (200 epochs of 128 steps) to be killed in its first epochs.
JOB: dict[str, JSON] = {"epochs": 200, "batch_size": 4, "learning_rate": 0.05, "seed": 19}
JOB_ROWS = 512


def until(what: str, seconds: float, check: Callable[[], bool], every: float = 0.1) -> float:
    """Poll ``check`` until it is true; the seconds it took. Fails after ``seconds``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > seconds:
            raise SystemExit(f"compose smoke: {what}: not within {seconds:g} s")
        time.sleep(every)
    return time.monotonic() - start


@dataclass
class Stack:
    """The stack's addresses, its API key and its containers' names."""

    lb: str
    replicas: list[str]
    key: str
    project: str

    def client(self, url: str, timeout: float = 30) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=url, headers=headers, timeout=timeout)

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def podman(self, *args: str) -> str:
        done = subprocess.run(["podman", *args], check=True, capture_output=True, text=True)
        return done.stdout.strip()

    def status(self, url: str, path: str) -> int | None:
        """The status of GET ``path``; None without an answer (a replica's /readyz takes up to
        its pool's 5 s to say 503 while the registry cannot be reached)."""
        try:
            with self.client(url, timeout=10) as http:
                return http.get(path).status_code
        except httpx.TransportError:
            return None

    def all_answer(self, urls: list[str], path: str, status: int) -> bool:
        """Whether GET ``path`` answers ``status`` at each of ``urls``, asked at once."""
        with ThreadPoolExecutor(len(urls)) as pool:
            return all(s == status for s in pool.map(lambda u: self.status(u, path), urls))


def expect(response: httpx.Response, status: int) -> JSON:
    if response.status_code != status:
        raise SystemExit(
            f"compose smoke: {response.request.method} {response.request.url}: "
            f"{response.status_code} {response.text[:500]}"
        )
    return response.json()


# -- 1. the worked example ------------------------------------------------------------------


def worked_example(stack: Stack) -> None:
    with stack.client(stack.lb) as http:
        created = expect(http.post("/v1/models", json=seed_model()), 201)
        assert created["version"] == 1, created
        inputs = {"inputs": SAMPLE["inputs"]}
        forward = expect(http.post("/v1/models/seed/forward", json=inputs), 200)
        assert forward["outputs"] == [SEED["forward"]["out"][-1]], forward
        gradient = expect(
            http.post(
                "/v1/models/seed/gradient",
                params={"notation": "named"},
                json={"inputs": SAMPLE["inputs"], "targets": SAMPLE["targets"]},
            ),
            200,
        )
        assert gradient["loss"] == SEED["loss"], gradient
        assert gradient["gradients"] == SEED["gradients_named"], gradient
        step = expect(http.post("/v1/models/seed/train-step", json=SAMPLE), 200)
        assert step["version"] == 2 and step["loss"] == SEED["loss"], step
        parameters = expect(http.get("/v1/models/seed/parameters"), 200)
        assert parameters["parameters"] == AFTER_STEP, parameters
    print(
        f"worked example through the load balancer: out_n9 {forward['outputs'][0][0]}, "
        f"loss {gradient['loss']}, dE/dw17 {gradient['gradients']['w17']}, one SGD step -> v2"
    )


# -- 2. train-steps while a replica is killed; a job across replicas ------------------------


@dataclass
class Steps:
    """Client threads sending the seed's train-step through the load balancer until stopped."""

    stack: Stack
    acknowledged: list[int] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    #: Answers that may hide a committed step: the request reached a replica and no 200 came.
    unknown: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, clients: int = CLIENTS) -> None:
        self.stop.clear()
        self.threads = [threading.Thread(target=self._client) for _ in range(clients)]
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def acks(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def _client(self) -> None:
        with self.stack.client(self.stack.lb, timeout=120) as http:
            while not self.stop.is_set():
                try:
                    response = http.post("/v1/models/seed/train-step", json=SAMPLE)
                except httpx.TransportError as exc:
                    with self.lock:
                        self.statuses[type(exc).__name__] += 1
                        self.unknown += 1
                    continue
                with self.lock:
                    if response.status_code == 200:
                        self.acknowledged.append(response.json()["version"])
                        self.statuses["200"] += 1
                        continue
                    kind = response.json().get("type", "") if _problem(response) else ""
                    self.statuses[f"{response.status_code} {kind}".strip()] += 1
                    # HAProxy's own 503 (no replica ready) reached no replica: nothing committed.
                    if kind != "/problems/no-replica-ready":
                        self.unknown += 1
                if response.status_code == 503:
                    time.sleep(float(response.headers.get("Retry-After", "1")) / 10)


def _problem(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("application/problem+json")


def events(stack: Stack, url: str, job_id: str, after: int) -> Iterator[dict[str, JSON]]:
    """The job's Server-Sent Events through ``url``, after event ``after``, until its end."""
    headers = {"Last-Event-ID": str(after)} if after else {}
    with (
        stack.client(url, timeout=120) as http,
        http.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response,
    ):
        expect_status = response.status_code
        if expect_status != 200:
            raise SystemExit(f"compose smoke: events of job {job_id}: {expect_status}")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line:
                if not line.startswith(":"):
                    key, _, value = line.partition(": ")
                    fields[key] = value
                continue
            if "data" in fields:
                yield {
                    "id": int(fields["id"]),
                    "event": fields["event"],
                    "data": json.loads(fields["data"]),
                }
            fields = {}


def kill_and_restart(stack: Stack, steps: Steps, started: float) -> dict[str, float]:
    """Replica 1 runs a job and takes a share of the train-steps; SIGKILL it, see the job
    interrupted through replica 2 and followed through replica 3, start replica 1 again,
    resume the job through replica 2 and follow it to its end through replica 3."""
    one, two, three = stack.replicas
    figures: dict[str, float] = {}
    data = noisy(JOB_ROWS, seed=19)
    with stack.client(one) as http:
        expect(http.post("/v1/models", json=seed_model("job")), 201)
        job = expect(http.post("/v1/models/job/train", json={"dataset": data, **JOB}), 202)
    job_id = job["id"]

    followed: list[dict[str, JSON]] = []
    progressed = threading.Event()

    def follow() -> None:
        for event in events(stack, three, job_id, 0):
            followed.append(event)
            if event["event"] == "progress":
                progressed.set()

    follower = threading.Thread(target=follow)
    follower.start()
    until("the job's first checkpoint, followed through replica 3", 60, progressed.is_set)
    until("40 acknowledged train-steps", 60, lambda: steps.acks() >= 40)

    before = steps.acks()
    stack.podman("kill", "--signal", "KILL", stack.container("backprop-1"))
    killed = time.monotonic()
    print(f"replica 1 killed (SIGKILL) after {before} acknowledged steps, its job running")
    figures["routed_around"] = until(
        "train-steps acknowledged through the load balancer after the kill",
        30,
        lambda: steps.acks() >= before + 20,
    )
    with stack.client(two) as http:

        def interrupted() -> bool:
            state: str = expect(http.get(f"/v1/jobs/{job_id}"), 200)["state"]
            return state == "interrupted"

        until("the killed replica's job seen interrupted through replica 2", 60, interrupted)
        figures["job_interrupted"] = time.monotonic() - killed
        seen = expect(http.get(f"/v1/jobs/{job_id}"), 200)
        assert seen["epoch"] < JOB["epochs"], seen
        follower.join(timeout=30)
        assert not follower.is_alive(), "the event stream through replica 3 did not end"
        assert followed[-1]["event"] == "end", followed[-1]
        assert followed[-1]["data"]["state"] == "interrupted", followed[-1]

        stack.podman("start", stack.container("backprop-1"))
        figures["replica_back"] = until(
            "replica 1 ready again", 60, lambda: stack.status(one, "/readyz") == 200
        )
        resumed = expect(http.post(f"/v1/jobs/{job_id}/resume"), 202)
        assert resumed["state"] in ("queued", "running"), resumed

    # Replica 1 is sent requests again once HAProxy's check passes: it counts train-steps.
    def replica_one_serves() -> bool:
        with stack.client(one) as http:
            metrics = http.get("/metrics").text
        return any(
            line.startswith("backprop_train_steps_total")
            and 'kind="stored"' in line
            and float(line.rsplit(" ", 1)[1]) > 0
            for line in metrics.splitlines()
        )

    until("replica 1 taking train-steps from the load balancer again", 30, replica_one_serves)
    until("40 more acknowledged train-steps", 60, lambda: steps.acks() >= before + 60)

    last = followed[-1]["id"]
    ended = list(events(stack, three, job_id, last))
    assert [e["id"] for e in ended] == list(range(last + 1, last + 1 + len(ended))), ended
    assert ended[-1]["event"] == "end" and ended[-1]["data"]["state"] == "succeeded", ended[-1]
    with stack.client(two) as http:
        job = expect(http.get(f"/v1/jobs/{job_id}"), 200)
        got = expect(http.get("/v1/models/job/parameters"), 200)["parameters"]
    expected, _losses, _validation = reference_training(
        arrays(SEED_PARAMETERS), SEED_ACTIVATIONS, data["inputs"], data["targets"], **JOB
    )
    np.testing.assert_allclose(
        np.concatenate(flat(got)),
        np.concatenate([np.concatenate([W.ravel(), b]) for W, b in expected]),
        rtol=1e-9,
        atol=1e-12,
    )
    print(
        f"job {job_id}: started through replica 1, killed at epoch {seen['epoch']}, seen "
        f"interrupted through replica 2 {figures['job_interrupted']:.1f} s after the kill, "
        f"followed through replica 3 ({len(followed) + len(ended)} events), resumed through "
        f"replica 2: {job['state']} at v{job['version']}, parameters = an uninterrupted "
        f"NumPy run ({time.monotonic() - started:.0f} s into the smoke)"
    )
    return figures


# -- 3. PostgreSQL stopped and started ------------------------------------------------------


def outage(stack: Stack, steps: Steps) -> dict[str, float]:
    names = [stack.container(f"backprop-{i}") for i in (1, 2, 3)]
    started = [stack.podman("inspect", "--format", "{{.State.StartedAt}}", n) for n in names]
    before = steps.acks()
    until("train-steps before the outage", 30, lambda: steps.acks() >= before + 10)
    stack.podman("stop", "--time", "10", stack.container("postgres"))
    stopped = time.monotonic()
    until(
        "every replica's /readyz at 503 with PostgreSQL stopped",
        30,
        lambda: stack.all_answer(stack.replicas, "/readyz", 503),
    )
    until(
        "a 503 through the load balancer",
        10,
        lambda: stack.status(stack.lb, "/readyz") == 503,
    )
    down_acks = steps.acks()
    stack.podman("start", stack.container("postgres"))
    restarted = time.monotonic()
    recovered = until(
        "a train-step acknowledged through the load balancer after PostgreSQL's start",
        60,
        lambda: steps.acks() > down_acks,
    )
    ready = until(
        "every replica ready again",
        60,
        lambda: stack.all_answer(stack.replicas, "/readyz", 200),
    )
    after = [stack.podman("inspect", "--format", "{{.State.StartedAt}}", n) for n in names]
    assert after == started, f"a replica was restarted during the outage: {started} -> {after}"
    return {
        "outage": restarted - stopped,
        "recovered": recovered,
        "all_ready": max(ready, recovered),
    }


def check_steps(stack: Stack, steps: Steps) -> int:
    """Every acknowledged step is in the final version, and the parameters are the sequential
    result of that many steps, on every replica."""
    acks = len(steps.acknowledged)
    assert len(set(steps.acknowledged)) == acks, "a version acknowledged twice"
    with stack.client(stack.lb) as http:
        final: int = expect(http.get("/v1/models/seed"), 200)["version"]
    # The worked example's own step made v2; each acknowledged step one version more.
    committed_unanswered = final - 2 - acks
    assert 0 <= committed_unanswered <= steps.unknown, (final, acks, steps.unknown)
    expected = np.concatenate(sequential_steps(final - 1))
    for url in stack.replicas:
        with stack.client(url) as http:
            got = expect(http.get("/v1/models/seed/parameters"), 200)
        assert got["version"] == final, got
        np.testing.assert_allclose(
            np.concatenate(flat(got["parameters"])), expected, rtol=0, atol=1e-12
        )
    print(
        f"train-steps: {acks} acknowledged by {CLIENTS} clients, final version {final} = 1 + "
        f"the worked example's step + {acks} acknowledged + {committed_unanswered} committed "
        f"without an answer (of {steps.unknown} requests cut by the kill or the outage); "
        f"parameters on every replica = {final - 1} sequential SGD steps in NumPy"
    )
    return acks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--lb", required=True, help="the load balancer's URL")
    parser.add_argument("--replica", action="append", required=True, help="each replica's URL")
    parser.add_argument("--key-file", required=True, help="a file holding an admin API key")
    parser.add_argument("--project", required=True, help="the compose project's name")
    args = parser.parse_args(argv)
    key = Path(args.key_file).read_text().strip()
    stack = Stack(args.lb, args.replica, key, args.project)
    started = time.monotonic()

    until(
        "the load balancer and every replica ready",
        120,
        lambda: stack.all_answer([stack.lb, *stack.replicas], "/readyz", 200),
        every=0.5,
    )
    with stack.client(stack.lb) as http:
        assert http.get("/v1/models", headers={"Authorization": ""}).status_code == 401
    worked_example(stack)

    steps = Steps(stack)
    steps.start()
    try:
        kill = kill_and_restart(stack, steps, started)
        down = outage(stack, steps)
    finally:
        steps.finish()
    acks = check_steps(stack, steps)
    answers = ", ".join(f"{status}: {n}" for status, n in sorted(steps.statuses.items()))
    print(f"train-step answers through the load balancer: {answers}")
    # A request in flight to the replica when it was killed ends in a 502 or a connection
    # closed without an answer (HAProxy sends again only what it could not send); 503s while
    # PostgreSQL is stopped. Nothing else: no 500, no timeout.
    allowed = ("200", "502", "503", "RemoteProtocolError")
    bad = [s for s in steps.statuses if not s.startswith(allowed)]
    assert not bad, f"answers other than {', '.join(allowed)}: {steps.statuses}"
    print(
        "figures: "
        f"acknowledged steps {acks}; replicas killed 1; "
        f"steps acknowledged again {kill['routed_around']:.1f} s after the kill; "
        f"job interrupted {kill['job_interrupted']:.1f} s after it; "
        f"killed replica ready {kill['replica_back']:.1f} s after its start; "
        f"PostgreSQL down {down['outage']:.1f} s, a step acknowledged "
        f"{down['recovered']:.1f} s after its start (every replica ready after "
        f"{down['all_ready']:.1f} s, none restarted); "
        f"smoke {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
