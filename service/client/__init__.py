"""A typed Python client of the service's ``/v1`` API, on httpx: :class:`Client` (blocking)
and :class:`AsyncClient` (asyncio), with the same methods.

::

    from service.client import Client, NotFound

    with Client("http://127.0.0.1:8000") as client:
        model = client.get_model("seed")               # a ModelPublic
        outputs = client.forward("seed", [[0.23, 0.55]]).outputs

Answers are the service's own response models (:mod:`service.api.schemas`); every error
answer raises an :class:`ApiError` subclass chosen by its status (see
:mod:`service.client.errors`).
"""

from service.client.asynchronous import AsyncClient
from service.client.errors import (
    ApiError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    StorageFull,
    Unauthorized,
    Unavailable,
)
from service.client.events import Event
from service.client.sync import Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "Conflict",
    "Event",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "StorageFull",
    "Unauthorized",
    "Unavailable",
]
