"""A server on PostgreSQL while PostgreSQL stops and starts again: 503s during the outage
(never a 500), the service recovers by itself, and no acknowledged train-step is lost."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.api.support import seed_model
from tests.postgres import PostgresSchemas
from tests.servers import running
from tests.test_replicas import SAMPLE, flat, sequential_steps


def pg_ctlcluster(*action: str) -> None:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", *action],
        check=True,
        capture_output=True,
        timeout=60,
    )


def outage(seconds: float) -> None:
    """Stop the machine's PostgreSQL (fast: connections are cut) and start it again later."""
    pg_ctlcluster("stop", "-m", "fast")
    try:
        time.sleep(seconds)
    finally:
        pg_ctlcluster("start")


@pytest.fixture
def can_restart_postgres() -> None:
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        reason = "pg_ctlcluster is not here: this test restarts the local PostgreSQL cluster"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def test_postgres_outage_gives_503_then_recovers_without_losing_steps(
    can_restart_postgres: None, postgres_schemas: PostgresSchemas
) -> None:
    registry = postgres_schemas.create()
    statuses: dict[int, int] = {}
    acknowledged: list[int] = []
    stop = threading.Event()
    lock = threading.Lock()

    with running("--registry", registry) as client:
        assert client.post("/v1/models", json=seed_model(named=True)).status_code == 201

        def stream(kind: str) -> None:
            with httpx.Client(base_url=str(client.base_url), timeout=30) as own:
                deadline = time.monotonic() + 60
                while not stop.is_set() and time.monotonic() < deadline:
                    if kind == "train":
                        r = own.post("/v1/models/seed/train-step", json=SAMPLE)
                    else:
                        r = own.post("/v1/models/seed/forward", json={"inputs": SAMPLE["inputs"]})
                    with lock:
                        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                        if kind == "train" and r.status_code == 200:
                            acknowledged.append(r.json()["version"])
                    if r.status_code == 503:
                        assert r.headers["content-type"] == "application/problem+json"
                    time.sleep(0.01)

        threads = [threading.Thread(target=stream, args=(k,)) for k in ("train", "train", "fwd")]
        for t in threads:
            t.start()
        time.sleep(1.0)
        outage(8.0)  # longer than the registry's 5 s wait for a connection
        # Recovery: the service answers 200 again by itself, within a bounded time.
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the service did not recover"
            time.sleep(0.2)
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()

        assert set(statuses) <= {200, 503}, statuses
        assert statuses.get(200, 0) > 0
        assert statuses.get(503, 0) > 0, "the outage was seen as 503s"
        final = client.get("/v1/models/seed/parameters").json()
        assert final["version"] >= max(acknowledged)
        assert len(set(acknowledged)) == len(acknowledged), "no version acknowledged twice"
        # Every committed version is one step on the same sample: the final parameters are
        # exactly the (version - 1)-th iterate, so nothing acknowledged was lost or torn.
        expected = sequential_steps(final["version"] - 1)
        np.testing.assert_allclose(
            np.concatenate(flat(final["parameters"])), np.concatenate(expected), rtol=0, atol=1e-12
        )
    print(f"statuses during the outage: {statuses}")
