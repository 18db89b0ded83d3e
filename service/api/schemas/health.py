"""Liveness and readiness answers."""

from __future__ import annotations

from pydantic import Field

from service.api.schemas.common import Out
from service.registry import StorageState


class Health(Out):
    status: str


class Readiness(Health):
    """Ready: the registry answers; and whether its storage has room for writes."""

    storage: StorageState = Field(
        description="`full` from a write this process saw refused because the registry's "
        "storage is full (such writes get 507) until it stores new data again (a model, "
        "version, dataset, job or checkpoint); else `ok`. Reads keep working either way."
    )
