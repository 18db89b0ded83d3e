"""The command line's ``train`` (service.cli_train) through the Python client: the progress
bar (redrawn on a terminal, a line per epoch elsewhere), Ctrl-C cancelling the job (exit
status 130), and an unreachable server (1)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from service.cli_train import bar, train
from service.client import Client, JobPublic
from tests.jobs.support import SMALL, model
from tests.servers import Server, free_port, serving


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serving("--registry", "memory://", env={"BACKPROP_LOG_LEVEL": "warning"}) as running:
        yield running


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
        if text.lstrip("\r").startswith("["):
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


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_the_bar_is_redrawn_on_a_terminal_and_written_a_line_per_epoch_elsewhere(
    server: Server, terminal: bool
) -> None:
    name = f"lines-{terminal}"
    with Client(server.url) as client:
        client.create_model(**model(name, SMALL))
        client.create_dataset(name, [[0.1, 0.2]] * 8, [[0.5]] * 8)
    out = Terminal() if terminal else io.StringIO()
    status = train(
        server.url, name, name, epochs=6, batch_size=2, learning_rate=0.01, seed=1, out=out
    )
    assert status == 0
    lines = out.getvalue().split("\n")
    assert lines[0].startswith("job ") and lines[-2].startswith("job ") and lines[-1] == ""
    if terminal:
        (redrawn,) = lines[1:-2]  # one line, its bar rewritten by every event
        frames = redrawn.split("\r")[1:]
        assert len(frames) >= 6 and frames[-1].startswith(f"[{'#' * 30}] 100%  epoch 6/6")
    else:
        progress = lines[1:-2]
        assert "\r" not in out.getvalue()
        epochs = [line[line.index("epoch") :].split("  ")[0] for line in progress]
        # A line per epoch, and the end's own when it reads otherwise (no more eta).
        assert epochs[:6] == [f"epoch {e}/6" for e in range(1, 7)] and len(epochs) <= 7
        assert progress[-1].startswith(f"[{'#' * 30}] 100%  epoch 6/6  step 24/24  loss ")
        assert "eta" not in progress[-1]
