"""The docs UI works offline in a real browser: headless Chromium, whose resolver knows no host
name, opens ``/docs`` on a real server on 127.0.0.1, sees every operation rendered, and runs
"Try it out" on forward with the worked example; ``/redoc`` renders too. Every request the page
makes goes to the service itself.

Chromium is Debian's package, driven by Playwright (:mod:`tests.browser.support`); where it is
missing the tests fail under ``CI=true`` and are skipped with the reason elsewhere. Screenshots
of the pages stay under ``artifacts/docs`` to be looked at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser

from tests import servers
from tests.api.support import SEED, seed_model
from tests.browser.support import Recorded, chromium, chromium_path, recorded, screenshot

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


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Recorded]:
    """A fresh page (1280 x 2000) that records its requests; only the service's are allowed."""
    context = browser.new_context(viewport={"width": 1280, "height": 2000})
    record = recorded(context.new_page())
    yield record
    record.assert_only_local(server)
    context.close()


def test_swagger_ui_renders_every_operation_from_local_assets(server: str, page: Recorded) -> None:
    spec = httpx.get(f"{server}/openapi.json").json()
    expected = {
        f"operations-{op['tags'][0]}-{op['operationId']}"
        for operations in spec["paths"].values()
        for op in operations.values()
    }
    page.page.goto(f"{server}/docs")
    page.page.wait_for_function(
        f"() => document.querySelectorAll('.opblock').length >= {len(expected)}"
    )
    rendered = page.page.eval_on_selector_all(".opblock", "blocks => blocks.map(e => e.id)")
    title = page.page.inner_text(".information-container .title")
    # The description at the top links the playground.
    link = page.page.get_attribute(".information-container a[href='playground']", "href")
    screenshot(page.page, "docs", "docs", full_page=False)
    assert set(rendered) == expected
    assert "backprop-service" in title
    assert link == "playground"


def test_swagger_ui_try_it_out_runs_the_worked_example_forward(server: str, page: Recorded) -> None:
    p = page.page
    p.goto(f"{server}/docs#/compute/compute-forward_model")
    p.click(f"{FORWARD} .try-out__btn")
    body = json.loads(p.input_value(f"{FORWARD} textarea.body-param__text"))
    # The example offered is the worked example.
    assert body == {"inputs": [SEED["input"]], "trace": True}

    # Type the model's name as a person would (over whatever the field offers).
    name = p.locator(f"{FORWARD} input[placeholder=name]")
    name.fill("")
    name.press_sequentially("seed")
    # Swagger UI takes a typed value after a short debounce: wait until its state has it.
    p.wait_for_function(
        "() => ui.specSelectors.parameterValues(['/v1/models/{name}/forward', 'post'])"
        ".get('path.name') === 'seed'"
    )
    p.click(f"{FORWARD} .execute")
    shown = f"{FORWARD} .live-responses-table .response-col_description .highlight-code pre"
    text = p.inner_text(shown)
    status = p.inner_text(f"{FORWARD} .live-responses-table tbody .response-col_status")
    screenshot(p, "docs", "try-it-out", full_page=False)
    assert status.strip() == "200", text
    response = json.loads(text)
    assert response["model"] == "seed"
    assert response["outputs"] == [[OUT_N9]]
    assert repr(OUT_N9) in text


def test_redoc_renders_the_operations_from_local_assets(server: str, page: Recorded) -> None:
    page.page.goto(f"{server}/redoc")
    page.page.wait_for_function(
        "() => document.body.innerText.includes('Forward pass on a stored model')"
    )
    screenshot(page.page, "docs", "redoc", full_page=False)
