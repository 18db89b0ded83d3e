"""RFC 9457 problem details, and the one place where exceptions become HTTP responses."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response

from service.api.bodies import EmptyBody, UnsupportedBody
from service.api.headers import version_tag
from service.core import CoreError, NumericOverflow
from service.interop import MalformedContent, MalformedHeader, NotAcceptable, UnsupportedContent
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
    StorageFull,
    VersionConflict,
    VersionNotFound,
)
from service.workers import WorkerLost, WorkerOutOfMemory

log = logging.getLogger("service")

PROBLEM_JSON = "application/problem+json"
_LINE_COLUMN = re.compile(r"line \d+ column \d+")


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
    """The request body exceeds the configured limit (``declared``: as its Content-Length says,
    before any of it is read).

    An ``HTTPException`` because FastAPI re-raises those from body reading unchanged, where any
    other exception would become a 400."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")
        self.limit = limit
        self.declared = declared


class Unauthorized(Exception):
    """No valid API key (401); ``challenge`` is the ``WWW-Authenticate`` to send."""

    def __init__(self, detail: str, challenge: str) -> None:
        super().__init__(detail)
        self.challenge = challenge


class Forbidden(Unauthorized):
    """A valid key without the role an operation needs (403)."""


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
    expected = version_tag(request.headers.get("if-match", ""))
    if request.method == "GET" or not name or expected is None:
        return None
    try:
        current = await request.app.state.store.current_version(name)
    except RegistryError:
        return None
    return VersionConflict(name, expected, current) if current != expected else None


@dataclass(frozen=True)
class Kind:
    """How one class of exception is answered: its status, the slug of its ``type``, its title,
    and what of the exception goes into the problem (by default its message as the detail)."""

    status: int
    slug: str
    title: str
    detail: Callable[[Any], str] = str
    errors: Callable[[Any], list[dict[str, str]] | None] = lambda exc: None
    headers: Callable[[Any], dict[str, str] | None] = lambda exc: None
    extra: Callable[[Any], dict[str, Any] | None] = lambda exc: None
    log: Callable[[Any], None] | None = None


def _message(exc: Any) -> str:
    return str(exc.message)


def _pointed(exc: Any) -> list[dict[str, str]]:
    """The one invalid value an error with ``pointer`` and ``message`` names."""
    return [{"pointer": exc.pointer, "message": exc.message}]


def _job(exc: Any) -> dict[str, Any]:
    return {"job": exc.job}


def _http_title(status: int) -> str:
    return {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}.get(
        status, "HTTP error"
    )


def _http_detail(exc: HTTPException) -> str:
    return str(exc.detail)


# Every exception a request can meet, and its problem: the one place where exceptions become
# HTTP answers, whichever layer raised them (routes, the fast lane, codecs, auth, middleware).
# A class not listed gets the entry of its nearest listed base class.
PROBLEMS: dict[type[Exception], Kind] = {
    NumericOverflow: Kind(422, "numeric-overflow", "Numeric overflow", _message, _pointed),
    CoreError: Kind(422, "invalid-input", "Invalid input", _message, _pointed),
    InvalidDataset: Kind(422, "invalid-input", "Invalid input", _message, _pointed),
    ModelNotFound: Kind(404, "model-not-found", "Model not found"),
    VersionNotFound: Kind(404, "version-not-found", "Version not found"),
    DatasetNotFound: Kind(404, "dataset-not-found", "Dataset not found"),
    JobNotFound: Kind(404, "job-not-found", "Job not found"),
    ModelExists: Kind(409, "name-taken", "Name taken"),
    DatasetExists: Kind(409, "name-taken", "Name taken"),
    DatasetInUse: Kind(409, "dataset-in-use", "Dataset in use", extra=_job),
    ModelBusy: Kind(
        409,
        "model-busy",
        "Model busy",
        headers=lambda e: {"Link": f'</v1/jobs/{e.job}>; rel="related"'},
        extra=_job,
    ),
    ModelChanged: Kind(409, "model-changed", "Model changed", extra=_job),
    JobStateConflict: Kind(
        409,
        "job-state-conflict",
        "Job state conflict",
        extra=lambda e: {"job": e.job, "state": e.state},
    ),
    VersionConflict: Kind(
        412,
        "precondition-failed",
        "Precondition failed",
        lambda e: (
            f"If-Match expected version {e.expected} of model '{e.name}', but its "
            f"current version is {e.actual}"
        ),
        headers=lambda e: {"ETag": f'"{e.actual}"'},
    ),
    MalformedHeaderValue: Kind(400, "malformed-header", "Malformed header"),
    MalformedHeader: Kind(400, "malformed-header", "Malformed header", _message),
    MalformedContent: Kind(
        400,
        "malformed-body",
        "Malformed request body",
        _message,
        lambda e: _pointed(e) if e.pointer else None,
    ),
    UnsupportedContent: Kind(422, "unsupported-content", "Unsupported content", _message, _pointed),
    NotAcceptable: Kind(406, "not-acceptable", "Not acceptable", _message),
    UnsupportedMediaType: Kind(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        headers=lambda e: {"Accept-Post": ", ".join(e.supported)},
    ),
    ComputeBudgetExceeded: Kind(422, "compute-budget-exceeded", "Compute budget exceeded"),
    WorkTooLarge: Kind(
        413,
        "work-too-large",
        "Work too large",
        extra=lambda e: {"estimate": e.estimate, "limit": e.limit},
    ),
    WorkerOutOfMemory: Kind(
        413,
        "work-too-large",
        "Work too large",
        extra=lambda e: {"limit": e.limit},
        log=lambda e: log.warning("a computation passed a worker's memory limit: %s", e),
    ),
    WorkerLost: Kind(
        503,
        "worker-lost",
        "Worker lost",
        headers=lambda e: {"Retry-After": "1"},
        log=lambda e: log.error("a worker process ended during a computation"),
    ),
    EmptyBody: Kind(400, "malformed-body", "Malformed request body"),
    UnsupportedBody: Kind(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        headers=lambda e: {"Accept-Post": ", ".join(e.supported)},
    ),
    DatasetTooLarge: Kind(413, "dataset-too-large", "Dataset too large"),
    BodyTooLarge: Kind(
        413,
        "body-too-large",
        "Request body too large",
        lambda e: (
            (
                f"the request body of {e.declared} bytes exceeds the limit of {e.limit} bytes "
                if e.declared is not None
                else f"the request body exceeds the limit of {e.limit} bytes "
            )
            + "(BACKPROP_MAX_BODY_BYTES)"
        ),
        # Refused by its Content-Length, the body is never read: the connection cannot go on.
        headers=lambda e: {"Connection": "close"} if e.declared is not None else None,
    ),
    Forbidden: Kind(
        403, "forbidden", "Forbidden", headers=lambda e: {"WWW-Authenticate": e.challenge}
    ),
    Unauthorized: Kind(
        401, "unauthorized", "Unauthorized", headers=lambda e: {"WWW-Authenticate": e.challenge}
    ),
    StorageFull: Kind(
        507,
        "storage-full",
        "Storage full",
        lambda e: (
            "the registry's storage is full, so nothing was written (what is stored is "
            "intact and reads still work); try again once space has been freed"
        ),
        log=lambda e: log.error("registry storage full: %s", e),
    ),
    RegistryUnavailable: Kind(
        503,
        "registry-unavailable",
        "Registry unavailable",
        lambda e: "the model registry cannot be reached; try again shortly",
        headers=lambda e: {"Retry-After": "1"},
        log=lambda e: log.warning("registry unavailable: %s", e),
    ),
    RegistryError: Kind(
        503,
        "registry-error",
        "Registry error",
        log=lambda e: log.error("registry error: %s", e),
    ),
}


