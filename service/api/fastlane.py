"""The fast lane: requests to the :class:`~service.api.endpoint.Endpoint` routes dispatched to
those routes' own handler without Starlette's routing and FastAPI's per-route middleware.

For a small forward the routing, not the arithmetic, is most of a request. This pure ASGI layer
sits inside the logging, metrics, auth and body-limit middlewares, so those apply as always. Its
table is derived from the app's routes: every ``POST`` Endpoint, with the routes declared before
it on the same path (the binary variants, chosen by Content-Type). A request an Endpoint would
serve is read and handed to :meth:`Endpoint.answer`, the very code the router would run; any
other request goes to the app. The lane holds no code of any endpoint: parsing, negotiation and
answers live in the routes, and errors are answered by the app's own exception handlers.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api import binary
from service.api.endpoint import Endpoint

LOG = logging.getLogger("service.api.fastlane")
PATHS = 1024  # paths whose lane is remembered


@dataclass(frozen=True)
class Lane:
    """An Endpoint, and the routes before it on its path that may take a request first."""

    endpoint: Endpoint
    before: tuple[BaseRoute, ...]


def lanes(app: FastAPI) -> list[Lane]:
    """Every ``POST`` Endpoint of ``app``, in the app's order."""
    routes = [context.original_route for context in iter_route_contexts(app.routes)]
    found: list[Lane] = []
    for i, route in enumerate(routes):
        if isinstance(route, Endpoint) and "POST" in (route.methods or ()):
            before = tuple(
                r
                for r in routes[:i]
                if isinstance(r, APIRoute) and r.path_format == route.path_format
            )
            found.append(Lane(route, before))
    return found


class FastLane:
    """Pure ASGI: Endpoint requests to their handler directly, every other one to ``app``."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI) -> None:
        self.app = app
        self.fastapi = fastapi
        self._lanes: list[Lane] | None = None
        #: The lane of each path seen (None: no Endpoint's), with its path parameters.
        self._paths: dict[str, tuple[Lane, dict[str, str]] | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if self._lanes is None:  # the routes are all there by the first request
            self._lanes = lanes(self.fastapi)
        found = self._find(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        route, path_params = found
        try:
            messages = await _read(receive)
        except Exception as exc:  # the body limit: the app answers it
            await self.app(scope, _raising(exc), send)
            return
        if messages[-1]["type"] != "http.request":  # the client went away
            await self.app(scope, _replay(messages, receive), send)
            return
        chunks = [m.get("body", b"") for m in messages]  # joined where needed (Endpoint.answer)
        scope["path_params"] = path_params
        scope["route"] = route  # for the metrics and the request log: the route template
        scope["endpoint"] = route.endpoint
        try:
            response = await route.answer(scope, chunks)
        except Exception as exc:
            response = await self._answer(scope, _replay(messages, receive), exc)
        await response(scope, receive, send)

    def _find(self, scope: Scope) -> tuple[Endpoint, dict[str, str]] | None:
        """The Endpoint that would serve ``scope``, and its path parameters."""
        path = scope["path"]
        try:
            found = self._paths[path]
        except KeyError:
            found = self._paths[path] = self._lane(path)
            if len(self._paths) > PATHS:
                self._paths.clear()
        if found is None:
            return None
        lane, params = found
        if lane.before and any(_takes(r, scope) for r in lane.before):
            return None
        return lane.endpoint, dict(params)

    def _lane(self, path: str) -> tuple[Lane, dict[str, str]] | None:
        """The first lane whose Endpoint's path matches ``path``, and its path parameters."""
        assert self._lanes is not None
        for lane in self._lanes:
            match = lane.endpoint.path_regex.match(path)
            if match is not None:
                return lane, match.groupdict()
        return None

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


def _takes(route: BaseRoute, scope: Scope) -> bool:
    """Whether ``route``, declared before an Endpoint on its path, takes the request: a route
    chosen by Content-Type is asked by its media types alone (its path is the Endpoint's)."""
    media_types = getattr(route, "media_types", None)
    if media_types is None:
        return route.matches(scope)[0] is Match.FULL
    for key, value in scope["headers"]:
        if key == b"content-type":
            return binary.media_type(value.decode("latin-1")) in media_types
    return False


def install(app: FastAPI) -> None:
    """Add the lane; call it before the other middlewares so that it sits inside them."""
    app.add_middleware(FastLane, fastapi=app)


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
