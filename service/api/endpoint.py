"""Endpoints: routes whose requests the service answers with its own handler instead of
FastAPI's dependency solver, so that the router and the fast lane run one and the same code.

An endpoint function declares, as any route does, its path, query and header parameters and its
body (so the spec documents them), and takes a :class:`Call` (``CallDep``) for what it needs of
the app and of the request. It returns the :class:`Response`. Its handler, :meth:`Endpoint.answer`:

1. validates the path parameters; with an ``If-Match`` header, checks it against the model
   before anything else of the request counts (404, 412), as a write's precondition;
2. refuses a body that cannot be the operation's JSON (:func:`bodies.check_body`): none where
   one is required (400), another Content-Type (415, naming the types the operation reads);
3. parses and validates the JSON body in one pass from its bytes with the body's schema
   (``model_validate_json``); a large body in a worker thread, one over ``PROCESS_BODY`` in a
   worker process, which sends back its batches
   as arrays (:func:`parse_json`), so that neither the parse nor the millions of Python floats
   it makes hold the server's interpreter lock; a body that is not JSON at all is refused at
   once (``json_invalid``: 400); then the query and header parameters with FastAPI's own
   function; every error, the body's too, is the ``RequestValidationError`` FastAPI would
   raise, located as FastAPI locates it (``body``, ...), so the problem table answers it as
   before (422);
4. calls the function.

A body is read and parsed once, whichever way the request came.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, get_args, get_origin

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi import params as fastapi_params
from fastapi._compat import ModelField
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers, QueryParams
from starlette.responses import Response
from starlette.types import Scope

from service.api.bodies import check_body
from service.api.deps import checked_if_match, if_match
from service.operations import Operations, sizes
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
        self.schema: type[BaseModel] | None = None
        if self.body_field is not None:
            schema = self.body_field.field_info.annotation
            if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
                raise TypeError(f"{endpoint.__name__}: an Endpoint's body is a Pydantic model")
            self.schema = schema
        self.path_params = Params(dependant.path_params, remember=True)
        self.query_params = Params(dependant.query_params)
        self.header_params = Params(dependant.header_params)
        self.if_match = next(
            (p for p in dependant.header_params if p.alias.lower() == "if-match"), None
        )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        async def handle(request: Request) -> Response:
            return await self.answer(request.scope, await request.body())

        return handle

    async def answer(self, scope: Scope, received: bytes | list[bytes]) -> Response:
        """The endpoint's answer to the request of ``scope`` with the body ``received``: its
        bytes, or the chunks they came in. Chunks are joined where the bytes are needed, but a
        JSON body for a worker process goes to it as chunks: joining tens of megabytes is a
        copy that holds the interpreter lock, and the event loop with it."""
        app = scope["app"]
        headers = Headers(scope=scope)
        chunks = received if isinstance(received, list) else [received]
        size = sum(len(chunk) for chunk in chunks)
        workers = app.state.ops.workers
        to_worker = self.schema is not None and workers is not None and size > PROCESS_BODY
        # The bytes (an endpoint with a JSON body does not read them once it is parsed).
        body = b"" if to_worker else chunks[0] if len(chunks) == 1 else b"".join(chunks)
        call = Call(app.state.ops, app.state.settings, headers, body)
        values, wrong = self.path_params(scope["path_params"])
        if self.if_match is not None and not wrong:
            call.expected_version = await self._precondition(call, values["name"])
        parsed: Any = None
        errors: list[Any] = []
        if self.body_field is not None:
            check_body(self, scope, headers.get("content-type"), not size)
            if not size:
                pass  # an optional body left out
            elif to_worker:
                assert self.schema is not None and workers is not None
                parsed, errors = await workers.run(parse_json, self.schema, chunks)
            elif size <= sizes.LARGE_BODY:
                parsed, errors = self._parse(body)
            else:
                parsed, errors = await call.ops.store.offload(lambda: self._parse(body))
        errors = wrong + errors
        query = scope.get("query_string", b"")
        for params, given in (
            (self.query_params, QueryParams(query) if query else {}),
            (self.header_params, headers),
        ):
            found, wrong = params(given)
            values.update(found)
            errors += wrong
        if errors:
            raise RequestValidationError(errors)
        if self.body_name is not None:
            values[self.body_name] = parsed
        for name in self.call_names:
            values[name] = call
        response: Response = await self.endpoint(**values)
        return response

    def _parse(self, body: bytes) -> tuple[Any, list[Any]]:
        """The body validated by its schema, and the errors that it does not, located as
        FastAPI locates them (``body``, ...). A JSON body is parsed and validated in one pass
        from its bytes; a body that is not JSON at all raises at once (400). Its Content-Type
        has been checked (:func:`check_body`)."""
        assert self.body_field is not None and self.schema is not None
        parsed, errors = _validate_json(self.schema, body)
        syntax = next((e for e in errors if e["type"] == "json_invalid"), None)
        if syntax is not None:
            raise RequestValidationError([syntax])
        return parsed, errors

    async def _precondition(self, call: Call, name: str) -> int | None:
        """``If-Match`` checked against the model (404, 412) before the rest of the request."""
        assert self.if_match is not None
        expected = await if_match(call.headers.get(self.if_match.alias))
        return await checked_if_match(name, call.ops.store, expected)


class Params:
    """Validation of one kind of parameters (path, query or header) as FastAPI validates them,
    with what FastAPI works out per request worked out once: a field's alias and whether it is
    required. Fields of sequence types (repeated query parameters) take FastAPI's own way."""

    def __init__(self, fields: list[ModelField], *, remember: bool = False) -> None:
        self.fields = fields
        #: Valid values by what was given, with ``remember`` (path parameters: a few model
        #: names, each validated once rather than on every request).
        self.remembered: dict[tuple[Any, ...], dict[str, Any]] | None = {} if remember else None
        self.plain = [
            (f, (_where(f), f.alias)) for f in fields if not _sequence(f.field_info.annotation)
        ]
        if len(self.plain) < len(fields):
            self.plain = []
        # Without any given: every field's default, when none is required nor validated.
        self.defaults: dict[str, Any] | None = None
        if self.plain and not any(
            f.field_info.is_required() or f.field_info.validate_default for f in fields
        ):
            self.defaults = {f.name: f.get_default() for f in fields}

    def __call__(self, given: Mapping[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        if not self.fields:
            return {}, []
        if not given and self.defaults is not None:
            return dict(self.defaults), []
        if not self.plain:
            return request_params_to_args(self.fields, given)
        if self.remembered is None:
            return self._validate(given)
        key = tuple(given.get(alias) for _, (_, alias) in self.plain)
        values = self.remembered.get(key)
        if values is None:
            values, errors = self._validate(given)
            if errors:
                return values, errors
            if len(self.remembered) >= REMEMBERED:
                self.remembered.clear()
            self.remembered[key] = values
        return dict(values), []

    def _validate(self, given: Mapping[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        values: dict[str, Any] = {}
        errors: list[Any] = []
        for field, loc in self.plain:
            value = given.get(loc[1])
            if value is None:
                if field.field_info.is_required():
                    errors.append({"type": "missing", "loc": loc, "msg": "Field required"})
                    continue
                if not field.field_info.validate_default:
                    values[field.name] = field.get_default()
                    continue
                value = field.get_default()
            found, wrong = field.validate(value, values, loc=loc)
            if wrong:
                errors.extend(wrong)
            else:
                values[field.name] = found
        return values, errors


REMEMBERED = 1024  # valid path parameters remembered per route


def _where(field: ModelField) -> str:
    """Where a parameter is: path, query or header."""
    info = field.field_info
    assert isinstance(info, fastapi_params.Param)
    return str(info.in_.value)


SEQUENCES = (list, tuple, set, frozenset)


def _sequence(annotation: Any) -> bool:
    """Whether a parameter's type is a sequence (FastAPI reads it from repeated values)."""
    kinds = (annotation, *get_args(annotation))
    return any(
        get_origin(k) in (list, tuple, set, frozenset) or k in (list, tuple, set) for k in kinds
    )


F = TypeVar("F", bound=Callable[..., Any])


def post(router: APIRouter, path: str, **options: Any) -> Callable[[F], F]:
    """Register the decorated function as the :class:`Endpoint` of ``POST path``."""

    def register(function: F) -> F:
        router.add_api_route(
            path, function, methods=["POST"], route_class_override=Endpoint, **options
        )
        return function

    return register


def _validate_json(schema: type[BaseModel], body: bytes) -> tuple[Any, list[Any]]:
    """``body`` validated by ``schema``, or the errors located as FastAPI locates them."""
    try:
        return schema.model_validate_json(body), []
    except ValidationError as exc:
        errors: list[Any] = list(exc.errors(include_url=False))
    syntax = next((e for e in errors if e["type"] == "json_invalid"), None)
    if syntax is not None:
        reason = str(syntax.get("ctx", {}).get("error", "")) or JSON_DECODE_ERROR
        where = ("body", _offset(body, reason))
        return None, [
            {"type": "json_invalid", "loc": where, "msg": JSON_DECODE_ERROR, "input": {}}
            | {"ctx": {"error": reason}}
        ]
    return None, [{**e, "loc": ("body", *e["loc"])} for e in errors]


#: Bytes of a JSON body above which it is parsed in a worker process (in a worker thread from
#: ``LARGE_BODY``): the hop costs a few milliseconds, the parse of a body this large holds the
#: interpreter lock for tens.
PROCESS_BODY = 8 << 20
#: A batch of at least this many numbers goes back from a worker process as an array.
ARRAY_NUMBERS = 4096


def parse_json(schema: type[BaseModel], body: bytes | list[bytes]) -> tuple[Any, list[Any]]:
    """In a worker process: ``body`` (its bytes, or the chunks they came in) validated by
    ``schema`` with its large batches (lists of
    equal rows of floats, such as ``inputs`` and ``targets``) as float64 arrays, which cross
    back in one copy and which the computations take as they take the batches of binary
    bodies; or the errors, with what they need to be answered (type, place, message) only,
    not the invalid input itself."""
    if isinstance(body, list):
        body = b"".join(body)
    parsed, errors = _validate_json(schema, body)
    if errors:
        return None, [
            {"type": e["type"], "loc": e["loc"], "msg": e["msg"]}
            | ({"ctx": {"error": str(e["ctx"]["error"])}} if "error" in e.get("ctx", {}) else {})
            for e in errors
        ]
    for name, value in parsed.__dict__.items():
        if _batch(value):
            parsed.__dict__[name] = np.array(value, dtype=np.float64)
    return parsed, []


def _batch(value: Any) -> bool:
    """Whether ``value`` is a large list of equal lists of floats (validated: all finite)."""
    if not (isinstance(value, list) and value and isinstance(value[0], list) and value[0]):
        return False
    width = len(value[0])
    if len(value) * width < ARRAY_NUMBERS or not isinstance(value[0][0], float):
        return False
    return all(isinstance(row, list) and len(row) == width for row in value)


def _offset(body: bytes, reason: str) -> int:
    """The character offset of the ``line L column C`` a JSON error message names (0 if none)."""
    match = re.search(r"line (\d+) column (\d+)", reason)
    if match is None:
        return 0
    line, column = int(match[1]), int(match[2])
    lines = body.decode("utf-8", "replace").split("\n")
    return sum(len(text) + 1 for text in lines[: line - 1]) + max(column - 1, 0)
