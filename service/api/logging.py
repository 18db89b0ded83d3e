"""Logs as JSON lines: one line per request (``backprop.access``) with its request id, method,
route template, status and duration, and every other log record in the same form.

A request line holds no path, query, header or body: the route template stands for the path,
so neither input data (``?inputs=...``, model names aside) nor keys can reach the logs. The
request id is the client's ``X-Request-ID`` when it is sane (1-128 characters of letters,
digits and ``-._:@/+=``), else a new one; either way the response carries it back.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.metrics import Metrics, route_template

ACCESS = logging.getLogger("backprop.access")
REQUEST_ID_HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9\-._:@/+=]{1,128}")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, then the record's ``fields``
    (access lines) or its message."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def request_id(scope: Scope) -> str:
    """The client's X-Request-ID when it is sane, else a new random one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1").strip()
            if SANE_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return os.urandom(16).hex()  # 128 random bits, as uuid4().hex but a fifth of its cost


class RequestLog:
    """Pure ASGI: give each HTTP request an id, return it, and log one line when it ends: for
    every request with ``access_log``, else for server errors only (a line per request costs a
    write per request, as much as a small forward). Given the ``metrics``, it also counts and
    times every request for them (:meth:`Metrics.observe`): one layer, not two, around every
    request."""

    def __init__(
        self, app: ASGIApp, access_log: bool = True, metrics: Metrics | None = None
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        status = 500  # what the client sees when the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        metrics = self.metrics
        if metrics is not None:
            metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if metrics is not None:
                metrics.in_progress.dec()
                seconds = time.perf_counter() - start
                metrics.observe(scope["method"], route_template(scope), status, seconds)
            level = logging.ERROR if status >= 500 else logging.INFO
            if (self.access_log or level == logging.ERROR) and ACCESS.isEnabledFor(level):
                self._log(scope, rid, status, start, level)

    @staticmethod
    def _log(scope: Scope, rid: str, status: int, start: float, level: int) -> None:
        fields: dict[str, Any] = {
            "event": "request",
            "request_id": rid,
            "method": scope["method"],
            "route": route_template(scope),
            "status": status,
            "duration_ms": round((time.perf_counter() - start) * 1000, 3),
        }
        role = scope.get("state", {}).get("role")
        if role is not None:
            fields["role"] = role
        client = scope.get("client")
        if client:
            fields["client"] = client[0]
        ACCESS.log(level, "request", extra={"fields": fields})


def log_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server (uvicorn's ``log_config``): every record
    as a JSON line on stderr; uvicorn's own access lines are replaced by ``backprop.access``."""
    level = level.upper()
    handler = {"handlers": ["json"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": handler,
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "service": handler,
            "backprop": handler,
        },
        "root": {"handlers": ["json"], "level": "WARNING"},
    }
