"""The real server process: started by the command line, serving the worked example, and
keeping every acknowledged version across a restart on the same SQLite file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.seed import SEED
from tests.servers import ROOT, running


def seed_model() -> dict[str, Any]:
    return {
        "name": "seed",
        "network": {**SEED["network"], "loss": "half_squared_error"},
        "parameters": SEED["parameters_named"],
    }


def test_worked_example_over_http_survives_a_restart(tmp_path: Path) -> None:
    registry = f"sqlite:///{tmp_path}/registry.db"
    data = {"inputs": [SEED["input"]], "targets": [SEED["target"]]}
    with running("--registry", registry) as client:
        created = client.post("/v1/models", json=seed_model())
        assert created.status_code == 201, created.text
        forward = client.post(
            "/v1/models/seed/forward", json={"inputs": data["inputs"], "trace": True}
        )
        assert forward.status_code == 200, forward.text
        trace = forward.json()["trace"]["layers"]
        assert [t["net"][0] for t in trace] == SEED["forward"]["net"]
        assert [t["out"][0] for t in trace] == SEED["forward"]["out"]
        grad = client.post("/v1/models/seed/gradient?notation=named", json=data).json()
        assert abs(grad["loss"] - SEED["loss"]) <= 1e-12
        for name, value in SEED["gradients_named"].items():
            assert abs(grad["gradients"][name] - value) <= 1e-12, name
        step = client.post("/v1/models/seed/train-step", json={**data, "learning_rate": 0.01})
        assert step.status_code == 200, step.text
        assert step.json()["version"] == 2
        assert step.headers["etag"] == '"2"'
        before = client.get("/v1/models/seed/parameters?notation=named").json()
    with running("--registry", registry) as client:
        after = client.get("/v1/models/seed/parameters?notation=named").json()
        assert after == before
        assert after["version"] == 2
        for name, value in SEED["after_one_sgd_step"]["named"].items():
            assert abs(after["parameters"][name] - value) <= 1e-12, name
        loss = client.post("/v1/models/seed/gradient", json=data).json()["loss"]
        assert abs(loss - SEED["after_one_sgd_step"]["loss"]) <= 1e-12


def test_serve_refuses_several_workers_on_a_memory_registry() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--registry", "memory://", "--workers", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "memory://" in result.stderr and "workers" in result.stderr


def test_serve_rejects_an_unknown_registry_scheme() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--registry", "mysql://x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "registry" in result.stderr
