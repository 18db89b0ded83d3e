"""The playground in a real browser: headless Chromium, whose resolver knows no host name, opens
``/playground`` on a real server on 127.0.0.1. The numbers the page shows are compared with the
API's own answers for a reference copy of the seed model (and the first forward pass with the
seed's worked example); the page is used by mouse and by keyboard alone, logs no error, asks
nothing of any host but the service, and leaves the stored ``seed`` as it was.

Screenshots at a narrow and a wide width stay under ``artifacts/playground`` to be looked at.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from tests import servers
from tests.api.support import SEED, SEED_DATA, SEED_LR, SEED_PARAMETERS_NAMED, seed_model
from tests.browser.support import ARTIFACTS, Recorded, chromium, chromium_path, recorded, screenshot

OUT_N9: float = SEED["forward"]["nodes"]["n9"]["out"]  # 0.8034818811389179
NODES = [f"n{k}" for k in range(3, 10)]
WIDE: ViewportSize = {"width": 1600, "height": 1000}
NARROW: ViewportSize = {"width": 360, "height": 800}
names = (f"ref-{k}" for k in itertools.count())


@pytest.fixture(scope="module")
def server() -> Iterator[httpx.Client]:
    """A real server on a loopback port with the seed model stored; a client of it."""
    chromium_path()  # skip (or fail under CI) before starting anything
    with servers.running("--registry", "memory://") as client:
        created = client.post("/v1/models", json=seed_model("seed"))
        assert created.status_code == 201, created.text
        yield client


@pytest.fixture(scope="module")
def browser(server: httpx.Client) -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def opened(server: httpx.Client, browser: Browser) -> Iterator[Recorded]:
    """The playground opened at a wide width, once it shows the blog's network."""
    yield from open_page(server, browser, WIDE)


def open_page(server: httpx.Client, browser: Browser, size: ViewportSize) -> Iterator[Recorded]:
    context = browser.new_context(viewport=size)
    page = context.new_page()
    record = recorded(page)
    page.goto(f"{url(server)}/playground")
    wait_idle(page, 1)
    yield record
    assert not record.problems, record.problems
    record.assert_only_local(url(server))
    context.close()
    # Playing never changes the stored seed.
    assert server.get("/v1/models/seed").json()["version"] == 1


def url(server: httpx.Client) -> str:
    return str(server.base_url).rstrip("/")


def wait_idle(page: Page, actions: int) -> None:
    """Wait until the page has finished its ``actions``-th action (each button press is one)."""
    page.wait_for_selector(f'body[data-actions="{actions}"][data-busy="0"]')
    status = page.locator("#status")
    assert "error" not in (status.get_attribute("class") or ""), status.inner_text()


def reference(server: httpx.Client) -> str:
    """A stored copy of the seed model to ask the API about; its name."""
    name = next(names)
    created = server.post("/v1/models", json=seed_model(name))
    assert created.status_code == 201, created.text
    return name


def answer(server: httpx.Client, path: str, body: dict[str, Any] | None = None) -> Any:
    response = server.post(path, json=body) if body is not None else server.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def shown_nodes(page: Page) -> dict[str, dict[str, float]]:
    """The node table's exact values: {"n3": {"net": ..., "out": ..., "delta": ...}}."""
    rows: dict[str, dict[str, str]] = page.eval_on_selector_all(
        "#nodes tbody tr",
        """rows => Object.fromEntries(rows.map(r => [r.id.slice(4), Object.fromEntries(
            Array.from(r.querySelectorAll('[data-value]')).map(
                c => [c.dataset.field, c.dataset.value]))]))""",
    )
    return {n: {k: float(v) for k, v in fields.items()} for n, fields in rows.items()}


def shown_parameters(page: Page) -> dict[str, float]:
    values: dict[str, str] = page.eval_on_selector_all(
        "#parameters tbody input",
        "inputs => Object.fromEntries(inputs.map(i => [i.id.slice(6), i.value]))",
    )
    return {name: float(v) for name, v in values.items()}


def shown_gradients(page: Page) -> dict[str, float]:
    values: dict[str, str] = page.eval_on_selector_all(
        "#parameters tbody tr",
        """rows => Object.fromEntries(rows.map(r => [r.id.slice(4),
            r.querySelector('[data-field=gradient]').dataset.value]))""",
    )
    return {name: float(v) for name, v in values.items()}


def test_opens_on_the_blogs_network_and_values(opened: Recorded) -> None:
    page = opened.page
    assert shown_parameters(page) == SEED_PARAMETERS_NAMED
    drawn = page.eval_on_selector_all("#diagram .param", "gs => gs.map(g => g.dataset.name).sort()")
    assert sorted(SEED_PARAMETERS_NAMED) == drawn
    assert page.locator("#diagram .node").count() == 9
    assert [page.input_value(f"#inputs-{i}") for i in range(2)] == [repr(v) for v in SEED["input"]]
    assert [page.input_value("#targets-0")] == [repr(v) for v in SEED["target"]]


