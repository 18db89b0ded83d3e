"""Training jobs: start one on a model, follow it (JSON or Server-Sent Events), cancel and
resume it; and a model's training history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Response, status
from fastapi.responses import StreamingResponse

from service import specs
from service.api import examples
from service.api.bodies import JSONBodies
from service.api.deps import CursorQuery, JobsDep, NamePath, page, per_page
from service.api.headers import decimal, shown
from service.api.problems import MalformedHeaderValue, problem_responses
from service.api.schemas.common import MAX_INTEGER, StorableText
from service.api.schemas.jobs import (
    JOB_ID_PATTERN,
    CheckpointPublic,
    HistoryEntryPublic,
    HistoryList,
    InlineDataset,
    JobList,
    JobPublic,
    TrainRequest,
)
from service.jobs.datasets import Dataset
from service.jobs.store import TrainSpec
from service.registry import JobRecord

router = APIRouter(tags=["jobs"], route_class=JSONBodies)


JobIdPath = Annotated[
    str,
    Path(
        pattern=JOB_ID_PATTERN,
        description="The job's id (`id` of the job, the end of its `Location`).",
        openapi_examples=examples.path_example("0641f2c3a9b1e07a3c5d", "A job's id"),
    ),
]

TRAIN_EXAMPLES: dict[str, Any] = {
    "xor": {
        "summary": "XOR, inline, 2000 epochs of batches of 4 with Adam",
        "value": {
            "dataset": {
                "inputs": [[0, 0], [0, 1], [1, 0], [1, 1]],
                "targets": [[0], [1], [1], [0]],
            },
            "epochs": 2000,
            "batch_size": 4,
            "learning_rate": 0.05,
            "optimizer": {"kind": "adam"},
            "seed": 7,
        },
    },
    "dataset": {
        "summary": "A stored dataset, with a validation split and early stopping",
        "value": {
            "dataset": "xor",
            "epochs": 100,
            "batch_size": 2,
            "learning_rate": 0.1,
            "validation_split": 0.25,
            "patience": 10,
            "restore_best": True,
        },
    },
}


def public(job: JobRecord) -> JobPublic:
    config, progress = job.config, job.progress
    checkpoint = None
    if job.checkpoint is not None:
        checkpoint = CheckpointPublic(
            epoch=job.checkpoint["epoch"], step=job.checkpoint["step"], version=job.version
        )
    return JobPublic.model_validate(
        {
            "id": job.id,
            "model": job.model,
            "state": job.state,
            "dataset": job.dataset,
            "rows": config["rows"],
            "epochs": config["epochs"],
            "batch_size": config["batch_size"],
            "learning_rate": config["learning_rate"],
            "optimizer": config["optimizer"],
            "seed": config["seed"],
            "validation_split": config["validation_split"],
            "patience": config["patience"],
            "restore_best": config.get("restore_best", False),
            "steps_per_epoch": config["steps_per_epoch"],
            "total_steps": config["total_steps"],
            "epoch": progress.get("epoch", 0),
            "step": progress.get("step", 0),
            "loss": progress.get("loss"),
            "best_loss": progress.get("best_loss"),
            "validation_loss": progress.get("validation_loss"),
            # Kept with a checkpoint's progress, an estimate means nothing once the job stops.
            "eta_seconds": progress.get("eta_seconds")
            if job.state in ("running", "succeeded")
            else None,
            "stopped_early": progress.get("stopped_early", False),
            "best": progress.get("best"),
            "restored_best": progress.get("restored_best", False),
            "version": job.version,
            "checkpoint": checkpoint,
            "cancel_requested": job.cancel_requested,
            "error": job.error,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "heartbeat_at": job.heartbeat_at,
        }
    )


def _accepted(job: JobRecord, response: Response) -> JobPublic:
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return public(job)


@router.post(
    "/v1/models/{name}/train",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a training job",
    description="Train the model in the background for `epochs` epochs of shuffled "
    "mini-batches (one optimizer step each) of a stored dataset or of data sent inline. "
    "Answers 202 with the queued job and `Location: /v1/jobs/{id}`. The job commits a new "
    "model version at the end of every epoch (and every `BACKPROP_JOB_CHECKPOINT_STEPS` "
    "steps if set), with the optimizer state and the job's position, so that it can resume "
    "after a crash. With `patience` it stops early, and by default (`restore_best`) ends "
    "with a copy of its best epoch's version. While it runs, other writes to the model get "
    "409 naming the job.",
    responses=problem_responses(400, 404, 409, 413, 422, 507),
)
async def train_model(
    name: NamePath,
    body: Annotated[TrainRequest, Body(openapi_examples=TRAIN_EXAMPLES)],
    jobs: JobsDep,
    response: Response,
) -> JobPublic:
    if isinstance(body.dataset, InlineDataset):
        dataset: str | Dataset = await jobs.parse_rows(
            body.dataset.inputs, body.dataset.targets, "/dataset"
        )
    else:
        dataset = body.dataset
    spec = TrainSpec(
        dataset=dataset,
        epochs=body.epochs,
        batch_size=body.batch_size,
        learning_rate=body.learning_rate,
        optimizer=None
        if body.optimizer is None
        else specs.optimizer_from_dict(body.optimizer.model_dump()),
        seed=body.seed,
        validation_split=body.validation_split,
        patience=body.patience,
        restore_best=body.restore_best,
    )
    return _accepted(await jobs.train(name, spec), response)


@router.get(
    "/v1/jobs",
    summary="List jobs",
    description="Jobs, newest first, a page at a time; `?model=` keeps one model's. Pass the "
    "`next_cursor` of a page as `cursor` to get the next.",
    responses=problem_responses(422),
)
async def list_jobs(
    jobs: JobsDep,
    limit: Annotated[int, per_page("Jobs")] = 50,
    cursor: CursorQuery = None,
    model: Annotated[
        StorableText | None, Query(max_length=64, description="Only this model's.")
    ] = None,
) -> JobList:
    records, total = await jobs.page_jobs(limit + 1, cursor, model)
    items, next_cursor = page(records, limit, lambda r: r.id)
    return JobList(items=[public(r) for r in items], total=total, next_cursor=next_cursor)


@router.get(
    "/v1/jobs/{job_id}",
    summary="Get a job",
    description="The job's state (`queued`, `running`, `succeeded`, `failed`, `cancelled` or "
    "`interrupted`), its progress (completed `epoch` and `step`, latest `loss`, `best_loss` "
    "and the `best` epoch, `validation_loss`, `eta_seconds`) and its last checkpoint "
    "(`version`). A cancelled or interrupted job reports the progress of that checkpoint, "
    "where a resumed job continues.",
    responses=problem_responses(404),
)
async def get_job(job_id: JobIdPath, jobs: JobsDep) -> JobPublic:
    return public(await jobs.job(job_id))


@router.post(
    "/v1/jobs/{job_id}/cancel",
    summary="Cancel a job",
    description="A queued or interrupted job is cancelled at once; a running one stops before "
    "its next step (`cancel_requested` until then). The model keeps the job's last checkpoint, "
    "and the job then reports that checkpoint's `epoch`, `step` and losses. Cancelling a "
    "cancelled job changes nothing; an ended one gets 409.",
    responses=problem_responses(404, 409, 507),
)
async def cancel_job(job_id: JobIdPath, jobs: JobsDep) -> JobPublic:
    return public(await jobs.cancel(job_id))


@router.post(
    "/v1/jobs/{job_id}/resume",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Resume a job",
    description="Continue an interrupted (or cancelled) job from its last checkpoint, on this "
    "replica. It ends with the parameters an uninterrupted run would have had, bit for bit. "
    "409 if the job is in another state, if another job trains the model, or if the model "
    "has changed since the checkpoint.",
    responses=problem_responses(404, 409, 507),
)
async def resume_job(job_id: JobIdPath, jobs: JobsDep, response: Response) -> JobPublic:
    return _accepted(await jobs.resume(job_id), response)


# One event of the stream (OpenAPI 3.1 describes a text/event-stream by the schema of an event).
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event's number."},
        "event": {"type": "string", "enum": ["state", "progress", "end"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "The job's progress as JSON: job, state, version, epoch, step, "
            "loss, best_loss, validation_loss, eta_seconds, stopped_early, best, "
            "restored_best (and error).",
        },
        "retry": {"type": "integer", "description": "Reconnection delay, in milliseconds."},
    },
}


@router.get(
    "/v1/jobs/{job_id}/events",
    summary="Follow a job's progress (Server-Sent Events)",
    description="A `text/event-stream` of the job's events: `state` (queued, running), "
    "`progress` (every checkpoint: epoch, step, losses, version) and `end` (the job stopped: "
    "succeeded, failed, cancelled or interrupted), each with an `id:` and the job's progress "
    "as JSON `data:`. The stream ends after the `end` event. A client that reconnects with "
    "`Last-Event-ID` (or `?after=`) gets the events after that one, replayed from storage.",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
            "description": "The events, until the job stops running.",
        },
        **problem_responses(400, 404, 422),
    },
)
async def job_events(
    job_id: JobIdPath,
    jobs: JobsDep,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Send the events after this one."),
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_INTEGER, description="Send the events after this one.")
    ] = None,
) -> StreamingResponse:
    start = after or 0
    if last_event_id is not None and last_event_id.strip():
        event = decimal(last_event_id)
        if event is None:
            raise MalformedHeaderValue(
                f"Last-Event-ID must be an event id (a number from 0 to {MAX_INTEGER}), got "
                f"{shown(last_event_id)}"
            )
        start = event
    stream = await jobs.events(job_id, start)
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/v1/models/{name}/history",
    summary="A model's training history",
    description="One entry per epoch trained by jobs: the epoch's loss, validation loss and "
    "the model version it committed, oldest first, a page at a time.",
    responses=problem_responses(404, 422),
)
async def get_history(
    name: NamePath,
    jobs: JobsDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Entries per page.")] = 100,
    cursor: Annotated[
        int | None,
        Query(ge=0, le=2**63 - 1, description="`next_cursor` of the previous page."),
    ] = None,
) -> HistoryList:
    entries = await jobs.history(name, limit + 1, cursor)
    page = entries[:limit]
    return HistoryList(
        model=name,
        items=[
            HistoryEntryPublic(
                seq=e.seq,
                job=e.job,
                epoch=e.data["epoch"],
                step=e.data["step"],
                loss=e.data["loss"],
                validation_loss=e.data["validation_loss"],
                version=e.version,
                created_at=e.created_at,
            )
            for e in page
        ],
        next_cursor=page[-1].seq if len(entries) > limit else None,
    )
