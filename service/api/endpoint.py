"""Endpoints: routes whose requests the service answers with its own handler instead of
FastAPI's dependency solver, so that the router and the fast lane run one and the same code.

An endpoint function declares, as any route does, its path, query and header parameters and its
body (so the spec documents them), and takes a :class:`Call` (``CallDep``) for what it needs of
the app and of the request. It returns the :class:`Response`. Its handler, :meth:`Endpoint.answer`:

1. decodes a JSON body (a decode error is FastAPI's own ``json_invalid``: 400);
2. validates the path parameters; with an ``If-Match`` header, checks it against the model
   before anything else of the request is looked at (404, 412), as a write's precondition;
3. validates the query and header parameters and the body with FastAPI's own functions and the
   body's schema, a large body in a worker thread: every error is the ``RequestValidationError``
   FastAPI would raise, so the problem table answers it as before (422);
4. calls the function.

A body is read and parsed once, whichever way the request came.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.datastructures import Headers, QueryParams
from starlette.responses import Response
from starlette.types import Scope

from service.api.answers import LARGE_BODY
from service.api.deps import checked_if_match, if_match
from service.operations import Operations
from service.settings import Settings

JSON_DECODE_ERROR = "JSON decode error"


@dataclass
class Call:
    """What an endpoint reads of its request and of the app, however the request came: the
    headers (the first of repeated ones wins), the body's bytes, and the version ``If-Match``
    names once the precondition has checked it."""

    ops: Operations
    settings: Settings
    headers: Headers
    body: bytes
    expected_version: int | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


async def _given_by_the_endpoint() -> Call:
    raise RuntimeError("a Call is given to Endpoint routes by their handler, never solved")


CallDep = Annotated[Call, Depends(_given_by_the_endpoint)]


class Endpoint(APIRoute):
    """A route answered by :meth:`answer`; its function takes only parameters, a body and a
    ``CallDep``, and returns a ``Response``."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        super().__init__(path, endpoint, **options)
        dependant = self.dependant
        others = [d for d in dependant.dependencies if d.call is not _given_by_the_endpoint]
        special = (
            dependant.request_param_name,
            dependant.response_param_name,
            dependant.background_tasks_param_name,
            dependant.cookie_params,
        )
        if others or any(special) or len(dependant.body_params) > 1:
            raise TypeError(
                f"{endpoint.__name__}: an Endpoint takes parameters, one body and a CallDep only"
            )
        self.call_names = [d.name for d in dependant.dependencies if d.name is not None]
        self.body_name = dependant.body_params[0].name if dependant.body_params else None
        self.if_match = next(
            (p for p in dependant.header_params if p.alias.lower() == "if-match"), None
        )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        async def handle(request: Request) -> Response:
            return await self.answer(request.scope, await request.body())

        return handle

    async def answer(self, scope: Scope, body: bytes) -> Response:
        """The endpoint's answer to the request of ``scope`` with ``body``."""
        app = scope["app"]
        headers = Headers(scope=scope)
        call = Call(app.state.ops, app.state.settings, headers, body)
        if self.body_field is not None and len(body) > LARGE_BODY:
            value = await call.ops.store.offload(lambda: self._decode(headers, body))
        else:
            value = self._decode(headers, body)
        dependant = self.dependant
        values, errors = request_params_to_args(dependant.path_params, scope["path_params"])
        if self.if_match is not None and not errors:
            call.expected_version = await self._precondition(call, values["name"])
        for params, given in (
            (dependant.query_params, QueryParams(scope.get("query_string", b""))),
            (dependant.header_params, headers),
        ):
            if params:
                found, wrong = request_params_to_args(params, given)
                values.update(found)
                errors += wrong
        if self.body_field is not None and self.body_name is not None:
            if len(body) > LARGE_BODY:
                parsed, wrong = await call.ops.store.offload(lambda: self._validate(value))
            else:
                parsed, wrong = self._validate(value)
            values[self.body_name] = parsed
            errors += wrong
        if errors:
            raise RequestValidationError(errors)
        for name in self.call_names:
            values[name] = call
        response: Response = await self.endpoint(**values)
        return response

    def _decode(self, headers: Headers, body: bytes) -> Any:
        """The body as FastAPI reads it: JSON for a JSON media type, else the bytes."""
        if not body or self.body_field is None:
            return None
        if not _is_json(headers.get("content-type")):
            return body
        try:
            return json.loads(body)
        except UnicodeDecodeError as exc:
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", exc.start),
                        "msg": JSON_DECODE_ERROR,
                        "input": {},
                        "ctx": {"error": f"not UTF-8 ({exc.reason})"},
                    }
                ]
            ) from exc
        except json.JSONDecodeError as exc:
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", exc.pos),
                        "msg": JSON_DECODE_ERROR,
                        "input": {},
                        "ctx": {"error": exc.msg},
                    }
                ],
                body=exc.doc,
            ) from exc

    def _validate(self, value: Any) -> tuple[Any, list[Any]]:
        """The body validated by its schema, with FastAPI's error locations (``body``, ...)."""
        assert self.body_field is not None
        if value is None:
            return None, [{"type": "missing", "loc": ("body",), "msg": "Field required"}]
        parsed, errors = self.body_field.validate(value, {}, loc=("body",))
        return parsed, list(errors)

    async def _precondition(self, call: Call, name: str) -> int | None:
        """``If-Match`` checked against the model (404, 412) before the rest of the request."""
        assert self.if_match is not None
        expected = await if_match(call.headers.get(self.if_match.alias))
        return await checked_if_match(name, call.ops.store, expected)


F = TypeVar("F", bound=Callable[..., Any])


def post(router: APIRouter, path: str, **options: Any) -> Callable[[F], F]:
    """Register the decorated function as the :class:`Endpoint` of ``POST path``."""

    def register(function: F) -> F:
        router.add_api_route(
            path, function, methods=["POST"], route_class_override=Endpoint, **options
        )
        return function

    return register


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI would read a body of ``content_type`` as JSON."""
    if not content_type:
        return False
    kind, _, subtype = content_type.split(";", 1)[0].strip().lower().partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))
