"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from service.api.deps import StoreDep
from service.api.problems import problem_responses
from service.api.schemas.common import Out
from service.registry import StorageState

router = APIRouter(tags=["operations"])


class Health(Out):
    status: str


class Readiness(Health):
    """Ready: the registry answers; and whether its storage has room for writes."""

    storage: StorageState = Field(
        description="`full` from a write this process saw refused because the registry's "
        "storage is full (such writes get 507) until it stores new data again (a model, "
        "version, dataset, job or checkpoint); else `ok`. Reads keep working either way."
    )


@router.get(
    "/healthz",
    summary="Liveness",
    description="200 while the process serves requests; it does not touch the registry.",
)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Readiness",
    description="200 when the registry answers; 503 (a problem) while it cannot be reached, "
    "so that a load balancer sends requests to other replicas until it is back. A full "
    "storage leaves the replica ready, since reads work and the replicas share the storage; "
    '`storage` says `"full"` instead (writes get 507 until space is freed).',
    responses=problem_responses(503),
)
async def readyz(store: StoreDep) -> Readiness:
    await run_in_threadpool(store.registry.ping)
    return Readiness(status="ready", storage=store.registry.storage_state())
