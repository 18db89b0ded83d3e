"""The command line's ``train`` (service.jobs.client) through the Python client: the progress
bar, Ctrl-C cancelling the job (exit status 130), and an unreachable server (1)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from service.client import Client, JobPublic
from service.jobs.client import bar, train
from tests.jobs.support import SMALL, model
from tests.servers import Server, free_port, start


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = start("--registry", "memory://", env={"BACKPROP_LOG_LEVEL": "warning"})
    try:
        yield running
    finally:
        running.stop()


def job(**progress: object) -> JobPublic:
    return JobPublic.model_validate(
        {
            "id": "j1", "model": "m", "state": "running", "dataset": "d", "rows": 8,
            "epochs": 20, "batch_size": 2, "learning_rate": 0.1, "seed": 1,
            "optimizer": {"kind": "sgd"}, "validation_split": None, "patience": None,
            "steps_per_epoch": 20, "total_steps": 400, "epoch": 0, "step": 0, "loss": None,
            "best_loss": None, "validation_loss": None, "eta_seconds": None,
            "stopped_early": False, "version": 1, "checkpoint": None, "cancel_requested": False,
            "error": None, "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z", "started_at": None, "finished_at": None,
            "heartbeat_at": None, **progress,
        }
    )  # fmt: skip


def test_bar_shows_the_fraction_epoch_step_losses_and_eta() -> None:
    data = {"state": "running", "epoch": 9, "step": 180, "loss": 0.01234, "eta_seconds": 3.4}
    assert bar(job(), data) == (
        "[##############................]  45%  epoch 9/20  step 180/400  loss 0.01234  eta 3s"
    )
    ended = {"state": "succeeded", "epoch": 20, "step": 400, "validation_loss": 0.5}
    assert bar(job(), ended) == f"[{'#' * 30}] 100%  epoch 20/20  step 400/400  val 0.5"


class CtrlC(io.StringIO):
    """Standard output on which the user presses Ctrl-C when the first progress bar shows."""

    def write(self, text: str) -> int:
        if text.startswith("\r["):
            raise KeyboardInterrupt
        return super().write(text)


def test_ctrl_c_cancels_the_job_and_exits_130(server: Server) -> None:
    with Client(server.url) as client:
        client.create_model(**model("endless", SMALL))
        client.create_dataset("rows", [[0.1, 0.2]] * 8, [[0.5]] * 8)
    out, err = CtrlC(), io.StringIO()
    status = train(
        server.url, "endless", "rows", epochs=1_000_000, batch_size=2, learning_rate=0.01,
        out=out, err=err,
    )  # fmt: skip
    assert status == 130, err.getvalue()
    assert out.getvalue().startswith("job ") and out.getvalue().endswith(" cancelled\n")
    with Client(server.url) as client:
        (started,) = client.list_jobs(model="endless").items
        assert client.wait(started.id).state == "cancelled"
    assert f"job {started.id} cancelled" in out.getvalue()


def test_an_unreachable_server_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    status = train(url, "m", "d", epochs=1, batch_size=1, learning_rate=0.1)
    assert status == 1
    assert f"cannot reach {url}" in capsys.readouterr().err
