"""The command line's ``train``: start a job through the HTTP API and follow it to its end.

The job's Server-Sent Events (read by :meth:`service.client.Client.events`, which resumes a
dropped connection with ``Last-Event-ID``) drive a one-line progress bar, rewritten with
``\\r`` on a terminal; into a pipe or a file, one line per epoch instead. Ctrl-C cancels the
job.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import httpx

from service.client import ApiError, Client, JobPublic

JSON = dict[str, Any]
BAR_WIDTH = 30


def bar(job: JobPublic, data: JSON) -> str:
    """``[#####.....]  45%  epoch 9/20  step 180/400  loss 0.0123  eta 3s``."""
    total = max(job.total_steps, 1)
    step = int(data.get("step") or 0)
    done = round(BAR_WIDTH * step / total)
    parts = [
        f"[{'#' * done}{'.' * (BAR_WIDTH - done)}] {100 * step // total:3d}%",
        f"epoch {data.get('epoch', 0)}/{job.epochs}",
        f"step {step}/{total}",
    ]
    if data.get("loss") is not None:
        parts.append(f"loss {data['loss']:.6g}")
    if data.get("validation_loss") is not None:
        parts.append(f"val {data['validation_loss']:.6g}")
    if data.get("eta_seconds") is not None and data.get("state") == "running":
        parts.append(f"eta {data['eta_seconds']:.0f}s")
    return "  ".join(parts)


def follow(client: Client, job: JobPublic, out: TextIO) -> JSON:
    """Print the job's progress until its ``end`` event; returns that event's data (the job's
    current progress if it had already ended)."""
    terminal = out.isatty()
    epoch, written = None, None  # off a terminal: the epoch and the line written last
    for event in client.events(job.id):
        line = bar(job, event.data)
        if terminal:
            out.write("\r" + line)
        elif (event.kind == "progress" and event.data.get("epoch") != epoch) or (
            event.kind == "end" and line != written
        ):
            out.write(line + "\n")
            epoch, written = event.data.get("epoch"), line
        out.flush()
        if event.kind == "end":
            if terminal:
                out.write("\n")
            return event.data
    return client.get_job(job.id).model_dump(mode="json")


def train(
    url: str,
    model: str,
    dataset: str,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    optimizer: str | None = None,
    seed: int | None = None,
    validation_split: float | None = None,
    patience: int | None = None,
    restore_best: bool = True,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Train `model` on `dataset` with these options, following the job; 0 if it succeeded,
    else 1 (130 after Ctrl-C). Progress goes to `out`, errors to `err` (standard output and
    error by default)."""
    out = out or sys.stdout
    err = err or sys.stderr
    with Client(url) as client:
        try:
            job = client.train(
                model,
                dataset,
                epochs=epochs,
                batch_size=batch_size,
                learning_rate=learning_rate,
                optimizer=None if optimizer is None else {"kind": optimizer},
                seed=seed,
                validation_split=validation_split,
                patience=patience,
                restore_best=restore_best,
            )
        except httpx.TransportError as exc:
            err.write(f"backprop-service: cannot reach {url}: {exc}\n")
            return 1
        except ApiError as exc:
            err.write(f"backprop-service: {exc}\n")
            return 1
        out.write(
            f"job {job.id}: model {job.model}, {_counted(job.epochs, 'epoch')} of "
            f"{_counted(job.steps_per_epoch, 'step')} (seed {job.seed})\n"
        )
        try:
            final = follow(client, job, out)
        except KeyboardInterrupt:
            _cancel(client, job, err)
            out.write(f"\njob {job.id} cancelled\n")
            return 130
        except (httpx.TransportError, ApiError) as exc:
            err.write(f"\nbackprop-service: lost the job's events: {exc}\n")
            return 1
    state = final["state"]
    summary = f"job {job.id} {state}: model {job.model} at version {final['version']}"
    if final.get("loss") is not None:
        summary += f", loss {final['loss']:.6g}"
    if final.get("stopped_early"):
        summary += " (stopped early)"
    best = final.get("best")
    if final.get("restored_best") and best:
        summary += (
            f"; its best epoch {best['epoch']} restored (loss {final['best_loss']:.6g}, "
            f"version {best['version']})"
        )
    if final.get("error"):
        summary += f": {final['error']}"
    out.write(summary + "\n")
    return 0 if state == "succeeded" else 1


def _cancel(client: Client, job: JobPublic, err: TextIO) -> None:
    try:
        client.cancel_job(job.id)
    except (httpx.TransportError, ApiError) as exc:
        err.write(f"\nbackprop-service: could not cancel job {job.id}: {exc}\n")


def _counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, in the plural unless ``n`` is 1 ("1 step", "2 steps")."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
