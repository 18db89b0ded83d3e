"""Heavy renderings for learners never hurt the rest: drawing the largest networks the diagram
allows takes about a second (its label placement is near-linear in the edges), and it runs in
the store's worker threads while the event loop keeps answering /healthz promptly.

Also: the grid index of the label placement gives exactly the layout of comparing every label
with every box taken before it, so drawings keep their bytes."""

from __future__ import annotations

import random
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest

import service.learn.diagram as diagram
from service.core import Layer, Network, check_parameters, gradient
from service.learn.diagram import Box, Boxes, Sample, network_svg
from service.learn.limits import DIAGRAM_MAX_UNITS, DIAGRAM_MAX_WEIGHTS
from service.operations import learn as learning
from service.store import ModelStore
from tests.api.support import assert_problem, create_seed
from tests.health_probe import polling_health
from tests.learn.support import SEED_NET, SEED_PARAMS, SEED_T, SEED_X, SVG, by_class
from tests.servers import running

JSON = Any
WORST_HEALTH = 1.5  # seconds; /healthz waited 23 s behind a 32-31-1 drawing on the event loop


def body(name: str, inputs: int, units: list[int]) -> JSON:
    return {
        "name": name,
        "network": {
            "inputs": inputs,
            "layers": [{"units": u, "activation": "sigmoid"} for u in units],
            "loss": "half_squared_error",
        },
        "init": {"scheme": "xavier_uniform", "seed": 1},
    }


def test_large_diagrams_leave_health_checks_prompt() -> None:
    # 32-31-1 (1023 weights) and 32-32 (1024): the largest networks the diagram allows, with
    # every edge labelled, and with gradients two lines a label.
    assert DIAGRAM_MAX_UNITS == 32 and DIAGRAM_MAX_WEIGHTS == 1024
    with running("--registry", "memory://") as client:
        for name, inputs, units in (("deep", 32, [31, 1]), ("wide", 32, [32])):
            created = client.post("/v1/models", json=body(name, inputs, units))
            assert created.status_code == 201, created.text
        url = str(client.base_url)
        sample = {"inputs": ",".join(["0.5"] * 32)}
        wide_targets = ",".join(["0.2"] * 32)
        requests: list[tuple[str, dict[str, str]]] = [
            ("deep", {}),
            ("deep", {**sample, "targets": "0.2", "gradients": "true"}),
            ("wide", {**sample, "targets": wide_targets}),
            ("wide", {**sample, "targets": wide_targets, "gradients": "true"}),
        ]

        def fetch(request: tuple[str, dict[str, str]]) -> tuple[str, httpx.Response]:
            name, params = request
            with httpx.Client(base_url=url, timeout=60) as own:
                return name, own.get(f"/v1/models/{name}/diagram.svg", params=params)

        started = time.perf_counter()
        with polling_health(url) as probe:
            time.sleep(0.2)  # a few polls before, to compare with
            # At once, on connections of their own: drawn one after another on the event loop
            # they would hold /healthz up for their sum, seconds.
            with ThreadPoolExecutor(len(requests)) as pool:
                answers = list(pool.map(fetch, requests))
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        print(f"{len(answers)} diagrams in {elapsed:.1f} s; /healthz meanwhile: {probe.describe()}")
        for name, response in answers:
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("image/svg+xml")
            root = ET.fromstring(response.content)  # well-formed XML
            assert root.tag == f"{SVG}svg"
            assert len(by_class(root, "edge")) == (1023 if name == "deep" else 1024)
        assert probe.statuses and set(probe.statuses) == {200}, probe.statuses
        assert probe.worst < WORST_HEALTH, probe.describe()

        # One weight more than the limit: 422, saying what the limit is.
        created = client.post("/v1/models", json=body("too-wide", 32, [32, 2]))
        assert created.status_code == 201, created.text
        refused = client.get("/v1/models/too-wide/diagram.svg")
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "1088 weights is too large to be drawn: at most 1024" in refused.json()["detail"]


