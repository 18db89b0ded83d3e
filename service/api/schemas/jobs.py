"""Datasets, training jobs and a model's training history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from service.api.schemas.common import (
    Batch,
    Body,
    LearningRate,
    Out,
    at_most,
    name_rule,
)
from service.api.schemas.networks import OptimizerSpec

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_EPOCHS = 1_000_000


DatasetName = Annotated[str, *name_rule("dataset", "xor")]


class DatasetCreate(Body):
    """A dataset as JSON rows: one row of targets per row of inputs."""

    name: DatasetName
    inputs: Batch
    targets: Batch


class DatasetPublic(Out):
    """A stored dataset (without its rows: `GET /v1/datasets/{name}/data` has them)."""

    name: str
    rows: int
    input_columns: int
    target_columns: int
    dtype: Literal["float64", "float32"]
    source: Literal["json", "csv", "npz", "npy"] = Field(description="How it was uploaded.")
    size_bytes: int = Field(description="Bytes stored, arrays and their header.")
    digest: str = Field(description="SHA-256 of the stored arrays.")
    created_at: datetime


class DatasetList(Out):
    """A page of datasets ordered by name; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[DatasetPublic]
    total: int
    next_cursor: str | None


class DatasetData(Out):
    """A dataset's rows, exactly as stored."""

    name: str
    inputs: list[list[float]]
    targets: list[list[float]]


class InlineDataset(Body):
    """Training data sent with the job (stored with it, not as a dataset)."""

    inputs: Batch
    targets: Batch


def _dataset_kind(value: Any) -> str:
    return "by-name" if isinstance(value, str) else "inline"


class TrainRequest(Body):
    """Train a model on a dataset for some epochs of shuffled mini-batches."""

    dataset: Annotated[
        Annotated[DatasetName, Tag("by-name")] | Annotated[InlineDataset, Tag("inline")],
        Discriminator(_dataset_kind),
    ] = Field(description='A stored dataset\'s name, or `{"inputs", "targets"}` inline.')
    epochs: int = Field(strict=True, ge=1, le=MAX_EPOCHS, examples=[100])
    batch_size: Annotated[
        int,
        Field(
            strict=True,
            ge=1,
            description="Rows per mini-batch (the last batch of an epoch may be smaller).",
            examples=[4],
        ),
        *at_most("max_batch_rows"),
    ]
    learning_rate: LearningRate
    optimizer: OptimizerSpec | None = Field(
        None,
        description="Kind and hyper-parameters; defaults to the model's optimizer. Its "
        "`learning_rate` is replaced by the job's.",
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=2**63 - 1,
        description="Seed of the shuffling (numpy PCG64); drawn and reported when absent. The "
        "same seed, model and data give bit-identical parameters.",
    )
    validation_split: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Fraction of the rows held out to compute `validation_loss` after every epoch.",
    )
    patience: int | None = Field(
        None,
        ge=1,
        le=MAX_EPOCHS,
        description="Stop early after this many epochs in a row without a new `best_loss` "
        "(the validation loss if there is a validation split, else the epoch's loss).",
    )
    restore_best: bool = Field(
        True,
        description="With `patience`: when the job succeeds (stopped early or not) and its "
        "best epoch is not its last, it commits one more version, a copy of the best epoch's "
        "(parameters and optimizer state), so that the model ends at `best_loss`. `false` "
        "leaves the model at the last epoch's parameters. No effect without `patience`.",
    )


class CheckpointPublic(Out):
    """Where the job's last checkpoint is: the model version it committed and the position."""

    epoch: int
    step: int
    version: int


class BestPublic(Out):
    """The epoch that reached `best_loss`: its end and the model version it committed."""

    epoch: int
    step: int
    version: int


class JobPublic(Out):
    """A training job and its progress.

    `epoch` and `step` count completed epochs and optimizer steps; `loss` is the mean loss of
    the current epoch so far (of the last one at its end), `best_loss` the lowest loss that
    `patience` watches, reached at `best`, `version` the model version of the latest
    checkpoint (the one the job started from before its first). A job stopped short of its
    end (`cancelled`, `interrupted`) reports the progress of that checkpoint: the model keeps
    it, and a resumed job continues from there (the steps it ran after it are run again).
    """

    id: str
    model: str
    state: JobState
    dataset: str | None = Field(description="The dataset's name; null for data sent inline.")
    rows: int
    epochs: int
    batch_size: int
    learning_rate: float
    optimizer: OptimizerSpec
    seed: int
    validation_split: float | None
    patience: int | None
    restore_best: bool = Field(
        False,
        description="As asked: with `patience`, whether the job ends at its best epoch's "
        "parameters (see `restored_best`).",
    )
    steps_per_epoch: int
    total_steps: int
    epoch: int
    step: int
    loss: float | None
    best_loss: float | None
    validation_loss: float | None
    eta_seconds: float | None = Field(description="Estimated seconds to the end, while running.")
    stopped_early: bool
    best: BestPublic | None = Field(
        None, description="The epoch that reached `best_loss`; null before the first ends."
    )
    restored_best: bool = Field(
        False,
        description="Whether the job's last version (`version`) is a copy of `best.version`, "
        "committed at its end by `restore_best`. false if its best epoch was its last, and "
        "if a resumed job found the best epoch's version no longer kept "
        "(`BACKPROP_KEEP_VERSIONS`).",
    )
    version: int
    checkpoint: CheckpointPublic | None
    cancel_requested: bool
    error: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None


class JobList(Out):
    """A page of jobs, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[JobPublic]
    total: int
    next_cursor: str | None


class HistoryEntryPublic(Out):
    """One epoch of a job on the model: its losses and the version it committed."""

    seq: int
    job: str
    epoch: int
    step: int
    loss: float
    validation_loss: float | None
    version: int
    created_at: datetime


class HistoryList(Out):
    """A model's training history, oldest first; pass ``next_cursor`` as ``cursor``."""

    model: str
    items: list[HistoryEntryPublic]
    next_cursor: int | None
