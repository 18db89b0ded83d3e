"""Request logs: one JSON line per request with its id, method, route template, status and
duration, and never input data or keys; the request id is taken when sane, else made."""

from __future__ import annotations

import json
import logging
import re
import sys

import httpx
import pytest

from service.api.logging import JsonFormatter, RequestLog, log_config
from tests.api.support import AppFactory, client_for, seed_model

pytestmark = pytest.mark.anyio

KEY = "logged-never-0123456789"


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    """The access records, formatted as the server writes them."""
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "backprop.access"]


async def test_without_the_access_log_successes_log_no_line_but_keep_their_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    await client.post("/v1/models", json=seed_model("seed"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="backprop.access"):
        ok = await client.post("/v1/models/seed/forward", json={"inputs": [[0.23, 0.55]]})
        missing = await client.get("/v1/models/nobody")
    assert (ok.status_code, missing.status_code) == (200, 404)
    assert ok.headers["x-request-id"] and missing.headers["x-request-id"]
    assert access_lines(caplog) == []


async def test_each_request_logs_one_line_with_its_fields(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(make_app(access_log=True)) as client:
        await client.post("/v1/models", json=seed_model("seed"))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="backprop.access"):
            response = await client.post(
                "/v1/models/seed/forward",
                json={"inputs": [[0.23, 0.55]]},
                headers={"X-Request-ID": "trace-42"},
            )
    [line] = access_lines(caplog)
    assert response.headers["x-request-id"] == "trace-42"
    assert line["event"] == "request"
    assert line["request_id"] == "trace-42"
    assert line["method"] == "POST"
    assert line["route"] == "/v1/models/{name}/forward"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "info" and line["logger"] == "backprop.access"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line["time"]))


@pytest.mark.parametrize("given", ["", "x" * 129, "a b", "<script>", "a;b", "a\\b"])
async def test_an_insane_request_id_is_replaced(client: httpx.AsyncClient, given: str) -> None:
    response = await client.get(
        "/healthz", headers={"X-Request-ID": given.encode().decode("latin-1")}
    )
    made = response.headers["x-request-id"]
    assert made != given and re.fullmatch(r"[0-9a-f]{32}", made)


async def test_every_response_gets_a_new_request_id(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/v1/models/none")).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


async def test_logs_hold_no_input_data_query_or_key(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    secret_input = 0.123456789
    async with client_for(make_app(api_keys=f"{KEY}:admin", access_log=True)) as client:
        with caplog.at_level(logging.DEBUG):
            headers = {"Authorization": f"Bearer {KEY}"}
            await client.post("/v1/models", json=seed_model("seed"), headers=headers)
            await client.post(
                "/v1/models/seed/forward", json={"inputs": [[secret_input, 0.5]]}, headers=headers
            )
            await client.get(
                f"/v1/models/seed/diagram.svg?inputs={secret_input},0.5", headers=headers
            )
            await client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}-wrong"})
    # What the server logs (not the test's own HTTP client).
    server = [r for r in caplog.records if r.name.startswith(("backprop", "service", "uvicorn"))]
    text = "\n".join(JsonFormatter().format(r) for r in server)
    lines = access_lines(caplog)
    assert len(lines) == 4
    assert [line["status"] for line in lines] == [201, 200, 200, 401]
    assert lines[0]["role"] == "admin"
    assert KEY not in text and "Bearer" not in text and "uthorization" not in text
    assert str(secret_input) not in text and "inputs" not in text


def test_records_without_fields_keep_their_message_and_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("service").makeRecord(
            "service", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed x" and "ValueError: boom" in line["exception"]


def test_the_server_log_config_writes_json_and_drops_uvicorns_access_lines() -> None:
    config = log_config("info")
    assert config["formatters"]["json"]["()"].endswith("JsonFormatter")
    assert config["loggers"]["uvicorn.access"]["handlers"] == []
    assert config["loggers"]["backprop"]["level"] == "INFO"


def test_request_log_is_a_pure_asgi_middleware() -> None:
    assert not hasattr(RequestLog, "dispatch")
