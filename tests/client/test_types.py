"""The client's own answer types: importing the client brings in nothing of the server; a
server that adds fields, or holds models larger than the client's environment would allow, is
read all the same; an answer that does not read is an :class:`ApiError`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import ValidationError

from service.api.app import create_app
from service.api.schemas.models import ModelPublic as ServerModelPublic
from service.client import (
    ApiError,
    AsyncClient,
    Client,
    LayeredParameters,
    ModelPublic,
    UnexpectedAnswer,
)
from tests.api.support import SEED_INPUTS, SEED_NETWORK, SEED_PARAMETERS, SEED_TARGETS
from tests.client.conftest import Unique, settings
from tests.servers import ROOT, Server

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ADDED = "added_by_a_newer_server"
#: The members of these are names (``w1``, ``n3``, ``velocity``), not fields: a newer server
#: adds no member to them.
MAPS = {"parameters", "gradients", "nodes", "slots"}


def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def test_importing_the_client_imports_nothing_of_the_server() -> None:
    code = (
        "import json, sys, service.client, service.cli_train\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    result = run(code)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    assert {"service.client", "service.client.types", "service.cli_train"} <= loaded
    server = {
        m
        for m in loaded
        if m.startswith(("service.api", "service.core", "service.settings", "service.memory"))
        or m.split(".")[0] in ("fastapi", "starlette", "pydantic_settings")
        or m.startswith("service.jobs")
    }
    assert server == set()


# -- a newer server: every answer with a field the client does not know ----------------------


def added(value: Any, key: str | None = None) -> Any:
    """``value`` with a new field in every object of the answer (but in maps of names)."""
    if isinstance(value, list):
        return [added(item) for item in value]
    if isinstance(value, dict):
        fields = {k: added(v, k) for k, v in value.items()}
        if key in MAPS and "layers" not in value:
            return fields
        return {**fields, ADDED: {"a": [1, "two"]}}
    return value


def newer(app: ASGIApp, answers: list[dict[str, Any]]) -> ASGIApp:
    """``app`` answering JSON with :func:`added` fields; ``answers`` collects what it sent."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                kind = dict(message["headers"]).get(b"content-type", b"")
                if kind.startswith(b"application/json"):
                    start = message
                    return
            elif start is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                answer = added(json.loads(b"".join(chunks)))
                answers.append(answer)
                body = json.dumps(answer).encode()
                headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await app(scope, receive, rewrite)

    return wrapped