class EveryBox:
    """The label placement without the grid index: every box and line taken is compared."""

    def __init__(self, boxes: list[Box]) -> None:
        self.boxes = list(boxes)
        self.segments: list[tuple[int, Box]] = []

    def add(self, box: Box) -> None:
        self.boxes.append(box)

    def overlap(self, box: Box) -> float:
        return sum(diagram._overlap(box, other) for other in self.boxes)

    def add_segment(self, owner: int, segment: Box) -> None:
        self.segments.append((owner, segment))

    def crossings(self, box: Box, owner: int, most: int | None = None) -> int:
        count = sum(1 for o, s in self.segments if o != owner and diagram._crosses(s, box))
        return count if most is None else min(count, most + 1)


def draw(net: Network, with_gradients: bool, seed: int = 0) -> str:
    if net == SEED_NET:
        params, X, T = SEED_PARAMS, SEED_X, SEED_T
    else:
        rng = np.random.default_rng(seed)
        shapes = net.shapes
        params = check_parameters(
            net, [(rng.normal(size=(a, b)), rng.normal(size=b)) for a, b in shapes]
        )
        X, T = [[0.3] * net.inputs], [[0.5] * net.layers[-1].units]
    sample = None
    if with_gradients:
        r = gradient(net, params, X, T)
        sample = Sample(X[0], r.trace, r.loss, r.gradients, r.deltas)
    return network_svg(net, params, "t", sample)


