"""Prometheus metrics at ``GET /metrics``: requests by route template and status, their
latency, train-steps, and the models in the registry.

With several worker processes every worker writes its counters to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, which ``backprop-service
serve --workers N`` sets up), and the worker that answers a scrape sums them all; without that
variable the counters live in the process. Gauges of the registry's contents are read from the
registry at scrape time, so they are right whichever worker answers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import get_args

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount
from starlette.types import Scope

from service.registry import JobState, RegistryError
from service.store import ModelStore

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Compute on small networks takes well under a millisecond; a large batch, seconds.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0
)  # fmt: skip
UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The template of the route that served the request (``/v1/models/{name}``), never the
    raw path, so that labels and log fields stay few and carry no client data."""
    route = scope.get("route")
    if isinstance(route, Mount):
        return f"{route.path}/{{path}}"
    path = getattr(route, "path_format", None)
    if isinstance(path, str):
        return path
    # Some FastAPI versions name no route for a mount, but move its prefix into root_path.
    mounted = str(scope.get("root_path", ""))[len(str(scope.get("app_root_path", ""))) :]
    if scope.get("endpoint") is not None and mounted:
        return f"{mounted}/{{path}}"
    return UNMATCHED


class Metrics:
    """The metrics of one app. In multiprocess mode the values live in files shared by the
    workers and the exposition registry reads them from there."""

    def __init__(self, store: ModelStore) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        self.registry = CollectorRegistry()
        if self.multiprocess_dir:
            multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
                self.registry, path=self.multiprocess_dir
            )
            owner: CollectorRegistry | None = None  # counted in the files, not twice
        else:
            owner = self.registry
        self.requests = Counter(
            "backprop_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=owner,
        )
        self.latency = Histogram(
            "backprop_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by method, route "
            "template and status.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=owner,
        )
        self.in_progress = Gauge(
            "backprop_http_requests_in_progress",
            "HTTP requests being served.",
            registry=owner,
            multiprocess_mode="livesum",
        )
        self.train_steps = Counter(
            "backprop_train_steps",
            "Optimizer steps: train-steps answered with success (`stored` made a new model "
            "version, `stateless` returned updated parameters) and the steps training jobs ran "
            "(`job`; a resumed job runs the steps after its last checkpoint again).",
            ["kind"],
            registry=owner,
        )
        for kind in ("stored", "stateless", "job"):
            self.train_steps.labels(kind)
        self.count_job_step = self.train_steps.labels("job").inc
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.registry.register(RegistryCollector(store))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # labels() costs a lock and a lookup; the label sets are few
            labels = (method, route, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if method == "POST" and status == 200 and route.endswith("/train-step"):
            self.train_steps.labels("stored" if "{name}" in route else "stateless").inc()

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class RegistryCollector:
    """Gauges read from the registry at scrape time: whether it answers and has room, the
    models, and the training jobs by state (of every replica: they share the registry)."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store

    def describe(self) -> Iterable[Metric]:
        return []  # no collection on registration: the registry may be down at start

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "backprop_registry_up", "1 when the model registry answered this scrape, else 0."
        )
        try:
            count = self.store.registry.count()
        except RegistryError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "backprop_registry_storage_full",
            "1 from a write this process saw refused because the registry's storage is full "
            "until new data is stored again (as /readyz's `storage`), else 0.",
            value=float(self.store.registry.storage_state() == "full"),
        )
        yield GaugeMetricFamily("backprop_models", "Models in the registry.", value=float(count))
        try:
            by_state = self.store.registry.jobs.count_jobs_by_state()
        except RegistryError:
            return
        jobs = GaugeMetricFamily(
            "backprop_jobs", "Training jobs in the registry, by state.", labels=["state"]
        )
        for state in get_args(JobState):
            jobs.add_metric([state], float(by_state.get(state, 0)))
        yield jobs


router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="The service's metrics in the Prometheus text format (OpenMetrics when asked "
    "for by `Accept`): `backprop_http_requests_total` and "
    "`backprop_http_request_duration_seconds` by method, route template and status, "
    "`backprop_train_steps_total` (by `kind`: `stored` and `stateless` train-steps, the "
    "steps of training `job`s), `backprop_models`, `backprop_jobs` (by state), "
    "`backprop_registry_up` and `backprop_registry_storage_full`. Summed over "
    "every worker process.",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    collected: Metrics = request.app.state.metrics
    body, content_type = await run_in_threadpool(
        collected.exposition, request.headers.get("accept")
    )
    return Response(body, media_type=content_type)


def install(app: FastAPI, store: ModelStore) -> Metrics:
    """Add the ``/metrics`` route; the app keeps the metrics in its state. The request log's
    middleware (:class:`service.api.logging.RequestLog`) counts and times the requests."""
    collected = Metrics(store)
    app.state.metrics = collected
    app.include_router(router)
    return collected


@contextmanager
def multiprocess_dir(workers: int) -> Iterator[str | None]:
    """Set up prometheus-client's multiprocess mode for a server of ``workers`` processes.

    A folder named by ``PROMETHEUS_MULTIPROC_DIR`` is used, emptied of the files of an earlier
    run (they would be added in); without one, and with more than one worker, a temporary
    folder is made for the run and removed after it. One worker without the variable keeps its
    metrics in memory."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        yield given
        return
    if workers <= 1:
        yield None
        return
    made = tempfile.mkdtemp(prefix="backprop-metrics-")
    os.environ[MULTIPROC_ENV] = made
    try:
        yield made
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(made, ignore_errors=True)


__all__ = ["Metrics", "install", "multiprocess_dir", "route_template"]