@pytest.mark.anyio
async def test_a_server_that_adds_fields_to_every_answer_is_read() -> None:
    answers: list[dict[str, Any]] = []
    app = create_app(settings())
    transport = httpx.ASGITransport(app=newer(app, answers))
    x, t = SEED_INPUTS, SEED_TARGETS
    async with (
        app.router.lifespan_context(app),
        AsyncClient("http://test", transport=transport) as c,
    ):
        model = await c.create_model("m", SEED_NETWORK, parameters=SEED_PARAMETERS)
        assert model.network.layers[0].activation == SEED_NETWORK["layers"][0]["activation"]
        assert not hasattr(model, ADDED)
        assert await c.get_model("m") == model
        assert [m.name for m in (await c.list_models()).items] == ["m"]
        assert [m.name async for m in c.iter_models()] == ["m"]
        layered = (await c.get_parameters("m")).parameters
        assert isinstance(layered, LayeredParameters) and len(layered.layers) == 3
        named = await c.get_parameters("m", notation="named")
        assert isinstance(named.parameters, dict) and ADDED not in named.parameters
        assert (await c.put_parameters("m", SEED_PARAMETERS, if_match=1)).version == 2
        assert [v.version for v in (await c.list_versions("m")).items] == [2, 1]
        assert (await c.rollback("m", 1)).version == 3
        exported = await c.export_model("m", "npz")
        assert (await c.import_model(exported, "npz", name="n")).name == "n"

        forward = await c.forward("m", x, trace=True, notation="named")
        assert forward.trace is not None and forward.trace.nodes is not None
        gradient = await c.gradient("m", x, t, deltas=True, trace=True, notation="named")
        assert gradient.deltas is not None and isinstance(gradient.gradients, dict)
        assert (await c.train_step("m", x, t, learning_rate=0.5)).version == 4
        stateless = await c.forward_stateless(SEED_NETWORK, SEED_PARAMETERS, x)
        assert stateless.model is None and len(stateless.outputs) == 1
        assert (await c.gradient_stateless(SEED_NETWORK, SEED_PARAMETERS, x, t)).loss > 0
        sensitivity = await c.input_gradient("m", x, t, jacobian=True)
        assert sensitivity.jacobian is not None and len(sensitivity.input_gradients) == 1
        inline = await c.input_gradient_stateless(SEED_NETWORK, SEED_PARAMETERS, x, t)
        assert inline.model is None and inline.loss > 0
        check = await c.gradient_check("m", x, t, sample=2)
        assert [p.name for p in check.parameters] == ["w7", "b1"]  # indices 6 and 18 of 25
        step = await c.train_step_stateless(
            SEED_NETWORK, SEED_PARAMETERS, x, t, optimizer={"kind": "adam"}
        )
        assert step.optimizer_state.step == 1 and set(step.optimizer_state.slots) == {"m", "v"}

        paths = await c.explain("m", x, t, "w1", form="paths")
        assert paths.form == "paths" and paths.paths[0].factors
        delta = await c.explain("m", x, t, "w1", form="delta")
        assert delta.delta is not None and delta.delta.terms

        dataset = await c.create_dataset("d", x, t)
        assert (await c.get_dataset("d")) == dataset
        assert [d.name for d in (await c.list_datasets()).items] == ["d"]
        assert (await c.get_dataset_data("d")).inputs == x
        job = await c.train("m", "d", epochs=2, batch_size=1, learning_rate=0.1, seed=1)
        final = await c.wait(job.id)
        assert final.state == "succeeded" and final.checkpoint is not None
        assert (await c.get_job(job.id)).id == job.id
        assert [j.id for j in (await c.list_jobs()).items] == [job.id]
        assert [h.epoch for h in (await c.history("m")).items] == [1, 2]
        assert (await c.healthz()).status == "ok"
        assert (await c.readyz()).storage == "ok"

    assert len(answers) >= 31 and all(ADDED in answer for answer in answers)
    # the server's own schemas, which the client read answers with before, refuse such a model
    with pytest.raises(ValidationError, match=ADDED):
        ServerModelPublic.model_validate(added(model.model_dump(mode="json")))


def test_what_a_client_sends_back_keeps_the_fields_a_newer_server_added() -> None:
    sent: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            sent.append(json.loads(request.content))
        return httpx.Response(200, json=added(huge_model()))

    with Client("http://test", transport=httpx.MockTransport(answer)) as client:
        model = client.get_model("huge")
        client.create_model("copy", model.network, optimizer=model.optimizer)
    network, optimizer = sent[0]["network"], sent[0]["optimizer"]
    assert network[ADDED] == optimizer[ADDED] == network["layers"][0][ADDED] == {"a": [1, "two"]}
    assert optimizer == {"kind": "sgd", "learning_rate": 0.01, ADDED: {"a": [1, "two"]}}


# -- a server with larger limits than the client's environment would set ----------------------


def huge_model() -> dict[str, Any]:
    """A model far beyond the default limits (4096 units, 64 layers, 5 million parameters)."""
    layers = [{"units": 10_000, "activation": "relu"} for _ in range(100)]
    return {
        "name": "huge",
        "version": 1,
        "network": {"inputs": 10_000, "layers": layers, "loss": "mean_squared_error"},
        "optimizer": {"kind": "sgd", "learning_rate": 0.01},
        "init": {"scheme": "zeros", "seed": 0},
        "description": None,
        "tags": [],
        "parameter_count": 100 * (10_000 * 10_000 + 10_000),
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }


