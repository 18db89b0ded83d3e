"""The synchronous client: :class:`Client`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TypeVar

import httpx
from httpx_sse import SSEError

from service.client import jobs
from service.client.call import (
    DEFAULT_URL,
    Call,
    Pages,
    Timeout,
    client_headers,
    stream_timeout,
)
from service.client.errors import UnexpectedAnswer
from service.client.events import READ_TIMEOUT_SECONDS, Event, Follower, parse_events
from service.client.methods import Methods
from service.client.types import JobPublic

T = TypeVar("T")
Item = TypeVar("Item")
Cursor = TypeVar("Cursor")


class Client(Methods):
    """A client of the service's ``/v1`` API over HTTP, blocking.

    ``with Client("http://127.0.0.1:8000", api_key=...) as client: client.forward(...)``.
    Answers are the client's own types (:mod:`service.client.types`); an error answer raises
    the :class:`~service.client.ApiError` of its status (a success that does not read
    :class:`~service.client.UnexpectedAnswer`), a transport failure httpx's error.
    ``transport`` replaces httpx's (tests pass an ``httpx.MockTransport``).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: Timeout = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers=client_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    @property
    def http(self) -> httpx.Client:
        """The underlying httpx client, for what this one does not cover (``/v2``, metrics)."""
        return self._http

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- jobs ---------------------------------------------------------------------------------

    def events(self, job_id: str, last_event_id: int = 0) -> Iterator[Event]:
        """``GET /v1/jobs/{id}/events``: the job's events after ``last_event_id`` as they
        happen, until the job has stopped: the last is the ``end`` event of its last run (a
        replay of a job that was resumed also holds the ``end`` of earlier runs; there is none
        if the job had ended before ``last_event_id``). A stream that breaks or closes early
        is reconnected with ``Last-Event-ID``, so no event is missed or repeated; after
        :data:`~service.client.events.RECONNECTS` failures in a row the transport error is
        raised."""
        follower = Follower(last_event_id)
        while True:
            follower.connecting()
            try:
                with self._stream(jobs.job_events(job_id, follower.last)) as response:
                    for event in parse_events(response):
                        follower.seen(event)
                        yield event
                after = follower.closed()
                if after == "done":
                    return
                if after == "again":
                    continue
                if self.get_job(job_id).state in jobs.ENDED:
                    return
                pause = follower.failed()
            except httpx.TransportError as error:
                pause = follower.failed(error)
            time.sleep(pause)

    def wait(self, job_id: str) -> JobPublic:
        """Follow the job's events until it ends (succeeded, failed, cancelled or interrupted);
        the job then, from ``GET /v1/jobs/{id}``."""
        job = self.get_job(job_id)
        if job.state in jobs.ENDED:
            return job
        for _ in self.events(job_id):
            pass
        return self.get_job(job_id)

    # -- execution ----------------------------------------------------------------------------

    def _run(self, call: Call[T]) -> T:
        return call.result(self._http.send(call.request(self._http)))

    @contextmanager
    def _stream(self, call: Call[None]) -> Iterator[httpx.Response]:
        timeout = stream_timeout(self._http.timeout, READ_TIMEOUT_SECONDS)
        with self._http.stream(
            call.method, call.path, params=call.params, headers=call.headers, timeout=timeout
        ) as response:
            if not response.is_success:
                response.read()
                call.result(response)
            try:
                yield response
            except (ValueError, SSEError) as error:  # not events (events.event_of, httpx-sse)
                raise UnexpectedAnswer.of(response, error) from error

    def _pages(self, page: Pages[Item, Cursor]) -> Iterator[Item]:
        cursor: Cursor | None = None
        while True:
            listing = self._run(page(cursor))
            yield from listing.items
            cursor = listing.next_cursor
            if cursor is None:
                return
