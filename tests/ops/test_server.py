"""The operations features in a real server process: metrics summed over several workers,
JSON log lines on stderr, and the warning when it listens beyond loopback without keys."""

from __future__ import annotations

import io
import json
import logging.config
import math
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

from service import cli
from service.api.metrics import MULTIPROC_ENV, multiprocess_dir
from tests import servers
from tests.api.support import seed_model
from tests.ops.test_metrics import samples, value

REQUESTS = 30


def test_metrics_count_the_requests_of_every_worker(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    env = {"BACKPROP_REGISTRY": f"sqlite:///{tmp_path}/r.db", MULTIPROC_ENV: str(metrics_dir)}
    server = servers.start("--workers", "2", env=env)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post("/v1/models", json=seed_model("seed")).status_code == 201
        models = set()
        for _ in range(REQUESTS):
            # A new connection each time, so that the kernel spreads them over the workers.
            with httpx.Client(base_url=server.url, timeout=30) as client:
                r = client.post("/v1/models/seed/forward", json={"inputs": [[0.23, 0.55]]})
                assert r.status_code == 200
        counts = []
        for _ in range(6):
            with httpx.Client(base_url=server.url, timeout=30) as client:
                found = samples(client.get("/metrics").text)
            models.add(value(found, "backprop_models"))
            counts.append(
                value(
                    found,
                    "backprop_http_requests_total",
                    method="POST",
                    route="/v1/models/{name}/forward",
                    status="200",
                )
            )
    finally:
        log = server.stop()
    assert counts == [REQUESTS] * len(counts), (counts, log[-3000:])
    assert models == {1.0}
    # Both workers wrote their values to the shared folder (files are named by process id).
    pids = {f.stem.rsplit("_", 1)[-1] for f in metrics_dir.glob("*.db")}
    assert len(pids) >= 2, sorted(metrics_dir.iterdir())


def test_the_server_logs_json_lines_without_keys(tmp_path: Path) -> None:
    key = "server-log-key-0123456789"
    env = {
        "BACKPROP_API_KEYS": f"{key}:admin",
        "BACKPROP_REGISTRY": "memory://",
        "BACKPROP_ACCESS_LOG": "true",
    }
    server = servers.start(env=env)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            headers = {"Authorization": f"Bearer {key}", "X-Request-ID": "from-the-test"}
            r = client.post("/v1/models", json=seed_model("seed"), headers=headers)
            assert r.status_code == 201 and r.headers["x-request-id"] == "from-the-test"
    finally:
        log = server.stop()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    [access] = [x for x in lines if x.get("request_id") == "from-the-test"]
    assert access["route"] == "/v1/models" and access["status"] == 201
    assert key not in log and "Bearer" not in log
    assert not any(x.get("logger") == "uvicorn.access" for x in lines)


def test_serve_warns_when_it_listens_beyond_loopback_without_keys(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append(k))
    monkeypatch.setattr(logging.config, "dictConfig", lambda config: None)
    for host, keys, warned in [
        ("0.0.0.0", "", True),
        ("::", "", True),
        ("backprop.internal", "", True),
        ("127.0.0.1", "", False),
        ("::1", "", False),
        ("localhost", "", False),
        ("0.0.0.0", "some-key:admin", False),
    ]:
        monkeypatch.setenv("BACKPROP_API_KEYS", keys)
        monkeypatch.setenv("BACKPROP_REGISTRY", "memory://")
        caplog.clear()
        with caplog.at_level("WARNING", logger="backprop.cli"):
            assert cli.main(["serve", "--host", host]) == 0
        assert any("no API keys" in r.getMessage() for r in caplog.records) == warned, host
    assert calls and calls[-1]["access_log"] is False
    assert (calls[-1]["loop"], calls[-1]["http"]) == ("uvloop", "httptools")


def test_serve_refuses_malformed_keys_without_showing_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("started"))
    monkeypatch.setenv("BACKPROP_API_KEYS", "very-secret-value:superuser")
    monkeypatch.setenv("BACKPROP_REGISTRY", "memory://")
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "invalid API keys" in err and "very-secret-value" not in err


def test_several_workers_get_a_fresh_metrics_folder_removed_afterwards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with multiprocess_dir(1) as none:
        assert none is None and MULTIPROC_ENV not in os.environ
    with multiprocess_dir(3) as made:
        assert made is not None and os.environ[MULTIPROC_ENV] == made and Path(made).is_dir()
    assert not Path(made).exists() and MULTIPROC_ENV not in os.environ


def test_a_given_metrics_folder_is_emptied_of_an_earlier_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "keep.txt").write_text("not ours")
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    with multiprocess_dir(2) as given:
        assert given == str(tmp_path)
        assert not (tmp_path / "counter_123.db").exists()
    assert (tmp_path / "keep.txt").exists()


def test_a_request_in_flight_completes_on_sigterm() -> None:
    """SIGTERM stops the server gracefully: a request it is computing still gets its answer."""
    wide = {
        "name": "wide",
        "network": {
            "inputs": 1024,
            "layers": [{"units": 1024, "activation": "relu"} for _ in range(3)]
            + [{"units": 1, "activation": "sigmoid"}],
            "loss": "half_squared_error",
        },
        "init": {"seed": 0},
    }
    X = np.random.default_rng(0).random((2048, 1024))
    buffer = io.BytesIO()
    np.savez(buffer, inputs=X, targets=np.full((2048, 1), 0.5))
    server = servers.start(env={"BACKPROP_REGISTRY": "memory://"})
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.post("/v1/models", json=wide).status_code == 201
            answers: list[httpx.Response] = []
            sender = threading.Thread(
                target=lambda: answers.append(
                    client.post(
                        "/v1/models/wide/gradient",
                        content=buffer.getvalue(),
                        headers={"Content-Type": "application/x-npz"},
                    )
                )
            )
            sender.start()
            time.sleep(0.5)  # the gradient (about 39 GFLOP) is being computed
            assert not answers, "the request ended before the signal: make it larger"
            server.process.send_signal(signal.SIGTERM)
            sender.join(timeout=60)
        log = server.stop()
    finally:
        if server.process.poll() is None:
            server.kill()
    [answer] = answers
    assert answer.status_code == 200, answer.text
    assert math.isfinite(answer.json()["loss"])
    assert server.process.returncode in (0, -signal.SIGTERM), log