def test_a_model_beyond_any_limit_of_the_client_is_read() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=huge_model()))
    with Client("http://test", transport=transport) as client:
        model = client.get_model("huge")
    assert isinstance(model, ModelPublic) and len(model.network.layers) == 100
    assert model.parameter_count == 10_001_000_000


def test_a_client_with_small_limits_in_its_environment_reads_a_larger_model(
    server: Server, unique: Unique
) -> None:
    name = unique("larger")
    network = {
        "inputs": 3,
        "layers": [{"units": 8, "activation": "tanh"}, {"units": 4, "activation": "sigmoid"}],
        "loss": "mean_squared_error",
    }
    with Client(server.url) as client:
        client.create_model(name, network, init={"seed": 1})
    code = (
        "import sys\n"
        "from service.client import Client\n"
        f"with Client({server.url!r}) as c:\n"
        f"    m = c.get_model({name!r})\n"
        f"    out = c.forward({name!r}, [[0.1, 0.2, 0.3]] * 5).outputs\n"
        f"    p = c.get_parameters({name!r}).parameters\n"
        "print(len(m.network.layers), m.parameter_count, len(out), len(p.layers))\n"
    )
    limits = {
        "BACKPROP_MAX_LAYERS": "1",
        "BACKPROP_MAX_UNITS": "2",
        "BACKPROP_MAX_PARAMETERS": "3",
        "BACKPROP_MAX_BATCH_ROWS": "2",
    }
    result = run(code, **limits)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", str(3 * 8 + 8 + 8 * 4 + 4), "5", "2"]


# -- answers that do not read -----------------------------------------------------------------


def answering(response: httpx.Response) -> Client:
    return Client("http://test", transport=httpx.MockTransport(lambda request: response))


def test_a_success_that_is_not_the_answer_is_an_unexpected_answer() -> None:
    page = httpx.Response(200, text="<html>a proxy's page</html>")
    with answering(page) as client, pytest.raises(UnexpectedAnswer) as info:
        client.get_model("m")
    assert isinstance(info.value, ApiError) and info.value.status == 200
    assert info.value.title == "Unexpected answer" and "ValidationError" in info.value.detail
    assert isinstance(info.value.__cause__, ValidationError)

    missing = {k: v for k, v in huge_model().items() if k != "version"}
    with answering(httpx.Response(200, json=missing)) as client:
        with pytest.raises(UnexpectedAnswer, match="version"):
            client.get_model("m")
        with pytest.raises(UnexpectedAnswer, match="pickled"):
            client.get_dataset_arrays("d")  # JSON, not an .npz
    archive = io.BytesIO()
    np.savez(archive, inputs=np.zeros((2, 1)))
    truncated = httpx.Response(200, content=archive.getvalue())
    with answering(truncated) as client, pytest.raises(UnexpectedAnswer, match="KeyError"):
        client.get_dataset_arrays("d")  # no targets in the archive


def test_an_event_that_does_not_read_is_an_unexpected_answer() -> None:
    stream = b'id: 1\nevent: state\ndata: {"state": "queued"}\n\nid: 2\ndata: [1, 2]\n\n'
    response = httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=stream)
    seen: list[int] = []
    with answering(response) as client, pytest.raises(UnexpectedAnswer, match="not an object"):
        for event in client.events("j"):
            seen.append(event.id)
    assert seen == [1]


@pytest.mark.anyio
async def test_async_answers_that_do_not_read_are_unexpected_answers() -> None:
    job: dict[str, Any] = {"id": "j", "state": "running"}  # most fields missing
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=job))
    async with AsyncClient("http://test", transport=transport) as client:
        with pytest.raises(UnexpectedAnswer, match="epochs"):
            await client.get_job("j")
    bad = b"id: x\ndata: {}\n\n"
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            200, headers={"Content-Type": "text/event-stream"}, content=bad
        )
    )
    async with AsyncClient("http://test", transport=transport) as client:
        with pytest.raises(UnexpectedAnswer, match="invalid literal"):
            [e async for e in client.events("j")]
