"""Server-Sent Events of a job's progress, and wake-ups for the streams that wait for them.

A stream first replays the stored events after the client's ``Last-Event-ID``, then sends new
ones as they are stored, and ends after the event that leaves the job in a state other than
queued or running (``end``). Events of jobs run by this process wake their streams at once;
those run by another replica are found by polling the registry.

A stream also ends, without an ``end`` event, when the server starts shutting down: an open
stream would otherwise hold up the graceful shutdown (which then interrupts the jobs). Its
client reconnects with ``Last-Event-ID`` and misses nothing.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress

from starlette.concurrency import run_in_threadpool

from service.registry import ACTIVE, JobEvent, Registry

POLL_SECONDS = 0.5  # how often a stream looks for events of jobs run elsewhere
KEEPALIVE_SECONDS = 15.0  # a comment line this often keeps proxies from closing idle streams
RETRY_MILLISECONDS = 1000  # how long EventSource clients wait before reconnecting


def server_exiting() -> bool:
    """Whether the uvicorn server running this process has been asked to shut down.

    uvicorn handles SIGTERM with its ``Server.handle_exit``, which sets ``should_exit``; any
    other handler (no uvicorn, as in tests) means no.
    """
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return getattr(server, "should_exit", False) is True


def format_event(event: JobEvent) -> bytes:
    """One event in the ``text/event-stream`` format: ``id``, ``event`` and one ``data`` line."""
    data = json.dumps(event.data, allow_nan=False, separators=(",", ":"))
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n".encode()


class Notifier:
    """Wakes the streams watching a job, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watchers: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    @contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever `job_id` changes; call inside the stream's event loop."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._watchers.setdefault(job_id, set()).add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                watchers = self._watchers.get(job_id, set())
                watchers.discard(entry)
                if not watchers:
                    self._watchers.pop(job_id, None)

    def notify(self, job_id: str) -> None:
        with self._lock:
            watchers = list(self._watchers.get(job_id, ()))
        for loop, changed in watchers:
            with suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(changed.set)


async def stream(
    registry: Registry, notifier: Notifier, job_id: str, after: int
) -> AsyncIterator[bytes]:
    """The job's events numbered above `after`, then new ones until the job stops running."""
    yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    last = after
    idle = 0.0
    with notifier.watch(job_id) as changed:
        while True:
            changed.clear()
            # The job is read before its events, so the events cover its state as read.
            job = await run_in_threadpool(registry.jobs.get_job, job_id)
            events = await run_in_threadpool(registry.jobs.job_events, job_id, last)
            for event in events:
                yield format_event(event)
                last = event.seq
            if (job.state not in ACTIVE and last >= job.last_event) or server_exiting():
                return
            try:
                await asyncio.wait_for(changed.wait(), POLL_SECONDS)
                idle = 0.0
            except TimeoutError:
                idle += POLL_SECONDS
                if idle >= KEEPALIVE_SECONDS:
                    idle = 0.0
                    yield b": keep-alive\n\n"
