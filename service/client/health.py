"""The service's liveness and readiness."""

from __future__ import annotations

from service.client.call import Call, schema
from service.client.types import Health, Readiness


def healthz() -> Call[Health]:
    """``GET /healthz``: ``status`` ``"ok"`` while the process serves requests."""
    return Call("GET", "/healthz", schema(Health))


def readyz() -> Call[Readiness]:
    """``GET /readyz``: ``status`` ``"ready"`` when the registry answers, and ``storage``
    (``"ok"``, or ``"full"`` while writes get :class:`StorageFull`); :class:`Unavailable`
    while it cannot be reached."""
    return Call("GET", "/readyz", schema(Readiness))
