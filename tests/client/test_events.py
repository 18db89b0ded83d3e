"""Server-Sent Events: parsing, and following a job through broken and closed connections
(made-up streams on an ``httpx.MockTransport``), resuming with ``Last-Event-ID``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from service.client import AsyncClient, Client, NotFound, UnexpectedAnswer
from service.client import events as events_module
from service.client.events import Event, Follower, parse_events

JOB = "0661job"


def stream(text: str) -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, text=text)


def test_parse_events_reads_ids_kinds_and_json_data() -> None:
    text = (
        "retry: 1000\n\n"
        ": keep-alive\n\n"
        'id: 1\nevent: state\ndata: {"state": "queued"}\n\n'
        'id: 2\nevent: progress\ndata: {"step": 4,\ndata: "loss": 0.5}\n\n'
        'id: 3\ndata:{"state":"succeeded"}\n\n'
        "id: 4\nevent: ignored-without-data\n\n"
    )
    parsed = list(parse_events(stream(text)))
    assert parsed == [
        Event(1, "state", {"state": "queued"}),
        Event(2, "progress", {"step": 4, "loss": 0.5}),
        Event(3, "message", {"state": "succeeded"}),
    ]


def test_an_unfinished_last_event_is_not_yielded() -> None:
    assert list(parse_events(stream('id: 1\nevent: end\ndata: {"state": "failed"}'))) == []


@pytest.mark.parametrize("data", ["[1, 2]", "not json", '"text"'])
def test_an_event_whose_data_is_no_json_object_is_a_value_error(data: str) -> None:
    with pytest.raises(ValueError):
        list(parse_events(stream(f"id: 1\nevent: state\ndata: {data}\n\n")))


def test_follower_pauses_longer_and_gives_up_after_its_reconnects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events_module, "PAUSE_SECONDS", 0.25)
    follower = Follower(last_event_id=5, reconnects=6)
    pauses = [follower.failed(httpx.ReadError("x")) for _ in range(5)]
    assert pauses == [0.5, 1.0, 2.0, 4.0, events_module.MAX_PAUSE_SECONDS]
    assert follower.failed() == events_module.MAX_PAUSE_SECONDS  # an empty stream: no error
    with pytest.raises(httpx.ReadError, match="the eighth"):
        follower.failed(httpx.ReadError("the eighth"))
    follower.seen(Event(6, "progress", {}))
    assert (follower.last, follower.failures, follower.closed()) == (6, 0, "again")
    follower.seen(Event(7, "end", {}))
    assert follower.closed() == "done"
    follower.connecting()
    assert follower.closed() == "check"


# -- following a job through a made-up server ------------------------------------------------


def sse(*events: tuple[int, str, dict[str, Any]]) -> bytes:
    return b"".join(
        f"id: {i}\nevent: {kind}\ndata: {json.dumps(data)}\n\n".encode() for i, kind, data in events
    )


def job_json(state: str) -> dict[str, Any]:
    return {
        "id": JOB, "model": "m", "state": state, "dataset": None, "rows": 4, "epochs": 2,
        "batch_size": 2, "learning_rate": 0.1, "seed": 1, "validation_split": None,
        "optimizer": {"kind": "sgd", "learning_rate": 0.1, "momentum": 0.0, "nesterov": False,
                      "weight_decay": 0.0},
        "patience": None, "steps_per_epoch": 2, "total_steps": 4, "epoch": 2, "step": 4,
        "loss": 0.1, "best_loss": 0.1, "validation_loss": None, "eta_seconds": None,
        "stopped_early": False, "version": 3, "checkpoint": None, "cancel_requested": False,
        "error": None, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        "started_at": None, "finished_at": None, "heartbeat_at": None,
    }  # fmt: skip


class Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that sends ``chunk`` and then, with ``error``, breaks."""

    def __init__(self, chunk: bytes, error: Exception | None = None) -> None:
        self.chunk, self.error = chunk, error

    def __iter__(self) -> Iterator[bytes]:
        yield self.chunk
        if self.error is not None:
            raise self.error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.chunk
        if self.error is not None:
            raise self.error


class Script:
    """A made-up server: answers the requests for the job's events from a list of steps (a
    response body, or an exception to raise), and GETs of the job with ``states``."""

    def __init__(self, *steps: Broken | Exception, states: tuple[str, ...] = ("running",)) -> None:
        self.steps = list(steps)
        self.states = list(states)  # of the GETs in turn, the last one repeated
        self.last_event_ids: list[str] = []
        self.gets = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/v1/jobs/{JOB}":
            self.gets += 1
            state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            return httpx.Response(200, json=job_json(state))
        assert request.url.path == f"/v1/jobs/{JOB}/events"
        assert request.headers["accept"] == "text/event-stream"
        self.last_event_ids.append(request.headers["last-event-id"])
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, stream=step)


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_module, "PAUSE_SECONDS", 0.0)


def broken_then_refused_then_ended() -> Script:
    return Script(
        Broken(
            b"retry: 1000\n\n" + sse((1, "state", {"state": "running"}), (2, "progress", {})),
            httpx.ReadError("connection reset"),
        ),
        httpx.ConnectError("refused"),
        Broken(sse((3, "progress", {"step": 4}), (4, "end", {"state": "succeeded"}))),
    )


