"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from service.api.deps import StoreDep
from service.api.problems import problem_responses
from service.api.schemas.health import Health, Readiness

router = APIRouter(tags=["operations"])


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
