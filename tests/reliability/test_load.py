"""A short run of scripts/load.py: concurrent forward, gradient and train-step on a real server
give no 5xx and lose no train-step. (Throughput, latency and memory are reported by the full
run, not asserted here.)"""

from __future__ import annotations

from scripts.load import Config, run


def test_short_load_gives_no_server_error_and_loses_no_train_step(shared_registry: str) -> None:
    report = run(Config(duration=5, clients=6, models=3, registry=shared_registry))
    assert report.server_errors == 0, report.unexpected
    assert report.transport_errors == 0, report.unexpected
    assert report.unexpected == []
    assert report.lost_updates == {}
    assert sum(report.train_steps_acknowledged.values()) > 0
    assert report.final_versions == {
        name: acks + 1 for name, acks in report.train_steps_acknowledged.items()
    }
