"""The allocator tuning: applied where glibc is, a no-op when switched off."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from service.core import SGD, Layer, Network, gradient, initialize, step
from service.memory import tune_malloc


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_the_thresholds_are_set_and_results_stay_the_same() -> None:
    net = Network(8, (Layer(16, "relu"), Layer(2, "softmax")), "cross_entropy")
    params = initialize(net, "he_uniform", 0)
    rng = np.random.default_rng(0)
    X, T = rng.random((64, 8)), np.eye(2)[rng.integers(0, 2, 64)]

    def trained() -> list[bytes]:
        new, _ = step(SGD(0.1), params, gradient(net, params, X, T).gradients)
        return [a.tobytes() for p in new for a in (p.W, p.b)]

    before = trained()
    assert tune_malloc(32 << 20, 64 << 20) is True
    assert trained() == before


def test_a_zero_threshold_leaves_the_allocator_alone() -> None:
    assert tune_malloc(0, 0) is False


def test_the_process_is_tuned_where_serving_starts_not_by_every_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A serving process (uvicorn's factory) sets the switch interval; an app built and run
    in a program of its own, a test's, leaves the program's setting alone."""
    import asyncio

    from service.api.app import create_app
    from service.cli import app_from_env
    from service.settings import Settings

    before = sys.getswitchinterval()
    monkeypatch.setenv("BACKPROP_REGISTRY", "memory://")
    monkeypatch.setenv("BACKPROP_SWITCH_INTERVAL_MS", "7")
    monkeypatch.setenv("BACKPROP_MALLOC_MMAP_THRESHOLD_MB", "0")  # the allocator left alone
    apps = []
    try:
        app = create_app(Settings())
        apps.append(app)

        async def run() -> None:
            async with app.router.lifespan_context(app):
                pass

        asyncio.run(run())
        assert sys.getswitchinterval() == before
        apps.append(app_from_env())
        assert sys.getswitchinterval() == pytest.approx(0.007)
    finally:
        sys.setswitchinterval(before)
        for built in apps:
            built.state.store.close()