def kind_of(exc: Exception) -> Kind | None:
    """The table's entry for ``exc``: that of its class or of its nearest listed base."""
    for cls in type(exc).__mro__:
        found = PROBLEMS.get(cls)
        if found is not None:
            return found
    return None


def respond(exc: Exception, instance: str | None) -> Response:
    """The problem response for ``exc`` (a 500 for one the table does not know)."""
    if isinstance(exc, HTTPException) and not isinstance(exc, BodyTooLarge):
        title = _http_title(exc.status_code)
        detail = _http_detail(exc)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no resource at {instance}"
        slug = title.lower().replace(" ", "-")
        return problem(
            exc.status_code, slug, title, detail, None, instance, dict(exc.headers or {})
        )
    kind = kind_of(exc)
    if kind is None:
        log.error("unhandled error on %s", instance, exc_info=exc)
        return problem(
            500,
            "internal-error",
            "Internal error",
            "the server failed to handle this request; it has been logged",
            None,
            instance,
        )
    if kind.log is not None:
        kind.log(exc)
    return problem(
        kind.status,
        kind.slug,
        kind.title,
        kind.detail(exc),
        kind.errors(exc),
        instance,
        headers=kind.headers(exc),
        extra=kind.extra(exc),
    )


def install(app: FastAPI) -> None:
    """Register the one handler of every exception: the table's problem, or for a request
    that does not validate the problem that says which values are wrong and where."""

    async def answer(request: Request, exc: Exception) -> Response:
        return respond(exc, request.url.path)

    for cls in PROBLEMS:
        app.add_exception_handler(cls, answer)
    app.add_exception_handler(HTTPException, answer)

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> Response:
        invalid_json = [e for e in exc.errors() if e.get("type") == "json_invalid"]
        if invalid_json and (stale := await _stale_if_match(request)) is not None:
            # FastAPI parses JSON before dependencies run; If-Match still comes first.
            return respond(stale, request.url.path)
        if invalid_json:
            reason = invalid_json[0].get("ctx", {}).get("error", "")
            position = invalid_json[0].get("loc", ("body", 0))[-1]
            # Pydantic's reasons name the line and column already; the character is the body's.
            joint = "; " if _LINE_COLUMN.search(reason) else " at "
            detail = f"the request body is not valid JSON ({reason or 'decode error'}{joint}"
            detail += f"character {position})"
            return problem(
                400, "malformed-body", "Malformed request body", detail, None, request.url.path
            )
        errors = _validation_errors(exc)
        return problem(
            422, "invalid-input", "Invalid input", _summary(errors), errors, request.url.path
        )

    app.add_exception_handler(Exception, answer)  # the table knows none: a logged 500


DESCRIPTIONS = {
    400: "Malformed body or header, or no body where one is needed",
    404: "Unknown model or version",
    409: "Name taken, or the model is being trained by a job (the body names it)",
    412: "If-Match does not match the current version",
    413: "Request body too large, or work whose estimated memory or answer would pass a limit",
    415: "A Content-Type the operation does not read (the problem and Accept-Post name those "
    "it does)",
    422: "Invalid content (shapes, values, limits, non-finite numbers)",
    503: "Registry unavailable",
    507: "Storage full: nothing was written; reads keep working",
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
    "Forbidden",
    "MalformedHeaderValue",
    "Problem",
    "Unauthorized",
    "install",
    "problem",
    "problem_responses",
    "respond",
]
