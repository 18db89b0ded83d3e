"""Liveness and readiness through the client."""

from __future__ import annotations

import pytest

from service.client import AsyncClient, Client


def test_a_running_server_is_alive_and_ready(client: Client) -> None:
    assert client.healthz().status == "ok"
    ready = client.readyz()
    assert (ready.status, ready.storage) == ("ready", "ok")


@pytest.mark.anyio
async def test_async_health(aclient: AsyncClient) -> None:
    assert (await aclient.healthz()).status == "ok"
    assert (await aclient.readyz()).status == "ready"
