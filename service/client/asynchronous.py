"""The asynchronous client: :class:`AsyncClient`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TypeVar

import anyio
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
from service.client.events import READ_TIMEOUT_SECONDS, Event, Follower, aparse_events
from service.client.methods import Methods
from service.client.types import JobPublic

T = TypeVar("T")
Item = TypeVar("Item")
Cursor = TypeVar("Cursor")


class AsyncClient(Methods):
    """A client of the service's ``/v1`` API over HTTP, for asyncio (or trio).

    ``async with AsyncClient(...) as client: await client.forward(...)``; the same methods
    as :class:`~service.client.Client`, as coroutines and async iterators.
    Answers are the client's own types (:mod:`service.client.types`); an error answer raises
    the :class:`~service.client.ApiError` of its status (a success that does not read
    :class:`~service.client.UnexpectedAnswer`), a transport failure httpx's error.
    ``transport`` replaces httpx's (tests pass ``httpx.ASGITransport(app)``).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: Timeout = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=client_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying httpx client, for what this one does not cover (``/v2``, metrics)."""
        return self._http

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- jobs ---------------------------------------------------------------------------------

    async def events(self, job_id: str, last_event_id: int = 0) -> AsyncIterator[Event]:
        """``GET /v1/jobs/{id}/events``: the job's events after ``last_event_id`` as they
        happen, until the job has stopped, reconnecting as
        :meth:`Client.events <service.client.Client.events>` does. Leaving the loop early?
        Close the iterator (``contextlib.aclosing``) to close its connection at once."""
        follower = Follower(last_event_id)
        while True:
            follower.connecting()
            try:
                async with self._stream(jobs.job_events(job_id, follower.last)) as response:
                    async for event in aparse_events(response):
                        follower.seen(event)
                        yield event
                after = follower.closed()
                if after == "done":
                    return
                if after == "again":
                    continue
                if (await self.get_job(job_id)).state in jobs.ENDED:
                    return
                pause = follower.failed()
            except httpx.TransportError as error:
                pause = follower.failed(error)
            await anyio.sleep(pause)

    async def wait(self, job_id: str) -> JobPublic:
        """Follow the job's events until it ends (succeeded, failed, cancelled or interrupted);
        the job then, from ``GET /v1/jobs/{id}``."""
        job = await self.get_job(job_id)
        if job.state in jobs.ENDED:
            return job
        async for _ in self.events(job_id):
            pass
        return await self.get_job(job_id)

    # -- execution ----------------------------------------------------------------------------

    async def _run(self, call: Call[T]) -> T:
        return call.result(await self._http.send(call.request(self._http)))

    @asynccontextmanager
    async def _stream(self, call: Call[None]) -> AsyncIterator[httpx.Response]:
        timeout = stream_timeout(self._http.timeout, READ_TIMEOUT_SECONDS)
        async with self._http.stream(
            call.method, call.path, params=call.params, headers=call.headers, timeout=timeout
        ) as response:
            if not response.is_success:
                await response.aread()
                call.result(response)
            try:
                yield response
            except (ValueError, SSEError) as error:  # not events (events.event_of, httpx-sse)
                raise UnexpectedAnswer.of(response, error) from error

    async def _pages(self, page: Pages[Item, Cursor]) -> AsyncIterator[Item]:
        cursor: Cursor | None = None
        while True:
            listing = await self._run(page(cursor))
            for item in listing.items:
                yield item
            cursor = listing.next_cursor
            if cursor is None:
                return
