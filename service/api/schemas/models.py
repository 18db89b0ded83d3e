"""The model registry's resources: create, read, list, parameters and versions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, model_validator

from service.api.schemas.common import MAX_INTEGER, Body, ModelName, Out
from service.api.schemas.networks import (
    InitPublic,
    InitSpec,
    LayeredParameters,
    NetworkSpec,
    OptimizerSpec,
    ParametersIn,
)

Tags = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=32)]


class ModelCreate(Body):
    """A new model: a network with given parameters, or parameters drawn by ``init``."""

    name: ModelName
    network: NetworkSpec
    parameters: ParametersIn | None = Field(
        None, description="Layered or named; when absent, drawn by `init`."
    )
    init: InitSpec | None = Field(
        None, description="When `parameters` is absent; defaults to xavier_uniform."
    )
    optimizer: OptimizerSpec | None = Field(
        None, description="Used by train-step; defaults to plain SGD with learning rate 0.01."
    )
    description: str | None = Field(None, max_length=2000)
    tags: Tags = Field(default_factory=list)

    @model_validator(mode="after")
    def _parameters_or_init(self) -> ModelCreate:
        if self.parameters is not None and self.init is not None:
            raise ValueError("give either parameters or init, not both")
        return self


class ModelPublic(Out):
    """A stored model. ``version`` is raised by every change of its parameters."""

    name: str
    version: int
    network: NetworkSpec
    optimizer: OptimizerSpec
    init: InitPublic | None = Field(
        description="The scheme and seed the parameters were drawn with, or null when given."
    )
    description: str | None
    tags: list[str]
    parameter_count: int
    created_at: datetime
    updated_at: datetime


class ModelList(Out):
    """A page of models ordered by name; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[ModelPublic]
    total: int
    next_cursor: str | None


class ParametersPublic(Out):
    """The parameters of one version of a model, layered or named."""

    model: str
    version: int
    parameters: LayeredParameters | dict[str, float]


class ParametersPut(Body):
    """New parameters (either notation). ``model`` and ``version``, as a GET returns them, may
    be sent back: ``model`` must then name this model and ``version`` is ignored (use
    ``If-Match`` for a precondition)."""

    model: str | None = None
    version: int | None = None
    parameters: ParametersIn


class VersionPublic(Out):
    version: int
    created_at: datetime
    reason: str


class VersionList(Out):
    """The kept versions of a model, newest first."""

    model: str
    version: int
    items: list[VersionPublic]


class RollbackRequest(Body):
    """Make a new version whose parameters (and optimizer state) equal those of ``version``."""

    version: int = Field(strict=True, ge=1, le=MAX_INTEGER)
