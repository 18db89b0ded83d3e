"""RFC 9457 problem details, and the one place where exceptions become HTTP responses."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response

from service.core import CoreError, NumericOverflow
from service.jobs.errors import DatasetTooLarge, InvalidDataset, UnsupportedMediaType
from service.operations import ComputeBudgetExceeded, WorkTooLarge
from service.registry import (
    DatasetExists,
    DatasetInUse,
    DatasetNotFound,
    JobNotFound,
    JobStateConflict,
    ModelBusy,
    ModelChanged,
    ModelExists,
    ModelNotFound,
    RegistryError,
    RegistryUnavailable,
    VersionConflict,
    VersionNotFound,
)

log = logging.getLogger("service")

PROBLEM_JSON = "application/problem+json"


class ProblemError(BaseModel):
    """One invalid value: ``pointer`` (RFC 6901) into the body, or a ``parameter`` and where
    it is (``in``: query, path or header)."""

    pointer: str | None = None
    parameter: str | None = None
    in_: str | None = Field(None, alias="in")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem. ``error`` repeats ``detail`` for Open Inference Protocol clients."""

    type: str
    title: str
    status: int
    detail: str
    error: str
    instance: str | None = None
    errors: list[ProblemError] | None = None


class BodyTooLarge(HTTPException):
    """The request body exceeds the configured limit.

    An ``HTTPException`` because FastAPI re-raises those from body reading unchanged, where any
    other exception would become a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")
        self.limit = limit


class MalformedHeaderValue(Exception):
    """A header such as If-Match or Last-Event-ID is malformed (400)."""


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: Sequence[dict[str, str]] | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """A problem response; `extra` adds members (RFC 9457 extensions such as ``job``)."""
    body: dict[str, Any] = {
        "type": f"/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "error": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return Response(
        json.dumps(body, allow_nan=False, separators=(",", ":")),
        status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


# Tags of the discriminated unions: pydantic puts them in an error's location, a client's
# JSON pointer must not contain them.
_UNION_TAGS = {"layered", "named", "sgd", "adam", "by-name", "inline"}


def _pointer(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc if str(p) not in _UNION_TAGS]
    return "".join(f"/{p.replace('~', '~0').replace('/', '~1')}" for p in parts)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        message = str(err.get("msg", "invalid value"))
        if loc and loc[0] == "body":
            errors.append({"pointer": _pointer(loc[1:]), "message": message})
        elif loc:
            errors.append({"parameter": str(loc[-1]), "in": str(loc[0]), "message": message})
        else:
            errors.append({"pointer": "", "message": message})
    return errors


def _summary(errors: list[dict[str, str]]) -> str:
    first = errors[0]
    where = first.get("pointer") or first.get("parameter") or "/"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['message']}{more}"


async def _stale_if_match(request: Request) -> VersionConflict | None:
    """The conflict a conditional write on a model would meet, judged from its headers alone."""
    name = request.path_params.get("name")
    header = request.headers.get("if-match", "").strip().removeprefix("W/").strip('"')
    if request.method == "GET" or not name or not (header.isascii() and header.isdigit()):
        return None
    try:
        current = await request.app.state.store.current_version(name)
    except RegistryError:
        return None
    return VersionConflict(name, int(header), current) if current != int(header) else None


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into a problem response."""

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> Response:
        invalid_json = [e for e in exc.errors() if e.get("type") == "json_invalid"]
        if invalid_json and (stale := await _stale_if_match(request)) is not None:
            # FastAPI parses JSON before dependencies run; If-Match still comes first.
            return await conflict(request, stale)
        if invalid_json:
            reason = invalid_json[0].get("ctx", {}).get("error", "")
            position = invalid_json[0].get("loc", ("body", 0))[-1]
            detail = f"the request body is not valid JSON ({reason or 'decode error'} at "
            detail += f"character {position})"
            return problem(
                400, "malformed-body", "Malformed request body", detail, None, request.url.path
            )
        errors = _validation_errors(exc)
        return problem(
            422,
            "invalid-input",
            "Invalid input",
            _summary(errors),
            errors,
            request.url.path,
        )

    @app.exception_handler(CoreError)
    async def core_error(request: Request, exc: CoreError) -> Response:
        if isinstance(exc, NumericOverflow):
            slug, title = "numeric-overflow", "Numeric overflow"
        else:
            slug, title = "invalid-input", "Invalid input"
        errors = [{"pointer": exc.pointer, "message": exc.message}]
        return problem(422, slug, title, exc.message, errors, request.url.path)

    @app.exception_handler(ModelNotFound)
    async def not_found(request: Request, exc: ModelNotFound) -> Response:
        return problem(404, "model-not-found", "Model not found", str(exc), None, request.url.path)

    @app.exception_handler(VersionNotFound)
    async def version_not_found(request: Request, exc: VersionNotFound) -> Response:
        return problem(
            404, "version-not-found", "Version not found", str(exc), None, request.url.path
        )

    @app.exception_handler(ModelExists)
    async def exists(request: Request, exc: ModelExists) -> Response:
        return problem(409, "name-taken", "Name taken", str(exc), None, request.url.path)

    @app.exception_handler(VersionConflict)
    async def conflict(request: Request, exc: VersionConflict) -> Response:
        return problem(
            412,
            "precondition-failed",
            "Precondition failed",
            f"If-Match expected version {exc.expected} of model '{exc.name}', but its current "
            f"version is {exc.actual}",
            None,
            request.url.path,
            headers={"ETag": f'"{exc.actual}"'},
        )

    @app.exception_handler(MalformedHeaderValue)
    async def bad_precondition(request: Request, exc: MalformedHeaderValue) -> Response:
        return problem(
            400, "malformed-header", "Malformed header", str(exc), None, request.url.path
        )

    @app.exception_handler(RegistryUnavailable)
    async def unavailable(request: Request, exc: RegistryUnavailable) -> Response:
        log.warning("registry unavailable: %s", exc)
        return problem(
            503,
            "registry-unavailable",
            "Registry unavailable",
            "the model registry cannot be reached; try again shortly",
            None,
            request.url.path,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(RegistryError)
    async def registry_error(request: Request, exc: RegistryError) -> Response:
        log.error("registry error: %s", exc)
        return problem(503, "registry-error", "Registry error", str(exc), None, request.url.path)

    install_jobs(app)

    @app.exception_handler(ComputeBudgetExceeded)
    async def over_budget(request: Request, exc: ComputeBudgetExceeded) -> Response:
        return problem(
            422,
            "compute-budget-exceeded",
            "Compute budget exceeded",
            str(exc),
            None,
            request.url.path,
        )

    @app.exception_handler(WorkTooLarge)
    async def work_too_large(request: Request, exc: WorkTooLarge) -> Response:
        return problem(
            413,
            "work-too-large",
            "Work too large",
            str(exc),
            None,
            request.url.path,
            extra={"estimate": exc.estimate, "limit": exc.limit},
        )

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> Response:
        return problem(
            413,
            "body-too-large",
            "Request body too large",
            f"the request body exceeds the limit of {exc.limit} bytes (BACKPROP_MAX_BODY_BYTES)",
            None,
            request.url.path,
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        titles = {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}
        title = titles.get(exc.status_code, "HTTP error")
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no resource at {request.url.path}"
        slug = title.lower().replace(" ", "-")
        return problem(
            exc.status_code, slug, title, detail, None, request.url.path, dict(exc.headers or {})
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "internal-error",
            "Internal error",
            "the server failed to handle this request; it has been logged",
            None,
            request.url.path,
        )


def install_jobs(app: FastAPI) -> None:
    """The handlers of the errors of datasets and training jobs."""

    @app.exception_handler(InvalidDataset)
    async def invalid_dataset(request: Request, exc: InvalidDataset) -> Response:
        errors = [{"pointer": exc.pointer, "message": exc.message}]
        return problem(422, "invalid-input", "Invalid input", exc.message, errors, request.url.path)

    @app.exception_handler(DatasetTooLarge)
    async def dataset_too_large(request: Request, exc: DatasetTooLarge) -> Response:
        return problem(
            413, "dataset-too-large", "Dataset too large", str(exc), None, request.url.path
        )

    @app.exception_handler(UnsupportedMediaType)
    async def unsupported_media_type(request: Request, exc: UnsupportedMediaType) -> Response:
        return problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            str(exc),
            None,
            request.url.path,
            headers={"Accept-Post": ", ".join(exc.supported)},
        )

    @app.exception_handler(DatasetNotFound)
    async def dataset_not_found(request: Request, exc: DatasetNotFound) -> Response:
        return problem(
            404, "dataset-not-found", "Dataset not found", str(exc), None, request.url.path
        )

    @app.exception_handler(DatasetExists)
    async def dataset_exists(request: Request, exc: DatasetExists) -> Response:
        return problem(409, "name-taken", "Name taken", str(exc), None, request.url.path)

    @app.exception_handler(DatasetInUse)
    async def dataset_in_use(request: Request, exc: DatasetInUse) -> Response:
        return problem(
            409,
            "dataset-in-use",
            "Dataset in use",
            str(exc),
            None,
            request.url.path,
            extra={"job": exc.job},
        )

    @app.exception_handler(JobNotFound)
    async def job_not_found(request: Request, exc: JobNotFound) -> Response:
        return problem(404, "job-not-found", "Job not found", str(exc), None, request.url.path)

    @app.exception_handler(ModelBusy)
    async def model_busy(request: Request, exc: ModelBusy) -> Response:
        return problem(
            409,
            "model-busy",
            "Model busy",
            str(exc),
            None,
            request.url.path,
            headers={"Link": f'</v1/jobs/{exc.job}>; rel="related"'},
            extra={"job": exc.job},
        )

    @app.exception_handler(ModelChanged)
    async def model_changed(request: Request, exc: ModelChanged) -> Response:
        return problem(
            409,
            "model-changed",
            "Model changed",
            str(exc),
            None,
            request.url.path,
            extra={"job": exc.job},
        )

    @app.exception_handler(JobStateConflict)
    async def job_state(request: Request, exc: JobStateConflict) -> Response:
        return problem(
            409,
            "job-state-conflict",
            "Job state conflict",
            str(exc),
            None,
            request.url.path,
            extra={"job": exc.job, "state": exc.state},
        )


DESCRIPTIONS = {
    400: "Malformed body or header",
    404: "Unknown model or version",
    409: "Name taken, or the model is being trained by a job (the body names it)",
    412: "If-Match does not match the current version",
    413: "Request body too large, or work whose estimated memory or answer would pass a limit",
    415: "Unsupported media type",
    422: "Invalid content (shapes, values, limits, non-finite numbers)",
    503: "Registry unavailable",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses (and always 422 and 503)."""
    return {
        s: {"model": Problem, "description": DESCRIPTIONS.get(s, "Error")}
        for s in sorted({*statuses, 422, 503})
    }


__all__ = [
    "PROBLEM_JSON",
    "BodyTooLarge",
    "MalformedHeaderValue",
    "Problem",
    "install",
    "problem",
    "problem_responses",
]
