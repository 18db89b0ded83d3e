"""A second client that polls ``/healthz`` while a test sends heavy work to the same server: the
heavy-work tests assert that the health check stays prompt whatever else runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

INTERVAL = 0.02  # seconds between polls


@dataclass
class HealthProbe:
    """The latencies (seconds) and statuses of the polls made while the probe ran."""

    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)

    def describe(self) -> str:
        return f"{len(self.latencies)} polls, worst {self.worst * 1000:.0f} ms"


@contextmanager
def polling_health(url: str) -> Iterator[HealthProbe]:
    """Poll ``url``/healthz on its own connection and thread until the block ends."""
    probe = HealthProbe()
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while not stop.is_set():
                start = time.perf_counter()
                status = client.get("/healthz").status_code
                probe.latencies.append(time.perf_counter() - start)
                probe.statuses.append(status)
                stop.wait(INTERVAL)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield probe
    finally:
        stop.set()
        thread.join(timeout=90)
