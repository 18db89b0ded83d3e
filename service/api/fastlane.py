"""The fast lane: the requests that carry a serving deployment's traffic, answered without
FastAPI's routing and dependency solving.

For a small forward FastAPI spends most of the request matching routes and solving
dependencies (about 200 µs of 270 in-process here), far more than the arithmetic. This pure
ASGI layer sits inside the logging, metrics, auth and body-limit middlewares, so those apply as
they always do, and serves these requests directly: ``POST /v1/models/{name}/forward``,
``/gradient`` and ``/train-step`` with a JSON body, and ``POST /v2/models/{name}/infer``. It
reads the body, validates it from bytes with the route's own schema, computes through the same
store and answers as the route would.

It serves only the plain case. A request it does not take (a query string, another media type,
a forward's trace, a body that does not validate) is replayed, body and all, into the full
application, which answers exactly as it always has; a domain error raised while serving (an
unknown model, the registry unavailable, a numeric overflow) gets the application's own
exception handler, the same problem the route would give, without doing the work twice. The
lane adds no operation of its own: the routes stay the documented ones.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api import convert
from service.api.deps import etag, if_match
from service.api.routes import compute, v2
from service.api.schemas.common import NAME_PATTERN
from service.api.schemas.compute import (
    ForwardRequest,
    ForwardResponse,
    GradientRequest,
    TrainStepRequest,
    TrainStepResponse,
)
from service.api.v2 import codec
from service.operations import Operations
from service.settings import Settings

NAME = NAME_PATTERN.removeprefix("^").removesuffix("$")
FORWARD = re.compile(rf"/v1/models/(?P<name>{NAME})/forward")
GRADIENT = re.compile(rf"/v1/models/(?P<name>{NAME})/gradient")
TRAIN_STEP = re.compile(rf"/v1/models/(?P<name>{NAME})/train-step")
INFER = re.compile(rf"/v2/models/(?P<name>{NAME})/infer")

LOG = logging.getLogger("service.api.fastlane")
Handler = Callable[[str, bytes, dict[bytes, bytes]], Awaitable[Response | None]]


class FastLane:
    """Pure ASGI: serve the hot requests directly, replay every other one into ``app``."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI, ops: Operations, settings: Settings) -> None:
        self.app = app
        self.fastapi = fastapi
        self.ops = ops
        self.store = ops.store
        self.settings = settings
        self.lanes: list[tuple[re.Pattern[str], Handler, Template]] = [
            (FORWARD, self.forward, Template("/v1/models/{name}/forward")),
            (GRADIENT, self.gradient, Template("/v1/models/{name}/gradient")),
            (TRAIN_STEP, self.train_step, Template("/v1/models/{name}/train-step")),
            (INFER, self.infer, Template("/v2/models/{name}/infer")),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        lane = next(
            (
                (m, handler, route)
                for p, handler, route in self.lanes
                if (m := p.fullmatch(scope["path"]))
            ),
            None,
        )
        if lane is None:
            await self.app(scope, receive, send)
            return
        match, handler, route = lane
        try:
            messages = await _read(receive)
        except Exception as exc:  # the body limit: the app answers it
            await self.app(scope, _raising(exc), send)
            return
        if messages[-1]["type"] != "http.request":  # the client went away
            await self.app(scope, _replay(messages, receive), send)
            return
        body = b"".join(m.get("body", b"") for m in messages)
        try:
            response = await handler(match["name"], body, _first_of_each(scope["headers"]))
        except NotForTheLane:
            response = None  # FastAPI words the body's validation errors: the routes answer
        except Exception as exc:
            # A domain error (unknown model, registry unavailable, numeric overflow, ...) gets
            # the app's own handler, as on the routes, without doing the work again; so does
            # an unexpected one (500), never replayed: a train-step must not run twice.
            response = await self._answer(scope, receive, exc)
        if response is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        scope["route"] = route  # for the metrics and the request log: the route template
        await response(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, exc: Exception) -> Response:
        """The response of the app's exception handler for ``exc``: the catch-all one (a logged
        500) for an unexpected error. Called while ``exc`` is being handled."""
        handlers = self.fastapi.exception_handlers
        for kind in type(exc).__mro__:
            handler = handlers.get(kind)
            if handler is not None:
                answer = handler(Request(scope, receive), exc)
                response: Response = await answer if inspect.isawaitable(answer) else answer
                return response
        LOG.error("unexpected error in %s", scope.get("path"), exc_info=exc)
        return Response("Internal Server Error", status_code=500, media_type="text/plain")

    async def forward(self, name: str, body: bytes, headers: dict[bytes, bytes]) -> Response | None:
        """The JSON forward route's answer, or None where that route must answer itself."""
        if not _json_only(headers):
            return None
        request = _parse(ForwardRequest, body)
        if request.trace:
            return None
        model = await self.store.load(name)
        outputs = await self.ops.outputs(model.network, model.params, request.inputs)
        answer = ForwardResponse.model_construct(
            model=name, version=model.version, outputs=convert.matrix(outputs)
        )
        return Response(
            answer.model_dump_json(exclude_none=True),
            headers=etag(model.version),
            media_type="application/json",
        )

    async def gradient(
        self, name: str, body: bytes, headers: dict[bytes, bytes]
    ) -> Response | None:
        """The JSON gradient route's answer (deltas and trace included)."""
        if not _json_only(headers):
            return None
        request = _parse(GradientRequest, body)
        model = await self.store.load(name)
        return await compute.gradient_answer(
            self.ops,
            name,
            model,
            request.inputs,
            request.targets,
            "layered",
            request.deltas,
            request.trace,
            False,
        )

    async def train_step(
        self, name: str, body: bytes, headers: dict[bytes, bytes]
    ) -> Response | None:
        """The JSON train-step route's answer; ``If-Match`` is checked in the commit itself."""
        if not _json_only(headers):
            return None
        request = _parse(TrainStepRequest, body)
        match = headers.get(b"if-match")
        expected = await if_match(None if match is None else match.decode("latin-1"))
        outcome = await self.ops.train_step(
            name, request.inputs, request.targets, request.learning_rate, expected
        )
        version = outcome.record.version
        answer = TrainStepResponse(model=name, version=version, loss=outcome.loss)
        return Response(
            answer.model_dump_json(), headers=etag(version), media_type="application/json"
        )

    async def infer(self, name: str, body: bytes, headers: dict[bytes, bytes]) -> Response | None:
        """The V2 infer route's answer (binary tensors included)."""
        length = headers.get(codec.HEADER_LENGTH.lower().encode())
        model = await self.store.load(name)
        return await v2.infer_response(
            self.ops,
            model,
            body,
            None if length is None else length.decode("latin-1"),
            self.settings.max_batch_rows,
        )


@dataclass(frozen=True)
class Template:
    """What the metrics and the request log read of the route that served a request."""

    path_format: str


class NotForTheLane(Exception):
    """The request is the routes' to answer (its body does not validate)."""


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], body: bytes) -> M:
    """``body`` validated from bytes by the route's own schema."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise NotForTheLane from exc


def _json_only(headers: dict[bytes, bytes]) -> bool:
    """A JSON body, and no binary answer asked for."""
    content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    accept = headers.get(b"accept", b"").lower()
    return content_type == b"application/json" and b"npy" not in accept and b"npz" not in accept


def _first_of_each(headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """The headers by name, the first of repeated ones winning, as Starlette reads them."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        found.setdefault(name, value)
    return found


def install(app: FastAPI, ops: Operations, settings: Settings) -> None:
    """Add the lane; call it before the other middlewares so that it sits inside them."""
    app.add_middleware(FastLane, fastapi=app, ops=ops, settings=settings)


async def _read(receive: Receive) -> list[Message]:
    """The body's messages, up to the last one or a disconnect."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` again, then whatever the connection says next."""
    pending = list(messages)

    async def again() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return again


def _raising(exc: Exception) -> Receive:
    """A ``receive`` that fails as reading the body failed, where the app can answer it."""

    async def fail() -> Message:
        raise exc

    return fail
