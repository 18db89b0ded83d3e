"""The sizes above which work on a request's data leaves the event loop, for the operations and
the transports alike: drawing, converting, writing or serialising that many numbers, or joining
and decoding that many bytes, would hold up every other request for as long. Read them as
``sizes.LARGE`` where they are used (tests change them for a whole app at once)."""

from __future__ import annotations

from collections.abc import Sequence

LARGE = 20_000  # numbers (in an answer, or parameters made or converted) worked off the loop
LARGE_BODY = 1 << 20  # bytes of a body above which it is joined and decoded off the event loop
BLOCK = 256 << 10  # bytes of a large answer or file sent at a time


def large_body(chunks: Sequence[bytes]) -> bool:
    """Whether a body in ``chunks`` is too large to join and decode on the event loop."""
    return sum(map(len, chunks)) > LARGE_BODY
