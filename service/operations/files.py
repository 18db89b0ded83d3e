"""A file written for an answer (a model's export, a dataset's arrays): inline when small, else
in a worker process and handed back in blocks to send one at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from service.operations import sizes
from service.store import ModelStore


@dataclass(frozen=True)
class Written:
    """A file as written: ``content`` whole (written inline), or in blocks of about ``BLOCK``
    bytes to send one at a time (written in a worker process), ``length`` bytes in all."""

    content: bytes | list[bytes | memoryview]
    length: int


def blocks(pieces: Iterable[str]) -> list[bytes]:
    """``pieces`` of text joined and encoded a block of about ``BLOCK`` bytes at a time (one
    join of megabytes would hold the interpreter lock for as long)."""
    done: list[bytes] = []
    pending: list[str] = []
    size = 0
    for piece in pieces:
        pending.append(piece)
        size += len(piece)
        if size >= sizes.BLOCK:
            done.append("".join(pending).encode())
            pending, size = [], 0
    done.append("".join(pending).encode())
    return done


async def write(
    store: ModelStore, numbers: int, render: Callable[[], bytes | list[bytes]]
) -> Written:
    """The file ``render()`` writes; with many numbers written in a worker process (``render``
    a partial that pickles) and cut in blocks, so that no single write of megabytes holds up
    the event loop."""
    if numbers <= sizes.LARGE:
        content = render()
        whole = content if isinstance(content, bytes) else b"".join(content)
        return Written(whole, len(whole))
    rendered = await store.isolate(render)  # from a worker process: memoryviews, when large
    if isinstance(rendered, bytes | memoryview):
        view = memoryview(rendered)
        parts: list[bytes | memoryview] = [
            view[start : start + sizes.BLOCK] for start in range(0, len(view), sizes.BLOCK)
        ]
    else:
        parts = list(rendered)
    return Written(parts, sum(len(part) for part in parts))