def test_a_broken_stream_resumes_after_the_last_event_seen() -> None:
    script = broken_then_refused_then_ended()
    with Client("http://test", transport=httpx.MockTransport(script)) as client:
        followed = list(client.events(JOB))
    assert [e.id for e in followed] == [1, 2, 3, 4]
    assert followed[-1] == Event(4, "end", {"state": "succeeded"})
    assert script.last_event_ids == ["0", "2", "2"]
    assert script.steps == [] and script.gets == 0


def test_a_stream_closed_early_is_reconnected_at_once() -> None:
    script = Script(
        Broken(sse((8, "progress", {}))),  # the server shut down: no end event
        Broken(sse((9, "end", {"state": "interrupted"}))),
    )
    with Client("http://test", transport=httpx.MockTransport(script)) as client:
        assert [e.id for e in client.events(JOB, last_event_id=7)] == [8, 9]
    assert script.last_event_ids == ["7", "8"] and script.gets == 0


def test_a_replay_goes_on_past_the_end_of_an_earlier_run() -> None:
    script = Script(
        Broken(
            sse(
                (1, "state", {"state": "running"}),
                (2, "end", {"state": "interrupted"}),
                (3, "state", {"state": "queued"}),
                (4, "end", {"state": "succeeded"}),
            )
        )
    )
    with Client("http://test", transport=httpx.MockTransport(script)) as client:
        assert [e.id for e in client.events(JOB)] == [1, 2, 3, 4]
    assert script.last_event_ids == ["0"]


def test_no_event_after_the_end_stops_once_the_job_is_seen_ended() -> None:
    script = Script(Broken(b"retry: 1000\n\n"), states=("succeeded",))
    with Client("http://test", transport=httpx.MockTransport(script)) as client:
        assert list(client.events(JOB, last_event_id=12)) == []
    assert script.gets == 1


def test_an_empty_stream_of_a_running_job_is_reconnected() -> None:
    script = Script(Broken(b""), Broken(sse((3, "end", {"state": "succeeded"}))))
    with Client("http://test", transport=httpx.MockTransport(script)) as client:
        assert [e.kind for e in client.events(JOB, last_event_id=2)] == ["end"]
    assert script.last_event_ids == ["2", "2"] and script.gets == 1


def test_transport_errors_are_raised_after_the_reconnects() -> None:
    refusals = [httpx.ConnectError(f"refused {i}") for i in range(events_module.RECONNECTS + 1)]
    script = Script(*refusals)
    with (
        Client("http://test", transport=httpx.MockTransport(script)) as client,
        pytest.raises(httpx.ConnectError, match=f"refused {events_module.RECONNECTS}"),
    ):
        list(client.events(JOB))
    assert script.steps == []


def test_wait_follows_the_events_then_reads_the_job() -> None:
    script = broken_then_refused_then_ended()
    script.states = ["running", "succeeded"]
    with Client("http://test", transport=httpx.MockTransport(script)) as client:
        final = client.wait(JOB)
    assert final.state == "succeeded" and script.gets == 2 and script.steps == []


def test_wait_on_an_ended_job_reads_it_once() -> None:
    script = Script(states=("failed",))
    with Client("http://test", transport=httpx.MockTransport(script)) as client:
        assert client.wait(JOB).state == "failed"
    assert script.gets == 1 and script.last_event_ids == []


def test_an_error_answer_to_the_stream_is_raised(client: Client) -> None:
    with pytest.raises(NotFound) as info:
        list(client.events("no-such-job"))
    assert info.value.type == "/problems/job-not-found"


@pytest.mark.anyio
async def test_async_events_resume_after_the_last_event_seen() -> None:
    script = broken_then_refused_then_ended()
    async with AsyncClient("http://test", transport=httpx.MockTransport(script)) as client:
        followed = [e.id async for e in client.events(JOB)]
    assert followed == [1, 2, 3, 4]
    assert script.last_event_ids == ["0", "2", "2"]


@pytest.mark.anyio
async def test_async_no_event_after_the_end_stops() -> None:
    script = Script(Broken(b""), states=("cancelled",))
    async with AsyncClient("http://test", transport=httpx.MockTransport(script)) as client:
        assert [e async for e in client.events(JOB, last_event_id=3)] == []
    assert script.gets == 1


@pytest.mark.anyio
async def test_async_wait_follows_the_events_then_reads_the_job() -> None:
    script = broken_then_refused_then_ended()
    script.states = ["queued", "succeeded"]
    async with AsyncClient("http://test", transport=httpx.MockTransport(script)) as client:
        assert (await client.wait(JOB)).state == "succeeded"
    assert script.gets == 2 and script.last_event_ids == ["0", "2", "2"]


@pytest.mark.anyio
async def test_a_success_that_is_no_event_stream_is_an_unexpected_answer_not_retried() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, json={"not": "a stream"})

    with (
        Client("http://test", transport=httpx.MockTransport(handler)) as client,
        pytest.raises(UnexpectedAnswer),
    ):
        list(client.events(JOB))
    async with AsyncClient("http://test", transport=httpx.MockTransport(handler)) as aclient:
        with pytest.raises(UnexpectedAnswer):
            [e async for e in aclient.events(JOB)]
    assert calls == [f"/v1/jobs/{JOB}/events"] * 2