def test_step_shows_the_apis_forward_backward_and_update(
    server: httpx.Client, opened: Recorded
) -> None:
    page = opened.page
    page.click("#step")
    wait_idle(page, 2)
    ref = reference(server)
    forward = answer(
        server,
        f"/v1/models/{ref}/forward?notation=named",
        {"inputs": SEED_DATA["inputs"], "trace": True},
    )
    gradient = answer(
        server, f"/v1/models/{ref}/gradient?notation=named", {**SEED_DATA, "deltas": True}
    )
    step = answer(server, f"/v1/models/{ref}/train-step", {**SEED_DATA, "learning_rate": SEED_LR})
    after = answer(server, f"/v1/models/{ref}/parameters?notation=named")["parameters"]

    nodes = shown_nodes(page)
    for node in NODES:
        assert nodes[node]["net"] == forward["trace"]["nodes"][node]["net"][0], node
        assert nodes[node]["out"] == forward["trace"]["nodes"][node]["out"][0], node
        assert nodes[node]["delta"] == gradient["deltas"]["nodes"][node][0], node
    # The first forward pass is the blog's.
    assert nodes["n9"]["out"] == pytest.approx(OUT_N9, abs=1e-12)
    assert shown_gradients(page) == gradient["gradients"]
    assert shown_parameters(page) == after
    assert page.inner_text("#loss") == f"E = {step['loss']!r}"
    assert step["loss"] == pytest.approx(SEED["loss"], abs=1e-12)
    # Each step's formulas are shown, with the API's numbers in them.
    assert "net_n3 = w1·x1 + w4·x2 + b1" in page.inner_text("#formulas-forward")
    assert "δ_n9" in page.inner_text("#formulas-backward")
    assert "w1: 0.1 − 0.01 · 0.055904 = 0.099441" in page.inner_text("#formulas-update")
    assert "(before the update)" in page.inner_text("#nodes caption")


def test_w1_shows_the_chain_rule_paths_the_api_explains(
    server: httpx.Client, opened: Recorded
) -> None:
    page = opened.page
    page.click('#diagram .param[data-name="w1"]')
    wait_idle(page, 2)
    ref = reference(server)
    explained = answer(server, f"/v1/models/{ref}/explain", {**SEED_DATA, "parameter": "w1"})
    shown = page.eval_on_selector_all(
        "#explain .path",
        """paths => paths.map(p => ({
            title: p.querySelector('h4').innerText,
            factors: Array.from(p.querySelectorAll('.factors li')).map(li => [
                li.querySelector('.symbol').innerText, li.querySelector('.value').innerText]),
            product: p.querySelector('.product .value').innerText}))""",
    )
    assert len(shown) == len(explained["paths"]) == 3
    for path, expected in zip(shown, explained["paths"], strict=True):
        assert path["title"].endswith(" → ".join(expected["nodes"]))
        assert [(s, float(v)) for s, v in path["factors"]] == [
            (f["symbol"], f["value"]) for f in expected["factors"]
        ]
        assert float(path["product"]) == expected["product"]
    assert float(page.inner_text("#explain .sum .value")) == explained["sum"]
    assert page.inner_text("#explain-title") == f"∂E/∂w1 = {explained['gradient']!r}"
    assert explained["gradient"] == pytest.approx(SEED["gradients_named"]["w1"], abs=1e-12)
    # The paths are drawn: the edges on them are marked.
    on_path = page.eval_on_selector_all(
        "#diagram line.on-path", "ls => ls.map(l => l.dataset.name).sort()"
    )
    assert on_path == sorted(["w1", "w7", "w8", "w9", "w16", "w17", "w18"])


def test_editing_a_weight_runs_the_forward_pass_the_api_gives(
    server: httpx.Client, opened: Recorded
) -> None:
    page = opened.page
    page.fill("#value-w7", "-0.25")
    page.press("#value-w7", "Enter")
    wait_idle(page, 2)
    ref = reference(server)
    changed = {**SEED_PARAMETERS_NAMED, "w7": -0.25}
    put = server.put(f"/v1/models/{ref}/parameters?notation=named", json={"parameters": changed})
    assert put.status_code == 200, put.text
    forward = answer(
        server,
        f"/v1/models/{ref}/forward?notation=named",
        {"inputs": SEED_DATA["inputs"], "trace": True},
    )
    nodes = shown_nodes(page)
    for node in NODES:
        assert nodes[node]["net"] == forward["trace"]["nodes"][node]["net"][0], node
        assert nodes[node]["out"] == forward["trace"]["nodes"][node]["out"][0], node
    assert nodes["n9"]["out"] != OUT_N9
    assert shown_parameters(page)["w7"] == -0.25