@pytest.mark.parametrize(
    "net",
    [
        SEED_NET,
        Network(12, (Layer(11, "relu"), Layer(1, "sigmoid")), "half_squared_error"),
        Network(4, tuple(Layer(4, "tanh") for _ in range(8)), "half_squared_error"),
    ],
    ids=["seed", "12-11-1", "4x9"],
)
@pytest.mark.parametrize("with_gradients", [False, True], ids=["plain", "gradients"])
def test_the_grid_index_places_every_label_where_comparing_every_box_did(
    net: Network, with_gradients: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    indexed = draw(net, with_gradients)
    monkeypatch.setattr(diagram, "Boxes", EveryBox)
    assert draw(net, with_gradients) == indexed


def test_overlap_sums_exactly_what_a_sum_over_every_box_gives() -> None:
    rng = random.Random(7)
    boxes, every = Boxes(), EveryBox([])
    for _ in range(1500):
        x, y = rng.uniform(-200, 2000), rng.uniform(-200, 2000)
        w, h = rng.choice([rng.uniform(1, 150), 64.0, 128.0]), rng.uniform(1, 40)
        if rng.random() < 0.1:  # on the grid's lines
            x, y = 64.0 * rng.randrange(-3, 30), 64.0 * rng.randrange(-3, 30)
        box = (x, y, x + w, y + h)
        assert boxes.overlap(box) == every.overlap(box)
        boxes.add(box)
        every.add(box)


def test_the_largest_drawing_takes_about_a_second_not_half_a_minute() -> None:
    """Generous: 32-31-1 with gradients takes 1-2 s on a busy machine, 30 s before the index."""
    net = Network(32, (Layer(31, "sigmoid"), Layer(1, "sigmoid")), "half_squared_error")
    start = time.perf_counter()
    svg = draw(net, with_gradients=True)
    elapsed = time.perf_counter() - start
    assert len(by_class(ET.fromstring(svg), "edge")) == 1023
    assert elapsed < 10, f"{elapsed:.1f} s"


# -- off the event loop, in process ---------------------------------------------------------

DEEP_NARROW = {  # 45 parameters, but 64 paths of 17 factors from the first layer
    "name": "narrow",
    "network": {
        "inputs": 2,
        "layers": [{"units": 2, "activation": "tanh"}] * 7
        + [{"units": 1, "activation": "sigmoid"}],
        "loss": "half_squared_error",
    },
    "init": {"seed": 1},
}
NARROW_EXPLAIN = {"inputs": [[0.3, -0.2]], "targets": [[0.4]], "parameter": "w1"}


@pytest.fixture
def offloaded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The callables the store ran off the event loop, in its worker threads or processes."""
    calls: list[str] = []
    offload, isolate = ModelStore.offload, ModelStore.isolate

    async def spy(self: ModelStore, fn: Callable[[], Any]) -> Any:
        calls.append(getattr(fn, "__qualname__", "?"))
        return await offload(self, fn)

    async def spy_isolated(self: ModelStore, fn: Callable[..., Any], *args: Any) -> Any:
        calls.append(getattr(fn, "__qualname__", "?"))
        return await isolate(self, fn, *args)

    monkeypatch.setattr(ModelStore, "offload", spy)
    monkeypatch.setattr(ModelStore, "isolate", spy_isolated)
    return calls


@pytest.mark.anyio
async def test_diagrams_and_walkthroughs_are_written_off_the_event_loop(
    client: httpx.AsyncClient, offloaded: list[str]
) -> None:
    await create_seed(client)
    drawn = await client.get("/v1/models/seed/diagram.svg")
    assert drawn.status_code == 200 and offloaded
    assert drawn.content.decode() == network_svg(SEED_NET, SEED_PARAMS, "seed, version 1")
    offloaded.clear()
    sample = {"inputs": "0.23,0.55", "targets": "0.01"}
    written = await client.get("/v1/models/seed/walkthrough", params=sample)
    assert written.status_code == 200 and offloaded
    assert written.headers["content-type"].startswith("text/markdown")
    # A core error raised in the worker still names the query parameter.
    offloaded.clear()
    wrong = await client.get("/v1/models/seed/walkthrough", params={**sample, "targets": "1,2"})
    assert_problem(wrong, 422, parameter="targets")


@pytest.mark.anyio
async def test_a_large_explanation_is_worked_out_in_a_worker_thread_with_the_same_answer(
    client: httpx.AsyncClient, offloaded: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await client.post("/v1/models", json=DEEP_NARROW)).status_code == 201
    markdown = {"format": "markdown"}
    large = await client.post("/v1/models/narrow/explain", json=NARROW_EXPLAIN)
    large_md = await client.post("/v1/models/narrow/explain", json=NARROW_EXPLAIN, params=markdown)
    unknown = {**NARROW_EXPLAIN, "parameter": "w99"}
    refused = await client.post("/v1/models/narrow/explain", json=unknown)
    assert len(offloaded) == 3
    assert large.status_code == 200 and large_md.status_code == 200, large.text
    assert large.headers["content-type"] == "application/json"
    assert large.headers["etag"] == large_md.headers["etag"] == '"1"'
    assert len(large.json()["paths"]) == 64
    assert_problem(refused, 422, pointer="/parameter")

    offloaded.clear()
    monkeypatch.setattr(learning, "INLINE_EXPLAIN_FACTORS", 10**9)  # now it is small: inline
    small = await client.post("/v1/models/narrow/explain", json=NARROW_EXPLAIN)
    small_md = await client.post("/v1/models/narrow/explain", json=NARROW_EXPLAIN, params=markdown)
    assert not offloaded
    assert small.json() == large.json()
    assert small_md.content == large_md.content
    # The seed's explanations stay on the event loop: smaller than a hop to a thread.
    await create_seed(client)
    seed = {"inputs": SEED_X, "targets": SEED_T, "parameter": "w1"}
    assert (await client.post("/v1/models/seed/explain", json=seed)).status_code == 200
    assert not offloaded


@pytest.mark.anyio
async def test_a_plot_of_many_versions_is_drawn_off_the_event_loop_with_the_same_bytes(
    client: httpx.AsyncClient, offloaded: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_seed(client)
    versions = learning.INLINE_PLOT_POINTS + 1
    data = {"inputs": SEED_X, "targets": SEED_T, "learning_rate": 0.01}
    for _ in range(versions - 1):  # one version more than the plot keeps inline
        assert (await client.post("/v1/models/seed/train-step", json=data)).status_code == 200
    sample = {"inputs": "0.23,0.55", "targets": "0.01"}
    large = await client.get("/v1/models/seed/history.svg", params=sample)
    assert large.status_code == 200 and offloaded, large.text
    offloaded.clear()
    monkeypatch.setattr(learning, "INLINE_PLOT_POINTS", 10**9)
    small = await client.get("/v1/models/seed/history.svg", params=sample)
    assert not offloaded
    assert small.content == large.content
    assert len(by_class(ET.fromstring(small.content), "point")) == versions
