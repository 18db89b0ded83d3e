"""Large answers are serialised off the event loop, and equal what the small path gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

from service.api import answers
from service.operations import sizes
from service.store import ModelStore

pytestmark = pytest.mark.anyio

WIDE = {
    "name": "wide",
    "network": {
        "inputs": 100,
        "layers": [{"units": 300, "activation": "tanh"}, {"units": 1, "activation": "sigmoid"}],
        "loss": "half_squared_error",
    },
    "init": {"seed": 1},
}
SAMPLE = {"inputs": np.linspace(-1, 1, 100).reshape(1, 100).tolist(), "targets": [[0.3]]}


async def test_a_large_gradient_is_serialised_in_a_worker_thread_with_the_same_answer(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await client.post("/v1/models", json=WIDE)).status_code == 201
    offloaded: list[str] = []
    original = ModelStore.offload

    async def spy(self: ModelStore, fn: Callable[[], Any]) -> Any:
        offloaded.append(getattr(fn, "__qualname__", "?"))
        return await original(self, fn)

    monkeypatch.setattr(ModelStore, "offload", spy)
    large = await client.post("/v1/models/wide/gradient", json=SAMPLE)
    assert large.status_code == 200, large.text
    assert offloaded  # 30,601 numbers: above sizes.LARGE
    assert large.headers["etag"] == '"1"'
    offloaded.clear()
    parameters = await client.get("/v1/models/wide/parameters")
    assert offloaded
    offloaded.clear()
    named = await client.get("/v1/models/wide/parameters", params={"notation": "named"})
    assert offloaded
    offloaded.clear()

    monkeypatch.setattr(sizes, "LARGE", 10**9)  # now everything is small: inline
    small = await client.post("/v1/models/wide/gradient", json=SAMPLE)
    assert not offloaded
    # The large answers are written in pieces, yet byte for byte what the small path writes.
    assert small.content == large.content
    assert (await client.get("/v1/models/wide/parameters")).content == parameters.content
    again = await client.get("/v1/models/wide/parameters", params={"notation": "named"})
    assert again.content == named.content
    assert len(named.json()["parameters"]) == 30_601
    body = large.json()
    assert set(body) == {"model", "version", "loss", "gradients"}
    assert len(body["gradients"]["layers"][0]["weights"]) == 100


def test_a_large_answer_is_sent_in_blocks_that_join_to_its_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from service.api.schemas.compute import GradientResponse
    from service.api.schemas.networks import LayeredParameters, LayerParameters

    W = np.arange(12.0).reshape(4, 3) / 7
    answer = GradientResponse.model_construct(
        model="m",
        version=3,
        loss=0.25,
        gradients=LayeredParameters.model_construct(
            layers=[LayerParameters.model_construct(weights=W.tolist(), biases=[0.5, -1e-5, 3.0])]
        ),
        deltas=None,
    )
    monkeypatch.setattr(sizes, "BLOCK", 16)
    blocks = list(answers._blocks(lambda: answer))
    assert len(blocks) > 3
    assert all(len(b) < 16 + 100 for b in blocks)
    assert b"".join(blocks) == answer.model_dump_json(exclude_none=True).encode()