def test_step_and_explain_by_keyboard_alone(server: httpx.Client, opened: Recorded) -> None:
    page = opened.page
    page.locator("body").focus()
    for _ in range(40):  # Tab through the page until Step has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "step":
            break
    assert page.evaluate("document.activeElement.id") == "step"
    page.keyboard.press("Enter")
    wait_idle(page, 2)
    assert shown_nodes(page)["n9"]["out"] == pytest.approx(OUT_N9, abs=1e-12)
    page.keyboard.press("Space")  # the focus stays on Step: a second step
    wait_idle(page, 3)
    assert page.inner_text("#parameters caption").startswith("Version 3 of")
    # Tab on to the drawing's first weight, and explain it with Enter.
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset?.name") == "w1":
            break
    assert page.evaluate("document.activeElement.dataset?.name") == "w1"
    screenshot(page, "playground", "keyboard-focus-on-w1", full_page=False)
    page.keyboard.press("Enter")
    wait_idle(page, 4)
    assert page.locator("#explain .path").count() == 3
    assert page.get_attribute('#diagram .param[data-name="w1"]', "aria-pressed") == "true"


def test_training_draws_the_apis_losses(server: httpx.Client, opened: Recorded) -> None:
    page = opened.page
    page.fill("#steps", "25")
    page.click("#train")
    wait_idle(page, 2)
    ref = reference(server)
    losses = [
        answer(server, f"/v1/models/{ref}/train-step", {**SEED_DATA, "learning_rate": SEED_LR})[
            "loss"
        ]
        for _ in range(25)
    ]
    points = page.get_attribute("#curve polyline", "points")
    assert points is not None and len(points.split()) == 25
    label = page.get_attribute("#curve svg", "aria-label")
    assert label == f"loss over 25 steps, from {losses[0]!r} to {losses[-1]!r}"
    after = answer(server, f"/v1/models/{ref}/parameters?notation=named")["parameters"]
    assert shown_parameters(page) == after


def test_picks_a_stored_model_and_creates_one(server: httpx.Client, opened: Recorded) -> None:
    page = opened.page
    page.select_option("#source", "seed")
    page.click("#open")
    wait_idle(page, 2)
    assert '"seed"' in page.inner_text("#scratch-note")
    assert shown_parameters(page) == SEED_PARAMETERS_NAMED
    page.click("#create summary")
    page.fill("#create-name", "tiny")
    page.fill("#create-inputs", "3")
    page.fill("#create-layers", "2 tanh, 2 softmax")
    page.select_option("#create-loss", "cross_entropy")
    page.click("#create-form button[type=submit]")
    wait_idle(page, 3)
    stored = answer(server, "/v1/models/tiny/parameters?notation=named")["parameters"]
    assert shown_parameters(page) == stored
    assert page.locator("#diagram .node").count() == 7
    page.click("#step")
    wait_idle(page, 4)
    assert answer(server, "/v1/models/tiny")["version"] == 1  # the scratch copy was stepped


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["narrow", "wide"])
def test_reads_well_at_narrow_and_wide_widths(
    server: httpx.Client, browser: Browser, size: ViewportSize
) -> None:
    for record in open_page(server, browser, size):
        page = record.page
        page.click("#step")
        wait_idle(page, 2)
        page.click('#diagram .param[data-name="w13"]')
        wait_idle(page, 3)
        # Nothing wider than the window but the drawing, which scrolls in its own box.
        overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than the window"
        # No two labels of weights and biases overlap.
        boxes = page.eval_on_selector_all(
            "#diagram .param rect",
            "rs => rs.map(r => { const b = r.getBBox(); return [b.x, b.y, b.x + b.width, "
            "b.y + b.height, r.parentNode.dataset.name]; })",
        )
        clashes = [
            (a[4], b[4])
            for a, b in itertools.combinations(boxes, 2)
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
        ]
        assert not clashes, clashes
        name = "narrow-360" if size is NARROW else "wide-1600"
        screenshot(page, "playground", name)
        screenshot(page, "playground", f"{name}-top", full_page=False)
        page.locator("#diagram").screenshot(path=str(ARTIFACTS / "playground" / f"{name}-net.png"))


def test_checks_show_the_apis_input_gradient_and_gradient_check(
    server: httpx.Client, opened: Recorded
) -> None:
    page = opened.page
    ref = reference(server)
    page.click("#input-gradient")
    wait_idle(page, 2)
    inputs = answer(server, f"/v1/models/{ref}/input-gradient", SEED_DATA)
    shown = page.eval_on_selector_all(
        "#input-gradients td[data-value]", "cells => cells.map(c => c.dataset.value)"
    )
    assert [float(v) for v in shown] == inputs["input_gradients"][0]
    page.click("#gradient-check")
    wait_idle(page, 3)
    check = answer(server, f"/v1/models/{ref}/gradient-check", SEED_DATA)
    rows = page.eval_on_selector_all(
        "#gradient-check-table tbody tr",
        """rows => rows.map(r => [r.querySelector('th').innerText,
            ...Array.from(r.querySelectorAll('td')).map(c => Number(c.dataset.value))])""",
    )
    assert rows == [
        [p["name"], p["backprop"], p["numeric"], p["relative_error"]] for p in check["parameters"]
    ]
    # Backpropagation's gradients agree with the central differences, and with the blog's.
    assert check["max_relative_error"] < 1e-6
    assert {p["name"]: p["backprop"] for p in check["parameters"]} == pytest.approx(
        SEED["gradients_named"], abs=1e-12
    )
