"""Load test on loopback: concurrent clients doing forward, gradient and train-step on a few
models for a fixed time, then the checks that matter under load.

    python scripts/load.py [--duration 60] [--clients 8] [--models 3] [--json PATH]
    python scripts/load.py --url http://127.0.0.1:8000 --pid 1234   # an already running server

Without ``--url`` it starts ``python -m service serve`` on a free 127.0.0.1 port with a fresh
SQLite registry and stops it at the end. It stops by itself: after ``--duration`` seconds or
``--max-requests`` requests, whichever comes first. Checks:

- no 5xx, no transport error and no unexpected 4xx;
- no lost update: each model's final version is 1 + the number of acknowledged train-steps;
- the server's resident memory (VmRSS from /proc/<pid>/status, sampled every second) grows by
  less than 10% from the end of the warm-up to the end.

Prints requests per second, p50/p99 latency per operation and the RSS figures; ``--json PATH``
writes them. Exit status 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = ("forward", "gradient", "train-step")
WEIGHTS = (0.5, 0.25, 0.25)  # share of each operation in the mix
BATCH_ROWS = 8
RSS_GROWTH_LIMIT = 0.10
MAX_DURATION = 3600.0

# A few models of different shapes, losses and optimizers; 2 inputs each.
MODELS: list[dict[str, Any]] = [
    {
        "network": {
            "inputs": 2,
            "layers": [
                {"units": 32, "activation": "tanh"},
                {"units": 32, "activation": "relu"},
                {"units": 1, "activation": "sigmoid"},
            ],
            "loss": "binary_cross_entropy",
        },
        "optimizer": {"kind": "sgd", "learning_rate": 0.05, "momentum": 0.9},
    },
    {
        "network": {
            "inputs": 2,
            "layers": [
                {"units": 16, "activation": "relu"},
                {"units": 3, "activation": "softmax"},
            ],
            "loss": "cross_entropy",
        },
        "optimizer": {"kind": "adam", "learning_rate": 0.01},
    },
    {
        "network": {
            "inputs": 2,
            "layers": [
                {"units": 8, "activation": "leaky_relu"},
                {"units": 8, "activation": "sigmoid"},
                {"units": 1, "activation": "identity"},
            ],
            "loss": "half_squared_error",
        },
        "optimizer": {"kind": "sgd", "learning_rate": 0.01},
    },
]


@dataclass
class Config:
    duration: float = 60.0
    clients: int = 8
    models: int = 3
    warmup: float | None = None  # default: a quarter of the duration, at most 15 s
    max_requests: int = 5_000_000
    url: str | None = None
    pid: int | None = None
    registry: str | None = None
    seed: int = 0

    @property
    def warmup_seconds(self) -> float:
        return self.warmup if self.warmup is not None else min(15.0, self.duration / 4)


@dataclass
class OperationStats:
    count: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0


@dataclass
class Report:
    duration_s: float
    clients: int
    models: int
    requests: int
    rps: float
    operations: dict[str, OperationStats]
    statuses: dict[str, int]
    server_errors: int
    transport_errors: int
    unexpected: list[str]
    train_steps_acknowledged: dict[str, int]
    final_versions: dict[str, int]
    lost_updates: dict[str, int]
    rss_kib_at_warmup_end: int | None
    rss_kib_at_end: int | None
    rss_kib_peak: int | None
    rss_growth: float | None
    rss_samples: list[tuple[float, int]] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        found = []
        if self.server_errors:
            found.append(f"{self.server_errors} responses were 5xx")
        if self.transport_errors:
            found.append(f"{self.transport_errors} requests failed in transport")
        if self.unexpected:
            found.append(f"{len(self.unexpected)} unexpected answers, e.g. {self.unexpected[0]}")
        if self.lost_updates:
            found.append(f"lost updates (acknowledged - stored) {self.lost_updates}")
        if self.rss_growth is not None and self.rss_growth >= RSS_GROWTH_LIMIT:
            found.append(f"RSS grew {self.rss_growth:.1%} after the warm-up")
        return found


# -- the server -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise SystemExit(f"load.py targets loopback addresses only, not {host!r}")


@contextmanager
def server(config: Config) -> Iterator[tuple[str, int | None]]:
    """The base URL and pid of the server under load: the given one, or one started here."""
    if config.url is not None:
        _check_loopback(config.url)
        yield config.url.rstrip("/"), config.pid
        return
    with tempfile.TemporaryDirectory(prefix="backprop-load-") as tmp:
        port = _free_port()
        registry = config.registry or f"sqlite:///{tmp}/load.db"
        log_path = Path(tmp) / "server.log"
        env = {**os.environ, "BACKPROP_LOG_LEVEL": "warning"}
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "service", "serve"),
                    *("--host", "127.0.0.1", "--port", str(port), "--registry", registry),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            url = f"http://127.0.0.1:{port}"
            try:
                _wait_ready(url, process)
                yield url, process.pid
            finally:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        tail = log_path.read_text(errors="replace")[-2000:]
        if process.returncode not in (0, -15):
            print(f"server exited with {process.returncode}:\n{tail}", file=sys.stderr)


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=5) as client:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise SystemExit(f"the server at {url} did not start")


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB, None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


# -- the clients ----------------------------------------------------------------------------


class Tally:
    """What the clients saw; one lock, held only to append."""

    def __init__(self, names: list[str]) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {op: [] for op in OPERATIONS}
        self.statuses: dict[str, int] = {}
        self.server_errors = 0
        self.transport_errors = 0
        self.unexpected: list[str] = []
        self.acks = dict.fromkeys(names, 0)
        self.requests = 0

    def claim(self, limit: int) -> bool:
        """Reserve one request of the overall budget."""
        with self.lock:
            if self.requests >= limit:
                return False
            self.requests += 1
            return True


def _batch(rng: random.Random, model: dict[str, Any]) -> tuple[list[list[float]], list[Any]]:
    inputs = [[rng.uniform(-2, 2), rng.uniform(-2, 2)] for _ in range(BATCH_ROWS)]
    outputs = model["network"]["layers"][-1]["units"]
    if model["network"]["loss"] == "cross_entropy":
        targets: list[Any] = []
        for x in inputs:
            hot = [0.0] * outputs
            hot[int(x[0] > 0) + int(x[1] > 0)] = 1.0
            targets.append(hot)
    else:
        targets = [[float(x[0] * x[1] > 0)] for x in inputs]
    return inputs, targets


def client(
    url: str, names: list[str], config: Config, tally: Tally, deadline: float, seed: int
) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=30) as http:
        while time.monotonic() < deadline and tally.claim(config.max_requests):
            i = rng.randrange(len(names))
            name, model = names[i], MODELS[i % len(MODELS)]
            op = rng.choices(OPERATIONS, WEIGHTS)[0]
            inputs, targets = _batch(rng, model)
            body: dict[str, Any] = {"inputs": inputs}
            if op != "forward":
                body["targets"] = targets
            started = time.perf_counter()
            try:
                response = http.post(f"/v1/models/{name}/{op}", json=body)
            except httpx.TransportError as exc:
                with tally.lock:
                    tally.transport_errors += 1
                    tally.unexpected.append(f"{op} {name}: {exc!r}")
                continue
            elapsed = time.perf_counter() - started
            with tally.lock:
                tally.latencies[op].append(elapsed)
                key = str(response.status_code)
                tally.statuses[key] = tally.statuses.get(key, 0) + 1
                if response.status_code >= 500:
                    tally.server_errors += 1
                if response.status_code != 200:
                    tally.unexpected.append(f"{op} {name}: {response.status_code}")
                elif op == "train-step":
                    tally.acks[name] += 1


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(q * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# -- the run --------------------------------------------------------------------------------


def run(config: Config) -> Report:
    """Run the load against a server and check it; see the module docstring."""
    if not 0 < config.duration <= MAX_DURATION:
        raise SystemExit(f"--duration must be in (0, {MAX_DURATION:.0f}] seconds")
    with server(config) as (url, pid):
        names = [f"load-{i}" for i in range(config.models)]
        with httpx.Client(base_url=url, timeout=30) as http:
            for i, name in enumerate(names):
                model = {"name": name, **MODELS[i % len(MODELS)], "init": {"seed": i}}
                response = http.post("/v1/models", json=model)
                if response.status_code != 201:
                    raise SystemExit(f"creating {name}: {response.status_code} {response.text}")

        tally = Tally(names)
        samples: list[tuple[float, int]] = []
        stop = threading.Event()

        def sample_rss() -> None:
            while pid is not None and not stop.is_set():
                value = rss_kib(pid)
                if value is not None:
                    samples.append((time.monotonic() - started, value))
                stop.wait(1.0)

        started = time.monotonic()
        deadline = started + config.duration
        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        threads = [
            threading.Thread(
                target=client, args=(url, names, config, tally, deadline, config.seed + k)
            )
            for k in range(config.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        stop.set()
        sampler.join()
        if pid is not None and (last := rss_kib(pid)) is not None:
            samples.append((elapsed, last))

        with httpx.Client(base_url=url, timeout=30) as http:
            finals = {name: http.get(f"/v1/models/{name}").json()["version"] for name in names}

    operations: dict[str, OperationStats] = {}
    for op, values in tally.latencies.items():
        ordered = sorted(values)
        operations[op] = OperationStats(
            count=len(ordered),
            rps=round(len(ordered) / elapsed, 1),
            p50_ms=round(_percentile(ordered, 0.50) * 1000, 2),
            p99_ms=round(_percentile(ordered, 0.99) * 1000, 2),
            max_ms=round((ordered[-1] if ordered else 0.0) * 1000, 2),
        )
    after_warmup = [s for s in samples if s[0] >= config.warmup_seconds]
    rss_start = after_warmup[0][1] if after_warmup else None
    rss_end = samples[-1][1] if samples else None
    growth = None
    if rss_start and rss_end is not None:
        growth = round((rss_end - rss_start) / rss_start, 4)
    lost = {n: tally.acks[n] + 1 - finals[n] for n in names if finals[n] != tally.acks[n] + 1}
    total = sum(s.count for s in operations.values())
    return Report(
        duration_s=round(elapsed, 2),
        clients=config.clients,
        models=config.models,
        requests=total,
        rps=round(total / elapsed, 1),
        operations=operations,
        statuses=tally.statuses,
        server_errors=tally.server_errors,
        transport_errors=tally.transport_errors,
        unexpected=tally.unexpected[:20],
        train_steps_acknowledged=tally.acks,
        final_versions=finals,
        lost_updates=lost,
        rss_kib_at_warmup_end=rss_start,
        rss_kib_at_end=rss_end,
        rss_kib_peak=max((s[1] for s in after_warmup), default=None),
        rss_growth=growth,
        rss_samples=[(round(t, 2), v) for t, v in samples],
    )


def render(report: Report, config: Config) -> str:
    lines = [
        f"{report.requests} requests in {report.duration_s} s from {report.clients} clients on "
        f"{report.models} models: {report.rps} requests/s",
        f"{'operation':<12}{'count':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}",
    ]
    for op, s in report.operations.items():
        lines.append(
            f"{op:<12}{s.count:>8}{s.rps:>9.1f}{s.p50_ms:>9.2f}{s.p99_ms:>9.2f}{s.max_ms:>9.2f}"
        )
    lines.append(f"statuses: {report.statuses}")
    lines.append(
        f"train-steps acknowledged {report.train_steps_acknowledged}, final versions "
        f"{report.final_versions}"
    )
    if report.rss_growth is not None:
        lines.append(
            f"server RSS: {report.rss_kib_at_warmup_end} KiB after the {config.warmup_seconds:g} "
            f"s warm-up, {report.rss_kib_at_end} KiB at the end (peak "
            f"{report.rss_kib_peak} KiB): {report.rss_growth:+.1%}"
        )
    failures = report.failures
    lines.append("FAILED: " + "; ".join(failures) if failures else "OK: every check passed")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (60)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument("--models", type=int, default=3, help="models to share them (3)")
    parser.add_argument("--warmup", type=float, help="seconds before RSS is compared")
    parser.add_argument("--max-requests", type=int, default=5_000_000, help="request budget")
    parser.add_argument("--url", help="load this running server (loopback only)")
    parser.add_argument("--pid", type=int, help="its process id, for the RSS figures")
    parser.add_argument("--registry", help="registry URL of the server started here")
    parser.add_argument("--seed", type=int, default=0, help="seed of the clients' choices")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    config = Config(
        duration=args.duration,
        clients=args.clients,
        models=args.models,
        warmup=args.warmup,
        max_requests=args.max_requests,
        url=args.url,
        pid=args.pid,
        registry=args.registry,
        seed=args.seed,
    )
    report = run(config)
    print(render(report, config))
    if args.json is not None:
        payload = {**asdict(report), "failures": report.failures}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
