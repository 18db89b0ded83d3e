"""Server-Sent Events of a job: parsing ``text/event-stream`` lines into :class:`Event`, and
the policy of a client that follows a job through dropped connections.

A follower resumes after the last event it has seen with ``Last-Event-ID``, so that no event
is missed or repeated; a stream that ends before the job has (the server shut down) or breaks
(a transport error) is reconnected, with a growing pause, until :data:`RECONNECTS` attempts in
a row have failed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

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


class EventReader:
    """Turns the lines of a ``text/event-stream`` into events, one line at a time; comments
    and ``retry`` lines are skipped."""

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}
        self._data: list[str] = []

    def line(self, line: str) -> Event | None:
        """Take one line (without its line break); the event it completes, if any. A ValueError
        for an event whose id is not a number or whose data is not a JSON object (the clients
        raise it as :class:`~service.client.UnexpectedAnswer`)."""
        if line == "":
            event = None
            if self._data:
                data = json.loads("\n".join(self._data))
                if not isinstance(data, dict):
                    raise ValueError(f"an event's data is {type(data).__name__}, not an object")
                event = Event(
                    int(self._fields.get("id", "0")), self._fields.get("event", "message"), data
                )
            self._fields, self._data = {}, []
            return event
        if not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                self._data.append(value)
            else:
                self._fields[name] = value
        return None


def parse_events(lines: Iterable[str]) -> Iterator[Event]:
    """The events of a ``text/event-stream``, from its lines."""
    reader = EventReader()
    for line in lines:
        if (event := reader.line(line)) is not None:
            yield event


async def aparse_events(lines: AsyncIterable[str]) -> AsyncIterator[Event]:
    """The events of a ``text/event-stream``, from its lines as they arrive."""
    reader = EventReader()
    async for line in lines:
        if (event := reader.line(line)) is not None:
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
