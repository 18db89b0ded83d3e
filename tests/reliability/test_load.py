"""A short run of scripts/load.py: concurrent forward, gradient and train-step on a real server
give no 5xx and lose no train-step. (Throughput, latency and memory are reported by the full
run, not asserted here.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.load import Config, run
from tests.postgres import PostgresSchemas


@pytest.fixture(params=["sqlite", "postgres"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        schemas: PostgresSchemas = request.getfixturevalue("postgres_schemas")
        return schemas.create()
    return f"sqlite:///{tmp_path}/load.db"


def test_short_load_gives_no_server_error_and_loses_no_train_step(registry_url: str) -> None:
    report = run(Config(duration=5, clients=6, models=3, registry=registry_url))
    assert report.server_errors == 0, report.unexpected
    assert report.transport_errors == 0, report.unexpected
    assert report.unexpected == []
    assert report.lost_updates == {}
    assert sum(report.train_steps_acknowledged.values()) > 0
    assert report.final_versions == {
        name: acks + 1 for name, acks in report.train_steps_acknowledged.items()
    }
