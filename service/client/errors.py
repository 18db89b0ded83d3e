"""The errors of the API as exceptions: one class per kind of problem, chosen by status.

::

    ApiError                 any answer that is not a success (RFC 9457 problem details),
    │                        or one the client cannot read
    ├── InvalidInput         400 malformed body or header, 422 invalid content
    ├── Unauthorized         401 no valid API key
    ├── Forbidden            403 the key's role does not allow the operation
    ├── NotFound             404 unknown model, version, dataset or job
    ├── Conflict             409 name taken, model busy with a job, job in another state
    ├── PreconditionFailed   412 a stale If-Match
    ├── PayloadTooLarge      413 body or dataset too large
    ├── Unavailable          503 the registry cannot be reached
    ├── StorageFull          507 the registry's storage is full: nothing was written
    └── UnexpectedAnswer     a success whose body the client cannot read (not JSON, a field
                             missing or of another type, a broken array or event stream)

Errors of the transport (connection refused, timeouts) are httpx's own, not wrapped.
"""

from __future__ import annotations

from typing import Any

import httpx

Problem = dict[str, Any]


class ApiError(Exception):
    """The service answered with an error (or with an answer the client cannot read): its
    ``status``, its ``problem`` body (``type``, ``title``, ``status``, ``detail``, for invalid
    input ``errors``) and the ``response``."""

    def __init__(self, status: int, problem: Problem, response: httpx.Response) -> None:
        self.status = status
        self.problem = problem
        self.response = response
        super().__init__(f"HTTP {status} {self.title}: {self.detail}")

    @property
    def type(self) -> str:
        """The problem's ``type``, e.g. ``/problems/model-not-found``."""
        return str(self.problem.get("type", "about:blank"))

    @property
    def title(self) -> str:
        return str(self.problem.get("title") or self.response.reason_phrase)

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or "")

    @property
    def errors(self) -> list[dict[str, str]]:
        """The invalid values: ``{"pointer": "/inputs/0", "message": ...}`` for the body,
        ``{"parameter", "in", "message"}`` for query, path and header parameters."""
        errors = self.problem.get("errors")
        return list(errors) if isinstance(errors, list) else []

    @property
    def pointers(self) -> list[str]:
        """The JSON pointers of :attr:`errors` that name a place in the body."""
        return [e["pointer"] for e in self.errors if isinstance(e.get("pointer"), str)]


class InvalidInput(ApiError):
    """400 (a malformed body or header) or 422 (content the service cannot use)."""


class Unauthorized(ApiError):
    """401: no API key, or an unknown one."""


class Forbidden(ApiError):
    """403: the API key's role does not allow this operation."""


class NotFound(ApiError):
    """404: no such model, version, dataset or job."""


class Conflict(ApiError):
    """409: the name is taken, a job trains the model, or the job is in another state."""


class PreconditionFailed(ApiError):
    """412: ``If-Match`` names another version than the model's current one."""


class PayloadTooLarge(ApiError):
    """413: the request body, or the dataset, is larger than the server allows."""


class Unavailable(ApiError):
    """503: the registry cannot be reached; the request may succeed a little later."""


class StorageFull(ApiError):
    """507: the registry's storage is full, so nothing was written; reads still work, and
    the write succeeds once space has been freed."""


class UnexpectedAnswer(ApiError):
    """A success answer the client cannot read: a body that is not the JSON, array or event
    stream the operation answers with (a proxy's page, another service), or whose fields are
    missing or of another type. Its ``detail`` says what did not read; the error it comes
    from is its ``__cause__``."""

    @classmethod
    def of(cls, response: httpx.Response, error: Exception) -> UnexpectedAnswer:
        """The error for ``response``, whose reading raised ``error``."""
        problem: Problem = {
            "type": "about:blank",
            "title": "Unexpected answer",
            "status": response.status_code,
            "detail": f"{type(error).__name__}: {error}"[:2000],
        }
        return cls(response.status_code, problem, response)


BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    422: InvalidInput,
    503: Unavailable,
    507: StorageFull,
}


def error_for(response: httpx.Response) -> ApiError:
    """The exception for an error response (whose body has been read). A body that is not a
    problem (a proxy's page, a plain-text 400 of the HTTP server) becomes a problem whose
    ``detail`` is the start of the text."""
    problem: Problem
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        problem = body
    else:
        problem = {
            "type": "about:blank",
            "title": response.reason_phrase,
            "status": response.status_code,
            "detail": response.text[:500],
        }
    cls = BY_STATUS.get(response.status_code, ApiError)
    return cls(response.status_code, problem, response)
