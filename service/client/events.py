"""Server-Sent Events of a job: a ``text/event-stream`` (read by httpx-sse) as :class:`Event`
values, and the policy of a client that follows a job through dropped connections.

A follower resumes after the last event it has seen with ``Last-Event-ID``, so that no event
is missed or repeated; a stream that ends before the job has (the server shut down) or breaks
(a transport error) is reconnected, with a growing pause, until :data:`RECONNECTS` attempts in
a row have failed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from httpx_sse import EventSource, ServerSentEvent

JSON = dict[str, Any]
RECONNECTS = 20
PAUSE_SECONDS = 0.2  # the first pause before a reconnect; it doubles, up to MAX_PAUSE_SECONDS
MAX_PAUSE_SECONDS = 5.0
#: The read timeout of an event stream: the server sends a comment every 15 s, so a longer
#: silence means a dead connection.
READ_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event: its ``id``, ``kind`` (``state``, ``progress``, ``end``) and the
    job's progress as ``data``."""

    id: int
    kind: str
    data: JSON


def event_of(sse: ServerSentEvent) -> Event | None:
    """The job's event that one Server-Sent Event carries; ``None`` for one without data
    (what ``retry`` lines and keep-alive comments leave). A ValueError for an event whose id is
    not a number or whose data is not a JSON object (the clients raise it as
    :class:`~service.client.UnexpectedAnswer`)."""
    if not sse.data:
        return None
    data = json.loads(sse.data)
    if not isinstance(data, dict):
        raise ValueError(f"an event's data is {type(data).__name__}, not an object")
    return Event(int(sse.id or "0"), sse.event, data)


def parse_events(response: httpx.Response) -> Iterator[Event]:
    """The events of a ``text/event-stream`` response, as they arrive (read by httpx-sse)."""
    for sse in EventSource(response).iter_sse():
        if (event := event_of(sse)) is not None:
            yield event


async def aparse_events(response: httpx.Response) -> AsyncIterator[Event]:
    """The events of a ``text/event-stream`` response, as they arrive (read by httpx-sse)."""
    async for sse in EventSource(response).aiter_sse():
        if (event := event_of(sse)) is not None:
            yield event


class Follower:
    """Where a client following one job's events is: the last event seen, and how many
    connections in a row have failed."""

    def __init__(self, last_event_id: int = 0, reconnects: int = RECONNECTS) -> None:
        self.last = last_event_id
        self.reconnects = reconnects
        self.failures = 0
        self.received = 0  # events on the current connection
        self.kind = ""  # of the last event on it

    def connecting(self) -> None:
        self.received, self.kind = 0, ""

    def seen(self, event: Event) -> None:
        self.last, self.kind, self.failures = event.id, event.kind, 0
        self.received += 1

    def closed(self) -> Literal["done", "check", "again"]:
        """What to do once a stream has ended without error: ``done`` after an ``end`` event
        (the server closes the stream after the end of a job that has stopped: a replay
        continues past the end of a run that was resumed); ``check`` the job's state after a
        stream that gave no event (the job may have ended before ``last_event_id``); reconnect
        ``again`` at once after one that gave events (the server is shutting down)."""
        if self.kind == "end":
            return "done"
        return "check" if self.received == 0 else "again"

    def failed(self, error: Exception | None = None) -> float:
        """A connection broke with ``error`` (or gave nothing while the job runs): the pause
        before the next one. Re-raises ``error`` once :attr:`reconnects` connections in a row
        have failed."""
        self.failures += 1
        if error is not None and self.failures > self.reconnects:
            raise error
        return min(PAUSE_SECONDS * 2.0**self.failures, MAX_PAUSE_SECONDS)
