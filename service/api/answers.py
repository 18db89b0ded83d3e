"""JSON answers serialised once, to bytes, by Pydantic, and off the event loop when large.

A gradient of a network with millions of parameters is megabytes of JSON: turning it into text
on the event loop would stall every other request for as long (hundreds of milliseconds), so
above ``LARGE`` values the answer is built and serialised in the store's low-priority worker
threads, like the computation that produced it.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel
from starlette.responses import Response

from service.core import Network
from service.store import ModelStore

LARGE = 20_000  # numbers in an answer above which it is serialised off the event loop


def size(network: Network, rows: int, *, parameters: bool, deltas: bool, trace: bool) -> int:
    """How many numbers an answer about ``network`` and ``rows`` samples holds (about)."""
    units = sum(layer.units for layer in network.layers)
    return parameters * network.parameter_count + rows * units * (deltas + 2 * trace)


async def json_response(
    store: ModelStore,
    numbers: int,
    build: Callable[[], BaseModel],
    headers: dict[str, str] | None = None,
) -> Response:
    """The model ``build()`` makes, as JSON without its null fields."""

    def render() -> str:
        return build().model_dump_json(exclude_none=True)

    content = render() if numbers <= LARGE else await store.offload(render)
    return Response(content, media_type="application/json", headers=headers)
