"""The application factory: wires settings, registry, store, routes and error handling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from service import __version__
from service.api import auth, docs, example_answers, fastlane, metrics, playground, problems
from service.api.budget import BudgetedStore
from service.api.logging import RequestLog
from service.api.middleware import BodyLimit
from service.api.routes import compute, datasets, health, jobs, learn, models, stateless, v2
from service.api.schemas.common import LIMIT_KEY
from service.jobs.store import open_jobs
from service.operations import Operations
from service.operations.cost import Limits as WorkLimits
from service.registry import open_registry
from service.settings import Limits, Settings
from service.workers import WorkerPool

DESCRIPTION = """
The mathematics of feed-forward neural networks over HTTP: describe a network in JSON, store it,
and ask for its outputs (forward, with every node's net and out), its loss and gradient
(backpropagation, with every delta), and gradient-descent steps that make new versions.

Errors are RFC 9457 problem details (`application/problem+json`). Every model has a `version`;
responses about a model carry `ETag: "<version>"` and writes accept `If-Match`.

The examples reproduce the worked example of the seed blog: a 2-3-3-1 network, one forward pass,
its backpropagation and one SGD step with learning rate 0.01.

For learners, the [playground](playground) is an interactive page on this API: it draws the
seed network, runs forward, backward and SGD steps on a scratch copy of a model, trains it while
drawing the loss, and explains any weight's gradient by the chain rule.
"""

TAGS = [
    {"name": "models", "description": "The model registry: networks, parameters and versions."},
    {"name": "compute", "description": "Forward, gradient and train-step on a stored model."},
    {"name": "stateless", "description": "The same computations on an inline network."},
    {
        "name": "learn",
        "description": "For learners: every derivative explained by the chain rule, the network "
        "and its loss drawn as SVG, and the worked example as a Markdown walkthrough.",
    },
    {"name": "operations", "description": "Health checks and metrics."},
    {
        "name": "datasets",
        "description": "Training data stored by name: JSON rows, or CSV, .npz and .npy uploads.",
    },
    {
        "name": "jobs",
        "description": "Training jobs: epochs of shuffled mini-batches in the background, with "
        "checkpoints (model versions), live progress as Server-Sent Events, cancellation, "
        "resumption after a crash, and the training history of a model.",
    },
    {
        "name": "inference",
        "description": "The Open Inference Protocol (V2) of KServe and Triton, with the binary "
        "tensor data extension: one input `input` [-1, inputs], one output `output`.",
    },
]


def operation_id(route: APIRoute) -> str:
    """Stable ids ``{tag}-{function}``: ``models-create_model``."""
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new application on its own registry, opened from ``settings.registry``."""
    settings = settings or Settings()
    registry = open_registry(settings.registry, keep_versions=settings.keep_versions)
    limits = WorkLimits(
        max_seconds=settings.max_compute_seconds,
        rate=settings.compute_rate,
        max_memory=settings.max_request_memory_bytes,
        max_answer=settings.max_answer_bytes,
    )
    store = BudgetedStore(
        registry,
        cache_models=settings.cache_models,
        cache_bytes=settings.cache_bytes,
        compute_threads=settings.compute_threads,
        compute_nice=settings.compute_nice,
        compute_idle=settings.compute_idle,
        workers=WorkerPool(
            settings.compute_processes,
            settings.compute_nice,
            settings.compute_process_idle,
            2 * settings.max_request_memory_bytes + settings.max_answer_bytes,
        )
        if settings.compute_processes
        else None,
        limits=limits,
    )
    job_store = open_jobs(registry, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await job_store.start()
        yield
        await job_store.stop()
        store.close()

    app = FastAPI(
        title="backprop-service",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        generate_unique_id_function=operation_id,
        separate_input_output_schemas=False,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # The service exports its own Prometheus metrics; FastAPI's OpenTelemetry hooks would
        # only look for providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.store = store
    app.state.ops = Operations(store, limits, settings.compute_process_seconds)
    app.state.jobs = job_store
    problems.install(app)
    for module in (models, compute, learn, stateless, health, v2, datasets, jobs):
        app.include_router(module.router)
    fastlane.install(app)  # innermost: every middleware below applies to it
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, limits=_size_limits(settings))
    docs.install(app)
    playground.install(app)
    auth.install(app, settings, auth.load_keys(settings))
    collected = metrics.install(app, store)
    job_store.runner.count_steps = collected.count_job_step
    # Outermost: every response gets its X-Request-ID, every request is counted and timed.
    app.add_middleware(RequestLog, access_log=settings.access_log, metrics=collected)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _size_limits(settings: Settings) -> Limits:
    """The app's size limits alone (a small object to hand to threads and worker processes)."""
    return Limits.model_construct(**{name: getattr(settings, name) for name in Limits.model_fields})


def _write_limits(node: Any, limits: Limits) -> None:
    """The app's ``limits`` written into the spec where a schema names one (``LIMIT_KEY``)."""
    if isinstance(node, list):
        for item in node:
            _write_limits(item, limits)
    elif isinstance(node, dict):
        name = node.pop(LIMIT_KEY, None)
        if name is not None:
            value = getattr(limits, name)
            node["maxItems" if node.get("type") == "array" else "maximum"] = value
            if "description" in node:
                node["description"] = node["description"].replace("{limit}", str(value))
        for item in node.values():
            _write_limits(item, limits)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's spec, with every error response documented as the problem+json it is, and
    the seed model's real answers as the response examples (:mod:`example_answers`)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    spec = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        separate_input_output_schemas=app.separate_input_output_schemas,
    )
    problem = {"$ref": "#/components/schemas/Problem"}
    for operations in spec["paths"].values():
        for operation in operations.values():
            if "requestBody" in operation:  # refused by bodies.check_body
                responses = operation["responses"]
                for status in ("400", "415"):
                    responses.setdefault(
                        status, {"description": problems.DESCRIPTIONS[int(status)]}
                    )
                operation["responses"] = dict(sorted(responses.items()))
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    response["content"] = {problems.PROBLEM_JSON: {"schema": problem}}
                    if status == "422":
                        response["description"] = problems.DESCRIPTIONS[422]
    schemas = spec["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    _write_limits(spec, app.state.settings)
    example_answers.document(spec)
    auth.document(spec, app.state.settings)
    app.openapi_schema = spec
    return spec
