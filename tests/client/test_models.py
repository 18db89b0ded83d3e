"""The registry through the client: create, read, list page by page, parameters in both
notations and by version, versions, rollback, delete, and export/import round trips."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

import httpx
import numpy as np
import pytest

from service.api.app import create_app
from service.client import AsyncClient, Client, LayeredParameters, NotFound
from service.settings import Settings
from tests.api.support import (
    AFTER_STEP,
    SEED_INPUTS,
    SEED_NETWORK,
    SEED_PARAMETERS,
    SEED_PARAMETERS_NAMED,
    SEED_TARGETS,
    assert_close,
)
from tests.client.conftest import Unique

SMALL = {
    "inputs": 3,
    "layers": [{"units": 4, "activation": "tanh"}, {"units": 2, "activation": "softmax"}],
    "loss": "cross_entropy",
}


def test_create_returns_the_model_and_get_reads_it_back(client: Client, unique: Unique) -> None:
    name = unique("seed")
    created = client.create_model(
        name,
        SEED_NETWORK,
        parameters=SEED_PARAMETERS_NAMED,
        description="the blog's network",
        tags=["seed", "blog"],
    )
    assert (created.name, created.version, created.parameter_count) == (name, 1, 25)
    assert [layer.activation for layer in created.network.layers] == ["relu", "relu", "sigmoid"]
    assert created.optimizer.kind == "sgd" and created.init is None
    fetched = client.get_model(name)
    assert fetched == created
    assert fetched.tags == ["seed", "blog"] and fetched.description == "the blog's network"


def test_parameters_in_both_notations_equal_the_seeds(client: Client, unique: Unique) -> None:
    name = unique("seed")
    client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)
    layered = client.get_parameters(name)
    assert isinstance(layered.parameters, LayeredParameters)
    assert_close(layered.parameters.model_dump(), SEED_PARAMETERS)
    named = client.get_parameters(name, notation="named")
    assert named.parameters == SEED_PARAMETERS_NAMED and named.version == 1


def test_init_draws_reproducible_parameters(client: Client, unique: Unique) -> None:
    a, b = unique("init-a"), unique("init-b")
    first = client.create_model(a, SMALL, init={"scheme": "he_normal", "seed": 11})
    client.create_model(b, SMALL, init={"scheme": "he_normal", "seed": 11})
    assert first.init is not None and (first.init.scheme, first.init.seed) == ("he_normal", 11)
    assert client.get_parameters(a).parameters == client.get_parameters(b).parameters


def test_put_versions_rollback_and_older_versions(client: Client, unique: Unique) -> None:
    name = unique("versions")
    client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)
    put = client.put_parameters(name, AFTER_STEP, if_match=1, notation="named")
    assert put.version == 2 and isinstance(put.parameters, dict)
    # a response's parameters (a Pydantic model) can be sent back as they are
    original = client.get_parameters(name, version=1).parameters
    assert client.put_parameters(name, original).version == 3
    assert [v.version for v in client.list_versions(name).items] == [3, 2, 1]
    rolled = client.rollback(name, 2, if_match=3)
    assert rolled.version == 4
    current = client.get_parameters(name).parameters
    assert isinstance(current, LayeredParameters)
    assert_close(current.model_dump(), AFTER_STEP)
    reasons = [v.reason for v in client.list_versions(name).items]
    assert len(reasons) == 4 and all(reasons)


def test_delete_with_if_match_removes_the_model(client: Client, unique: Unique) -> None:
    name = unique("deleted")
    client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)
    assert client.delete_model(name, if_match=1) is None
    with pytest.raises(NotFound):
        client.get_model(name)
    with pytest.raises(NotFound):
        client.delete_model(name)


def test_iter_models_walks_every_page_in_name_order(client: Client, unique: Unique) -> None:
    names = [unique(f"page-{i}") for i in range(5)]
    for name in reversed(names):
        client.create_model(name, SMALL, init={"seed": 1})
    page = client.list_models(limit=2)
    assert len(page.items) == 2 and page.next_cursor == page.items[-1].name
    listed = [m.name for m in client.iter_models(page_size=2)]
    assert listed == sorted(listed) and len(set(listed)) == len(listed)
    assert [n for n in listed if n in names] == names
    assert len(listed) == client.list_models().total


def test_json_export_imports_as_the_same_model(client: Client, unique: Unique) -> None:
    name, copy = unique("exported"), unique("copy")
    client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS, tags=["x"])
    data = client.export_model(name)
    assert json.loads(data)["name"] == name
    imported = client.import_model(data, "json", name=copy)
    assert (imported.name, imported.tags) == (copy, ["x"])
    assert client.get_parameters(copy).parameters == client.get_parameters(name).parameters


@pytest.mark.parametrize("format", ["npz", "onnx"])
def test_file_exports_import_bit_for_bit(
    client: Client, unique: Unique, format: Literal["npz", "onnx"]
) -> None:
    name, copy = unique("file"), unique(f"from-{format}")
    client.create_model(name, SMALL, init={"seed": 4})
    client.train_step(name, [[0.1, 0.2, 0.3]], [[1.0, 0.0]], learning_rate=0.5)  # version 2
    data = client.export_model(name, format, version=1)
    imported = client.import_model(data, format, name=copy)
    assert (imported.network.loss, imported.version) == ("cross_entropy", 1)
    first = client.get_parameters(name, version=1).parameters
    assert client.get_parameters(copy).parameters == first
    X = np.array([[0.5, -0.25, 2.0], [1.0, 1.0, 1.0]])
    expected = client.forward_stateless(SMALL, first, X).outputs
    assert np.array_equal(client.forward_array(copy, X), np.array(expected))


def test_import_takes_the_loss_given(client: Client, unique: Unique) -> None:
    name, copy = unique("loss"), unique("loss-copy")
    client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)
    data = client.export_model(name, "onnx")
    imported = client.import_model(data, "onnx", name=copy, loss="mean_squared_error")
    assert imported.network.loss == "mean_squared_error"
    gradient = client.gradient(copy, SEED_INPUTS, SEED_TARGETS)
    assert_close(gradient.loss, (0.01 - 0.8034818811389179) ** 2)


# -- async ----------------------------------------------------------------------------------


class Counting(httpx.ASGITransport):
    """The ASGI transport, remembering the query of every request."""

    def __init__(self, app: object) -> None:
        super().__init__(app=app)  # type: ignore[arg-type]
        self.queries: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.queries.append(request.url.query.decode())
        return await super().handle_async_request(request)


@pytest.mark.anyio
async def test_async_iter_models_fetches_one_page_per_cursor() -> None:
    app = create_app(Settings(registry="memory://"))
    transport = Counting(app)
    names = [f"m{i}" for i in range(5)]
    async with app.router.lifespan_context(app), AsyncClient(transport=transport) as client:
        for name in names:
            await client.create_model(name, SMALL, init={"seed": 1})
        transport.queries.clear()
        listed = [m.name async for m in client.iter_models(page_size=2)]
    assert listed == names
    assert transport.queries == ["limit=2", "limit=2&cursor=m1", "limit=2&cursor=m3"]


@pytest.mark.anyio
async def test_async_registry_round_trip(aclient: AsyncClient) -> None:
    created = await aclient.create_model("seed", SEED_NETWORK, parameters=SEED_PARAMETERS)
    assert created.version == 1
    assert (await aclient.get_model("seed")) == created
    assert (await aclient.get_parameters("seed", notation="named")).parameters == (
        SEED_PARAMETERS_NAMED
    )
    await aclient.put_parameters("seed", AFTER_STEP, if_match=1)
    assert [v.version for v in (await aclient.list_versions("seed")).items] == [2, 1]
    assert (await aclient.rollback("seed", 1)).version == 3
    data = await aclient.export_model("seed", "npz")
    await aclient.import_model(data, "npz", name="copy")
    models: Sequence[str] = [m.name for m in (await aclient.list_models()).items]
    assert models == ["copy", "seed"]
    await aclient.delete_model("seed", if_match=3)
    assert [m.name async for m in aclient.iter_models()] == ["copy"]
