"""A pure ASGI middleware that puts the app's size limits in force: request bodies bounded
(413 before or while reading them), and the limits the request schemas check."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.problems import BodyTooLarge, respond
from service.settings import LIMITS_IN_FORCE, Limits


class BodyLimit:
    """Refuse bodies over ``limit`` bytes: at once by Content-Length, else while streaming;
    serve each request with ``limits`` in force (:func:`service.settings.current_limits`)."""

    def __init__(self, app: ASGIApp, limit: int, limits: Limits) -> None:
        self.app = app
        self.limit = limit
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    response = respond(BodyTooLarge(self.limit, declared), scope.get("path"))
                    await response(scope, receive, send)
                    return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        token = LIMITS_IN_FORCE.set(self.limits)
        try:
            await self.app(scope, limited, send)
        finally:
            LIMITS_IN_FORCE.reset(token)
