"""Training jobs: start one, read, list, cancel and resume it, follow its events; a model's
training history."""

from __future__ import annotations

from typing import TypedDict

from service.client.call import Call, Matrix, Obj, Pages, body, nothing, params, path, schema
from service.client.types import HistoryEntryPublic, HistoryList, JobList, JobPublic

#: The states after which a job does nothing more (until it is resumed).
ENDED = frozenset({"succeeded", "failed", "cancelled", "interrupted"})


class Rows(TypedDict):
    """Training data sent with the job rather than stored as a dataset."""

    inputs: Matrix
    targets: Matrix


def train(
    name: str,
    dataset: str | Rows,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    optimizer: Obj | None = None,
    seed: int | None = None,
    validation_split: float | None = None,
    patience: int | None = None,
    restore_best: bool | None = None,
) -> Call[JobPublic]:
    """``POST /v1/models/{name}/train``: start a job that trains the model for ``epochs``
    epochs of shuffled mini-batches of ``batch_size`` rows of a stored ``dataset`` (its name)
    or of ``{"inputs", "targets"}`` sent inline. With ``patience`` it stops early and (unless
    ``restore_best`` is False) ends at its best epoch's parameters. The queued job (202)."""
    return Call(
        "POST",
        path("/v1/models/{}/train", name),
        schema(JobPublic),
        json=body(
            dataset=dataset,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            optimizer=optimizer,
            seed=seed,
            validation_split=validation_split,
            patience=patience,
            restore_best=restore_best,
        ),
    )


def get_job(job_id: str) -> Call[JobPublic]:
    """``GET /v1/jobs/{id}``: the job's state, progress and last checkpoint."""
    return Call("GET", path("/v1/jobs/{}", job_id), schema(JobPublic))


def list_jobs(
    limit: int | None = None, cursor: str | None = None, *, model: str | None = None
) -> Call[JobList]:
    """``GET /v1/jobs``: one page of jobs, newest first (only ``model``'s if given); pass
    its ``next_cursor`` as ``cursor`` for the next."""
    return Call(
        "GET",
        "/v1/jobs",
        schema(JobList),
        params=params(limit=limit, cursor=cursor, model=model),
    )


def every_job(page_size: int | None = None, *, model: str | None = None) -> Pages[JobPublic, str]:
    """Every job (of ``model`` if given), newest first, fetched ``GET /v1/jobs`` page by
    page."""
    return lambda cursor: list_jobs(page_size, cursor, model=model)


def cancel_job(job_id: str) -> Call[JobPublic]:
    """``POST /v1/jobs/{id}/cancel``: stop the job before its next step (at once if queued or
    interrupted); the model keeps its last checkpoint. :class:`Conflict` if it has ended."""
    return Call("POST", path("/v1/jobs/{}/cancel", job_id), schema(JobPublic))


def resume_job(job_id: str) -> Call[JobPublic]:
    """``POST /v1/jobs/{id}/resume``: continue an interrupted or cancelled job from its last
    checkpoint."""
    return Call("POST", path("/v1/jobs/{}/resume", job_id), schema(JobPublic))


def job_events(job_id: str, last_event_id: int = 0) -> Call[None]:
    """``GET /v1/jobs/{id}/events``: the job's Server-Sent Events after ``last_event_id``
    (streamed: the clients read it with :func:`service.client.events.parse_events`)."""
    return Call(
        "GET",
        path("/v1/jobs/{}/events", job_id),
        nothing,
        headers={"Accept": "text/event-stream", "Last-Event-ID": str(last_event_id)},
    )


def history(name: str, limit: int | None = None, cursor: int | None = None) -> Call[HistoryList]:
    """``GET /v1/models/{name}/history``: the loss and validation loss of every epoch jobs
    trained, with the version each committed, oldest first, a page at a time."""
    return Call(
        "GET",
        path("/v1/models/{}/history", name),
        schema(HistoryList),
        params=params(limit=limit, cursor=cursor),
    )


def whole_history(name: str, page_size: int | None = None) -> Pages[HistoryEntryPublic, int]:
    """The model's whole training history, oldest first, fetched
    ``GET /v1/models/{name}/history`` page by page."""
    return lambda cursor: history(name, page_size, cursor)
