"""The service's liveness and readiness."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from service.client.call import Call

if TYPE_CHECKING:
    from service.api.routes.health import Health, Readiness


def healthz() -> Call[Health]:
    """``GET /healthz``: ``status`` ``"ok"`` while the process serves requests."""
    return Call("GET", "/healthz", _health)


def readyz() -> Call[Readiness]:
    """``GET /readyz``: ``status`` ``"ready"`` when the registry answers, and ``storage``
    (``"ok"``, or ``"full"`` while writes get :class:`StorageFull`); :class:`Unavailable`
    while it cannot be reached."""
    return Call("GET", "/readyz", _readiness)


def _health(response: httpx.Response) -> Health:
    # Imported here: the route module brings in FastAPI and the server's store, which a client
    # has no other use for.
    from service.api.routes.health import Health

    return Health.model_validate_json(response.content)


def _readiness(response: httpx.Response) -> Readiness:
    from service.api.routes.health import Readiness

    return Readiness.model_validate_json(response.content)
