"""JSON bodies of the routes FastAPI validates (models, jobs, explanations), decoded by the
service's own reader and, when large, off the event loop.

FastAPI decodes a JSON body with ``json.loads`` on the event loop. What ``json.loads`` cannot
read although it is JSON (an integer of more than 4,300 digits, arrays nested a thousand deep)
it answers with a bare 400 "There was an error parsing the body"; and 30 MB of it hold up every
other request for a second. :class:`JSONBodies` decodes every JSON body with
:func:`jsontext.loads`, whose errors say what and where, so a body that cannot be read gets the
same problem as any other invalid JSON (400, naming the reason and the character).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

from service.interop import jsontext
from service.operations import sizes
from service.store import ModelStore

UNREADABLE_BODY = "There was an error parsing the body"  # FastAPI's answer (400)
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


class EmptyBody(Exception):
    """A request without the body its operation needs (400)."""

    def __init__(self) -> None:
        super().__init__(
            "the request body is empty; this operation needs a JSON object (with "
            "Content-Type: application/json)"
        )


class UnsupportedBody(Exception):
    """A body of a Content-Type the operation does not read (415); ``supported`` are those it
    reads."""

    def __init__(self, content_type: str, supported: tuple[str, ...]) -> None:
        given = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
        message = (
            f"this operation reads a body of type {' or '.join(supported)}; the request has {given}"
        )
        if content_type == FORM:
            message += (
                " (a form: curl -d sends one; add -H 'Content-Type: application/json' to send JSON)"
            )
        super().__init__(message)
        self.content_type = content_type
        self.supported = supported


def check_body(route: APIRoute, scope: Any, content_type: str | None, empty: bool) -> None:
    """Refuse a JSON route's request whose body cannot be its JSON: none where one is required
    (:class:`EmptyBody`), or one of another Content-Type than JSON (:class:`UnsupportedBody`,
    naming the types the operation reads: JSON and its binary forms on the same path)."""
    field = route.body_field
    if field is None:
        return
    if empty:
        if field.field_info.is_required():
            raise EmptyBody()
        return
    if not is_json(content_type):
        media = (content_type or "").split(";", 1)[0].strip().lower()
        raise UnsupportedBody(media, accepted(scope["app"], route))


def accepted(app: Any, route: APIRoute) -> tuple[str, ...]:
    """The media types ``route``'s operation reads: JSON, and those of the binary routes
    declared on its path and method (worked out once per app and route)."""
    known: dict[str, tuple[str, ...]] = app.state.__dict__.setdefault("accepted_media", {})
    key = f"{sorted(route.methods or ())} {route.path_format}"
    found = known.get(key)
    if found is None:
        types = [JSON]
        for context in iter_route_contexts(app.routes):
            other = context.original_route
            media = getattr(other, "media_types", None)
            if (
                media
                and isinstance(other, APIRoute)
                and other.path_format == route.path_format
                and other.methods == route.methods
            ):
                types += sorted(media)
        known[key] = found = tuple(types)
    return found


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI would read a body of ``content_type`` as JSON: ``application/json`` or
    ``application/*+json``, parameters aside (FastAPI's test, without the cost of an email
    header parser per request)."""
    if not content_type:
        return False
    kind, _, subtype = content_type.split(";", 1)[0].strip().lower().partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def loads(raw: bytes) -> Any:
    """The JSON value of a body, or the ``RequestValidationError`` FastAPI raises for invalid
    JSON (``json_invalid``, at a position), also for what ``json.loads`` cannot read and for
    bytes that are not text."""
    try:
        return jsontext.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid_json(exc) from None


def invalid_json(exc: json.JSONDecodeError | UnicodeDecodeError) -> RequestValidationError:
    """FastAPI's error for a body that is not JSON (the problem table answers it with 400)."""
    if isinstance(exc, UnicodeDecodeError):
        position, reason, document = exc.start, "not UTF-8 text", ""
    else:
        position, reason, document = exc.pos, exc.msg, exc.doc
    return RequestValidationError(
        [
            {
                "type": "json_invalid",
                "loc": ("body", position),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": reason},
            }
        ],
        body=document,
    )


class JSONBodies(APIRoute):
    """A route whose JSON body is decoded by :func:`loads`, and validated off the event loop
    when large.

    A body of at most ``sizes.LARGE_BODY`` bytes is decoded on the loop and handed to FastAPI
    decoded. A larger one is decoded in pieces (:func:`jsontext.loads`) and validated by the
    route's own body field in the store's worker threads. Starlette keeps a request's body and
    JSON once read, so FastAPI's handler then finds them done (a model instance validates again
    at no cost) and answers exactly as it would have. A body that does not validate leaves
    FastAPI a stand-in that fails at once, and the errors found in the worker take its place,
    after FastAPI's own about the parameters, in the order FastAPI gives them."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        field = self.body_field
        if field is None or self._embed_body_fields:
            return handler

        def parse(chunks: list[bytes]) -> tuple[bytes, Any]:
            raw = b"".join(chunks)
            try:
                data = loads(raw)
            except RequestValidationError as exc:
                return raw, exc
            value, errors = field.validate(data, {}, loc=("body",))
            return raw, _Invalid(errors) if errors else value

        async def handle(request: Request) -> Response:
            if MAX_BODY_SIZE_SCOPE_KEY in request.scope:
                return await handler(request)
            try:
                chunks = [chunk async for chunk in request.stream()]
            except HTTPException:
                raise
            except Exception as exc:
                raise HTTPException(400, UNREADABLE_BODY) from exc
            size = sum(map(len, chunks))
            check_body(self, request.scope, request.headers.get("content-type"), size == 0)
            if size <= sizes.LARGE_BODY:
                request._body = b"".join(chunks)
                if request._body:  # FastAPI reads no JSON of an empty body
                    request._json = loads(request._body)
                return await handler(request)
            store: ModelStore = request.app.state.store
            request._body, parsed = await store.offload(partial(parse, chunks))
            if isinstance(parsed, RequestValidationError):
                raise parsed
            if not isinstance(parsed, _Invalid):
                request._json = parsed
                return await handler(request)
            request._json = _STAND_IN
            try:
                return await handler(request)
            except RequestValidationError as exc:
                errors = [e for e in exc.errors() if e.get("input") is not _STAND_IN]
                raise RequestValidationError([*errors, *parsed.errors], body=exc.body) from None

        return handle


class _Invalid:
    """The errors of a body that does not validate."""

    def __init__(self, errors: list[Any]) -> None:
        self.errors = errors


_STAND_IN = object()  # what FastAPI validates in place of a body found invalid in a worker
