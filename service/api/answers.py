"""Large bodies and answers handled off the event loop; JSON answers serialised once, by
Pydantic.

A gradient of a network with millions of parameters is megabytes of JSON: turning it into text
on the event loop would stall every other request for as long (hundreds of milliseconds), so
above ``LARGE`` values the answer is built and serialised in the store's low-priority worker
threads, like the computation that produced it; binary bodies above ``LARGE_BODY`` bytes are
decoded there too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from service.operations import sizes
from service.operations.files import Written
from service.store import ModelStore

T = TypeVar("T")
_PIECE = 4096  # names of the named notation written at a time


class JSONAnswer(Response):
    """A JSON answer, its raw headers written directly: what ``Response.__init__`` works out
    for any answer (whether the body needs a charset, which headers are given) is known here,
    and costs as much as the serialisation of a small answer."""

    media_type = "application/json"

    def __init__(self, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]
        if headers:
            self.raw_headers += [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
            ]


async def json_response(
    store: ModelStore,
    numbers: int,
    build: Callable[[], BaseModel | dict[str, Any]],
    headers: dict[str, str] | None = None,
) -> Response:
    """The answer ``build()`` makes, as JSON without its null fields: a response model, or for
    the hottest answers the same fields as a plain dict without nulls (serialised in a
    microsecond, where constructing the model takes several)."""

    if numbers <= sizes.LARGE:
        answer = build()
        if isinstance(answer, BaseModel):
            content = answer.__pydantic_serializer__.to_json(answer, exclude_none=True)
            return JSONAnswer(content, headers)
        return JSONAnswer(to_json(answer), headers)
    # Large: built, written and encoded in the worker threads a block at a time, and streamed,
    # so that neither a thread holding the interpreter lock nor one huge write to the socket
    # holds up the event loop for long.
    blocks = _blocks(build)

    async def body() -> AsyncIterator[bytes]:
        while (block := await store.offload(partial(next, blocks, b""))) != b"":
            yield block
            await asyncio.sleep(0)  # the other requests' turn between blocks

    return StreamingResponse(body(), media_type="application/json", headers=headers)


def _blocks(build: Callable[[], BaseModel | dict[str, Any]]) -> Iterator[bytes]:
    """The JSON of ``build()`` in blocks of about ``BLOCK`` bytes."""
    pending: list[str] = []
    size = 0
    for piece in chunks(build()):
        pending.append(piece)
        size += len(piece)
        if size >= sizes.BLOCK:
            yield "".join(pending).encode()
            pending, size = [], 0
    if pending:
        yield "".join(pending).encode()


async def binary_response(
    store: ModelStore,
    numbers: int,
    render: Callable[[], bytes],
    media_type: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """The file ``render()`` writes; with many numbers written in a worker thread and sent a
    block at a time, so that no single write of megabytes holds up the event loop."""
    if numbers <= sizes.LARGE:
        return Response(render(), media_type=media_type, headers=headers)
    content = memoryview(await store.offload(render))

    async def body() -> AsyncIterator[memoryview]:
        for start in range(0, len(content), sizes.BLOCK):
            yield content[start : start + sizes.BLOCK]
            await asyncio.sleep(0)  # the other requests' turn between blocks

    return StreamingResponse(body(), media_type=media_type, headers=headers)


def file_response(file: Written, media_type: str, headers: dict[str, str]) -> Response:
    """The ``file`` an operation wrote (:func:`service.operations.files.write`): whole, or a
    block at a time with its ``Content-Length``, so that no single write of megabytes holds up
    the event loop."""
    if isinstance(file.content, bytes):
        return Response(file.content, media_type=media_type, headers=headers)
    parts = file.content

    async def body() -> AsyncIterator[bytes | memoryview]:
        for part in parts:
            yield part
            await asyncio.sleep(0)  # the other requests' turn between blocks

    headers = {**headers, "Content-Length": str(file.length)}
    return StreamingResponse(body(), media_type=media_type, headers=headers)


def chunks(value: Any) -> Iterator[str]:
    """The JSON of ``value`` (an answer model: fields, lists, dicts and numbers) in pieces of a
    row or so each, every piece written by Pydantic's serialiser: the same text as
    ``model_dump_json(exclude_none=True)``, but a worker thread writing it lets go of the
    interpreter lock between pieces, so the event loop is never held up for long."""
    if isinstance(value, BaseModel):
        fields = ((k, getattr(value, k)) for k in type(value).model_fields)
        yield from _object((k, v) for k, v in fields if v is not None)
    elif isinstance(value, dict) and any(_nested(v) for v in value.values()):
        yield from _object(value.items())
    elif isinstance(value, dict) and len(value) > _PIECE:  # the named notation of a large model
        items = list(value.items())
        yield "{"
        for start in range(0, len(items), _PIECE):
            text = to_json(dict(items[start : start + _PIECE])).decode()
            yield ("," if start else "") + text[1:-1]
        yield "}"
    elif isinstance(value, list) and value and _nested(value[0]):
        yield "["
        for i, item in enumerate(value):
            if i:
                yield ","
            yield from chunks(item)
        yield "]"
    else:
        yield to_json(value).decode()


def _object(items: Iterable[tuple[str, Any]]) -> Iterator[str]:
    yield "{"
    for i, (key, item) in enumerate(items):
        yield ("," if i else "") + to_json(key).decode() + ":"
        yield from chunks(item)
    yield "}"


def _nested(value: Any) -> bool:
    return isinstance(value, BaseModel | list | dict)


async def decoded(store: ModelStore, request: Request, decode: Callable[[bytes], T]) -> T:
    """``decode`` of the request's body; a large body is joined and decoded in a worker thread
    (joining megabytes is a copy the event loop need not wait for). A model file to import is
    read where :func:`service.operations.models.imported` says."""
    chunks = [chunk async for chunk in request.stream()]
    if not sizes.large_body(chunks):
        return decode(b"".join(chunks))
    return await store.offload(lambda: decode(b"".join(chunks)))
