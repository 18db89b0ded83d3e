"""The docs UI works offline in a real browser: headless Chromium, whose resolver knows no host
name, opens ``/docs`` on a real server on 127.0.0.1, sees every operation rendered, and runs
"Try it out" on forward with the worked example; ``/redoc`` renders too. Every request the page
makes goes to the service itself.

Chromium is a system package (``apt-get install -y chromium``); where it is missing the tests
fail under ``CI=true`` and are skipped with the reason elsewhere. Screenshots of the pages stay
in pytest's ``tmp_path`` to be looked at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import servers
from tests.api.support import SEED, seed_model
from tests.browser.cdp import Page, browser, chromium_path

FORWARD = "#operations-compute-compute-forward_model"
OUT_N9: float = SEED["forward"]["nodes"]["n9"]["out"]  # 0.8034818811389179


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A real server on a loopback port, with the seed model stored."""
    chromium_path()  # skip (or fail under CI) before starting anything
    with servers.running("--registry", "memory://") as client:
        created = client.post("/v1/models", json=seed_model("seed"))
        assert created.status_code == 201, created.text
        yield str(client.base_url).rstrip("/")


def assert_only_local(page: Page, server: str) -> None:
    page.settle()
    urls = page.requested_urls()
    assert urls, "the page made no request at all"
    foreign = [u for u in urls if not u.startswith((f"{server}/", "data:", "blob:"))]
    assert not foreign, f"the page reached beyond the service: {foreign}"


def js(value: str) -> str:
    return json.dumps(value)


def test_swagger_ui_renders_every_operation_from_local_assets(server: str, tmp_path: Path) -> None:
    spec = httpx.get(f"{server}/openapi.json").json()
    expected = {
        f"operations-{op['tags'][0]}-{op['operationId']}"
        for operations in spec["paths"].values()
        for op in operations.values()
    }
    with browser(tmp_path / "profile") as page:
        page.navigate(f"{server}/docs")
        page.wait_for(
            f"document.querySelectorAll('.opblock').length >= {len(expected)}",
            f"{len(expected)} operations",
        )
        rendered = page.evaluate("Array.from(document.querySelectorAll('.opblock')).map(e => e.id)")
        title = page.evaluate("document.querySelector('.information-container .title')?.innerText")
        page.screenshot(tmp_path / "docs.png")
        assert_only_local(page, server)
    assert set(rendered) == expected
    assert "backprop-service" in title


def test_swagger_ui_try_it_out_runs_the_worked_example_forward(server: str, tmp_path: Path) -> None:
    with browser(tmp_path / "profile") as page:
        page.navigate(f"{server}/docs#/compute/compute-forward_model")
        page.wait_for(f"!!document.querySelector({js(FORWARD + ' .try-out__btn')})", "Try it out")
        page.evaluate(f"document.querySelector({js(FORWARD + ' .try-out__btn')}).click()")
        body_selector = js(f"{FORWARD} textarea.body-param__text")
        page.wait_for(f"!!document.querySelector({body_selector})", "the request body")
        body = json.loads(page.evaluate(f"document.querySelector({body_selector}).value"))
        # The example offered is the worked example.
        assert body == {"inputs": [SEED["input"]], "trace": True}

        # Type the model's name as a person would: focus the field, then insert text.
        page.evaluate(f"document.querySelector({js(FORWARD + ' input[placeholder=name]')}).focus()")
        page.send("Input.insertText", text="seed")
        # Swagger UI takes a typed value after a short debounce: wait until its state has it.
        page.wait_for(
            "ui.specSelectors.parameterValues(['/v1/models/{name}/forward', 'post'])"
            ".get('path.name') === 'seed'",
            "the typed name in Swagger UI's state",
        )
        page.evaluate(f"document.querySelector({js(FORWARD + ' .execute')}).click()")

        shown = js(f"{FORWARD} .live-responses-table .response-col_description .highlight-code pre")
        text = page.wait_for(
            f"document.querySelector({shown})?.innerText", "the response of the forward call"
        )
        status_cell = js(f"{FORWARD} .live-responses-table tbody .response-col_status")
        status = page.evaluate(f"document.querySelector({status_cell}).innerText")
        page.screenshot(tmp_path / "try-it-out.png")
        assert_only_local(page, server)
    assert status.strip() == "200"
    response = json.loads(text)
    assert response["model"] == "seed"
    assert response["outputs"] == [[OUT_N9]]
    assert repr(OUT_N9) in text


def test_redoc_renders_the_operations_from_local_assets(server: str, tmp_path: Path) -> None:
    with browser(tmp_path / "profile") as page:
        page.navigate(f"{server}/redoc")
        page.wait_for(
            "document.body.innerText.includes('Forward pass on a stored model')",
            "the forward operation",
        )
        page.screenshot(tmp_path / "redoc.png")
        assert_only_local(page, server)
