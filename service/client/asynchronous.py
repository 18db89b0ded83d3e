"""The asynchronous client: :class:`AsyncClient`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TypeVar

import anyio
import httpx
from httpx_sse import SSEError

from service.client import compute, datasets, health, jobs, learn, models
from service.client.binding import async_endpoint
from service.client.call import (
    DEFAULT_URL,
    Call,
    Page,
    Timeout,
    client_headers,
    stream_timeout,
)
from service.client.errors import UnexpectedAnswer
from service.client.events import READ_TIMEOUT_SECONDS, Event, Follower, aparse_events
from service.client.types import DatasetPublic, HistoryEntryPublic, JobPublic, ModelPublic

T = TypeVar("T")
Item = TypeVar("Item")
Cursor = TypeVar("Cursor")


class AsyncClient:
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

    # -- models -------------------------------------------------------------------------------

    create_model = async_endpoint(models.create_model)
    import_model = async_endpoint(models.import_model)
    list_models = async_endpoint(models.list_models)
    get_model = async_endpoint(models.get_model)
    delete_model = async_endpoint(models.delete_model)
    get_parameters = async_endpoint(models.get_parameters)
    put_parameters = async_endpoint(models.put_parameters)
    list_versions = async_endpoint(models.list_versions)
    rollback = async_endpoint(models.rollback)
    export_model = async_endpoint(models.export_model)

    def iter_models(self, page_size: int | None = None) -> AsyncIterator[ModelPublic]:
        """Every model, by name, fetched ``GET /v1/models`` page by page."""
        return self._pages(lambda cursor: models.list_models(page_size, cursor))

    # -- compute ------------------------------------------------------------------------------

    forward = async_endpoint(compute.forward)
    forward_array = async_endpoint(compute.forward_array)
    gradient = async_endpoint(compute.gradient)
    input_gradient = async_endpoint(compute.input_gradient)
    input_gradient_arrays = async_endpoint(compute.input_gradient_arrays)
    gradient_check = async_endpoint(compute.gradient_check)
    train_step = async_endpoint(compute.train_step)
    forward_stateless = async_endpoint(compute.forward_stateless)
    gradient_stateless = async_endpoint(compute.gradient_stateless)
    input_gradient_stateless = async_endpoint(compute.input_gradient_stateless)
    train_step_stateless = async_endpoint(compute.train_step_stateless)

    # -- learn --------------------------------------------------------------------------------

    explain = async_endpoint(learn.explain)
    explain_markdown = async_endpoint(learn.explain_markdown)
    walkthrough = async_endpoint(learn.walkthrough)
    diagram_svg = async_endpoint(learn.diagram_svg)
    history_svg = async_endpoint(learn.history_svg)

    # -- datasets -----------------------------------------------------------------------------

    create_dataset = async_endpoint(datasets.create_dataset)
    upload_dataset = async_endpoint(datasets.upload_dataset)
    list_datasets = async_endpoint(datasets.list_datasets)
    get_dataset = async_endpoint(datasets.get_dataset)
    get_dataset_data = async_endpoint(datasets.get_dataset_data)
    get_dataset_arrays = async_endpoint(datasets.get_dataset_arrays)
    delete_dataset = async_endpoint(datasets.delete_dataset)

    def iter_datasets(self, page_size: int | None = None) -> AsyncIterator[DatasetPublic]:
        """Every dataset, by name, fetched ``GET /v1/datasets`` page by page."""
        return self._pages(lambda cursor: datasets.list_datasets(page_size, cursor))

    # -- jobs ---------------------------------------------------------------------------------

    train = async_endpoint(jobs.train)
    get_job = async_endpoint(jobs.get_job)
    list_jobs = async_endpoint(jobs.list_jobs)
    cancel_job = async_endpoint(jobs.cancel_job)
    resume_job = async_endpoint(jobs.resume_job)
    history = async_endpoint(jobs.history)

    def iter_jobs(
        self, page_size: int | None = None, *, model: str | None = None
    ) -> AsyncIterator[JobPublic]:
        """Every job (of ``model`` if given), newest first, fetched ``GET /v1/jobs`` page by
        page."""
        return self._pages(lambda cursor: jobs.list_jobs(page_size, cursor, model=model))

    def iter_history(
        self, name: str, page_size: int | None = None
    ) -> AsyncIterator[HistoryEntryPublic]:
        """The model's whole training history, oldest first, fetched
        ``GET /v1/models/{name}/history`` page by page."""
        return self._pages(lambda cursor: jobs.history(name, page_size, cursor))

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

    # -- operations ---------------------------------------------------------------------------

    healthz = async_endpoint(health.healthz)
    readyz = async_endpoint(health.readyz)

    # -- execution ----------------------------------------------------------------------------

    async def _run(self, call: Call[T]) -> T:
        response = await self._http.request(
            call.method,
            call.path,
            params=call.params,
            json=call.json,
            content=call.content,
            headers=call.headers,
        )
        return call.result(response)

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

    async def _pages(
        self, page: Callable[[Cursor | None], Call[Page[Item, Cursor]]]
    ) -> AsyncIterator[Item]:
        cursor: Cursor | None = None
        while True:
            listing = await self._run(page(cursor))
            for item in listing.items:
                yield item
            cursor = listing.next_cursor
            if cursor is None:
                return
