"""The performance suite: every figure of the performance targets, each a ratio against a
baseline measured in the same run.

    .venv/bin/python -m benchmarks [--quick] [--rounds 3] [--seconds 3] [--json PATH]
                                   [--only NAME ...] [--kserve-python PATH]

HTTP figures: servers pinned to CPU 0 (``taskset``), wrk pinned to CPU 1, on loopback; the
service and its baseline are measured interleaved (A B A B ...) and each figure is the median
over the rounds. In-process figures alternate the two sides the same way. PyTorch figures need
``torch`` in this environment (``pip install torch==2.13.0``, the CPU build) and the KServe
figure a virtual environment with kserve (``bash benchmarks/peers/install``); without them
those rows say so. Nothing is asserted: the table is a report, and ``--quick`` (about a
minute) is the CI smoke.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks import wrk
from benchmarks.registry_bench import drop_schema, postgres_url
from service.core import (
    SGD,
    DType,
    Layer,
    Network,
    OptimizerState,
    Params,
    forward,
    forward_outputs,
    gradient,
    initialize,
    step,
)
from service.jobs.training import TrainConfig, Trainer
from service.memory import tune_malloc_mib
from service.settings import Settings
from tests.seed import SEED
from tests.servers import ROOT, free_port, memory_kib, processes

SERVER_CPU, LOAD_CPU = 0, 1
PYTHON = sys.executable
SEED_MODEL = {
    "name": "seed",
    "network": {**SEED["network"], "loss": "half_squared_error"},
    "parameters": SEED["parameters_named"],
}
SEED_FORWARD = json.dumps({"inputs": [SEED["input"]]}).encode()
MNIST_SIZES = (784, 256, 256, 10)


@dataclass
class Row:
    """One figure: the service's value, the baseline's, their ratio and the goal."""

    name: str
    figure: str
    value: float | None
    baseline: float | None
    unit: str
    baseline_name: str
    goal: str  # ">= 1.10" or "<= 0.3": the ratio value / baseline
    ratio: float | None = None
    met: bool | None = None
    note: str = ""
    raw: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.value is not None and self.baseline:
            self.ratio = self.value / self.baseline
            op, target = self.goal.split()
            self.met = self.ratio >= float(target) if op == ">=" else self.ratio <= float(target)


@dataclass(frozen=True)
class Budget:
    rounds: int
    seconds: float  # per wrk run
    requests: int  # per sequential request-time measurement
    models: int  # stored models for the memory figure
    repeats: int  # calls per in-process timing sample


FULL = Budget(rounds=3, seconds=3.0, requests=20, models=200, repeats=20)
QUICK = Budget(rounds=1, seconds=1.0, requests=3, models=10, repeats=3)


# -- servers ----------------------------------------------------------------------------------


@contextmanager
def server(
    command: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cpu: int | str | None = SERVER_CPU,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A server process started with ``command`` (``{port}`` replaced), pinned to ``cpu`` (a
    CPU, or a taskset list such as ``"0,1"``), ready on ``GET ready_path``; yields its URL and
    process, and stops it afterwards."""
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in command]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1", **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait(url, process, log)
            yield url, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait(url: str, process: subprocess.Popen[bytes], log: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited:\n{log.read().decode(errors='replace')}")
        try:
            httpx.get(url + "/docs", timeout=1)  # any answer means it listens
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start")


def service(registry: str) -> list[str]:
    return [PYTHON, "-m", "service", "serve", "--port", "{port}", "--registry", registry]


SERVICE_ENV: dict[str, str] = {}  # as shipped: the default settings


def baseline(app: str) -> list[str]:
    return [
        PYTHON,
        "-m",
        "uvicorn",
        f"benchmarks.baselines:{app}",
        "--port",
        "{port}",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def create(url: str, body: dict[str, Any]) -> None:
    response = httpx.post(f"{url}/v1/models", json=body, timeout=120)
    if response.status_code != 201:
        raise RuntimeError(f"creating {body['name']}: {response.status_code} {response.text}")


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` and its children (taskset execs, so it is the server)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


# -- figures over HTTP ------------------------------------------------------------------------


def interleaved_wrk(
    sides: dict[str, str], body: bytes, budget: Budget, connections: int
) -> dict[str, list[wrk.Load]]:
    """wrk against each URL in ``sides``, A B A B, ``budget.rounds`` times."""
    runs: dict[str, list[wrk.Load]] = {name: [] for name in sides}
    for _ in range(budget.rounds):
        for name, url in sides.items():
            load = wrk.run(
                url, body=body, connections=connections, seconds=budget.seconds, cpu=LOAD_CPU
            )
            if load.errors:
                raise RuntimeError(f"{name}: {load.errors} failed requests of {load.requests}")
            runs[name].append(load)
    return runs


def forward_throughput(budget: Budget, stack: ExitStack, tmp: Path) -> list[Row]:
    """Figures 1-3: forward on the stored seed model against a bare FastAPI POST."""
    bare, _ = stack.enter_context(server(baseline("bare")))
    sqlite, _ = stack.enter_context(server(service(f"sqlite:///{tmp}/seed.db"), env=SERVICE_ENV))
    pg_url = postgres_url()
    stack.callback(drop_schema, pg_url)
    pg, _ = stack.enter_context(server(service(pg_url), env=SERVICE_ENV))
    for url in (sqlite, pg):
        create(url, SEED_MODEL)
    path = "/v1/models/seed/forward"
    sides = {"bare": bare + path, "sqlite": sqlite + path, "postgres": pg + path}
    at8 = interleaved_wrk(sides, SEED_FORWARD, budget, 8)
    at32 = interleaved_wrk({"bare": bare + path, "sqlite": sqlite + path}, SEED_FORWARD, budget, 32)

    def rps(side: str) -> float:
        return statistics.median(load.requests_per_second for load in at8[side])

    def p99(side: str) -> float:
        return statistics.median(load.p99_ms for load in at32[side])

    raw = {side: [load.requests_per_second for load in runs] for side, runs in at8.items()}
    return [
        Row(
            "forward_sqlite",
            "forward, stored seed model, SQLite, 1 worker, 8 connections",
            rps("sqlite"),
            rps("bare"),
            "req/s",
            "bare FastAPI POST, same body",
            ">= 1.10",
            raw=raw,
        ),
        Row(
            "forward_postgres",
            "the same with the PostgreSQL registry",
            rps("postgres"),
            rps("bare"),
            "req/s",
            "bare FastAPI POST, same body",
            ">= 1.00",
        ),
        Row(
            "forward_p99_32",
            "p99 latency of that forward (SQLite) at 32 connections",
            p99("sqlite"),
            p99("bare"),
            "ms",
            "bare FastAPI POST's p99",
            "<= 1.0",
            raw={side: [load.p99_ms for load in runs] for side, runs in at32.items()},
        ),
    ]


def workers_scaling(budget: Budget, stack: ExitStack, tmp: Path) -> list[Row]:
    """The forward of figure 1 served by ``--workers 2`` on both cores against 1 worker on one.
    This machine has 2 cores and wrk needs one of them too: the two workers share CPU 1 with
    it, so the figure is a floor of what 2 workers give on 2 cores of their own."""
    one, _ = stack.enter_context(server(service(f"sqlite:///{tmp}/one.db"), env=SERVICE_ENV))
    two, _ = stack.enter_context(
        server([*service(f"sqlite:///{tmp}/two.db"), "--workers", "2"], env=SERVICE_ENV, cpu="0,1")
    )
    for url in (one, two):
        create(url, SEED_MODEL)
    path = "/v1/models/seed/forward"
    runs = interleaved_wrk({"one": one + path, "two": two + path}, SEED_FORWARD, budget, 16)

    def rps(side: str) -> float:
        return statistics.median(load.requests_per_second for load in runs[side])

    return [
        Row(
            "forward_workers_2",
            "forward, stored seed model, --workers 2 on CPUs 0-1 (wrk on CPU 1), 16 connections",
            rps("two"),
            rps("one"),
            "req/s",
            "1 worker on CPU 0",
            ">= 1.8",
            raw={
                side: [load.requests_per_second for load in loads] for side, loads in runs.items()
            },
        )
    ]


def mnist_model(name: str, layers: Sequence[int] = MNIST_SIZES) -> dict[str, Any]:
    *hidden, last = layers[1:]
    return {
        "name": name,
        "network": {
            "inputs": layers[0],
            "layers": [{"units": u, "activation": "relu"} for u in hidden]
            + [{"units": last, "activation": "softmax"}],
            "loss": "cross_entropy",
        },
        "init": {"scheme": "he_uniform", "seed": 0},
    }


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def request_seconds(client: httpx.Client, send: Callable[[], httpx.Response], n: int) -> float:
    """Median seconds of ``n`` requests made by ``send`` (after one warm-up)."""
    send().raise_for_status()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        send().raise_for_status()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def batch_bodies(budget: Budget, stack: ExitStack) -> list[Row]:
    """Figures 4-5: a 256 x 784 batch as JSON and as .npy, against the textbook FastAPI body."""
    plain, _ = stack.enter_context(server(baseline("plain")))
    svc, _ = stack.enter_context(server(service("memory://"), env=SERVICE_ENV))
    create(svc, mnist_model("mnist"))
    X = np.random.default_rng(0).random((256, 784))
    body = json.dumps({"inputs": X.tolist()}).encode()
    npy = npy_bytes(X)
    path = "/v1/models/mnist/forward"
    json_headers = {"Content-Type": "application/json"}
    npy_headers = {"Content-Type": "application/x-npy", "Accept": "application/x-npy"}
    times: dict[str, list[float]] = {"plain": [], "json": [], "npy": []}
    with httpx.Client(timeout=120) as client:
        ours = np.asarray(
            client.post(svc + path, content=body, headers=json_headers).json()["outputs"]
        )
        theirs = np.asarray(
            client.post(plain + path, content=body, headers=json_headers).json()["outputs"]
        )
        if not np.allclose(ours, theirs, rtol=1e-12, atol=0):
            raise RuntimeError("the service and the baseline disagree on the batch's outputs")
        for _ in range(budget.rounds):
            times["plain"].append(
                request_seconds(
                    client,
                    lambda: client.post(plain + path, content=body, headers=json_headers),
                    budget.requests,
                )
            )
            times["json"].append(
                request_seconds(
                    client,
                    lambda: client.post(svc + path, content=body, headers=json_headers),
                    budget.requests,
                )
            )
            times["npy"].append(
                request_seconds(
                    client,
                    lambda: client.post(svc + path, content=npy, headers=npy_headers),
                    budget.requests,
                )
            )
    ms = {side: statistics.median(values) * 1e3 for side, values in times.items()}
    # The physical limit: the same forward in this process (one BLAS thread, as the server's
    # CPU has one), plus one copy of the request's bytes.
    network = mlp(MNIST_SIZES, "float64")
    params = initialize(network, "he_uniform", 0)

    def limit() -> object:
        bytearray(npy)  # one copy
        return forward_outputs(network, params, X, len(X))

    with threadpool_limits(1):
        t_limit, _ = alternate(limit, limit, budget)
    return [
        Row(
            "batch_json",
            "forward of a 256 x 784 JSON batch on 784-256-256-10, request time",
            ms["json"],
            ms["plain"],
            "ms",
            "FastAPI endpoint, body inputs: list[list[float]]",
            "<= 0.3",
            raw=times,
        ),
        Row(
            "batch_npy",
            "the same batch as .npy",
            ms["npy"],
            ms["json"],
            "ms",
            "the same batch as JSON",
            "<= 0.05",
        ),
        Row(
            "batch_npy_limit",
            "the same .npy forward, request time",
            ms["npy"],
            t_limit * 1e3,
            "ms",
            "the forward in process plus one copy of the bytes",
            "<= 1.25",
        ),
    ]


def v2_infer(budget: Budget, stack: ExitStack, kserve_python: Path | None) -> list[Row]:
    """Figure 12: V2 infer on the seed model against KServe's ModelServer."""
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": SEED["input"]}]}
    ).encode()
    svc, _ = stack.enter_context(server(service("memory://"), env=SERVICE_ENV))
    create(svc, SEED_MODEL)
    path = "/v2/models/seed/infer"
    if kserve_python is None or not kserve_python.exists():
        runs = interleaved_wrk({"service": svc + path}, body, budget, 8)
        value = statistics.median(load.requests_per_second for load in runs["service"])
        return [
            Row(
                "v2_infer",
                "Open Inference Protocol infer, seed model",
                value,
                None,
                "req/s",
                "KServe ModelServer",
                ">= 2.5",
                note="kserve not installed: bash benchmarks/peers/install",
            )
        ]
    kserve, _ = stack.enter_context(
        server(
            [
                str(kserve_python),
                "benchmarks/peers/kserve_seed.py",
                "--http_port",
                "{port}",
                "--enable_grpc",
                "false",
                "--enable_latency_logging",
                "false",
                "--log_config_file",
                "benchmarks/peers/kserve_logging.json",
            ]
        )
    )
    runs = interleaved_wrk({"kserve": kserve + path, "service": svc + path}, body, budget, 8)
    rps = {side: statistics.median(x.requests_per_second for x in v) for side, v in runs.items()}
    return [
        Row(
            "v2_infer",
            "Open Inference Protocol infer, seed model, 8 connections",
            rps["service"],
            rps["kserve"],
            "req/s",
            "KServe ModelServer, logs off",
            ">= 2.5",
            raw={side: [x.requests_per_second for x in v] for side, v in runs.items()},
        )
    ]


def forward_under_load(budget: Budget, stack: ExitStack) -> list[Row]:
    """Figure 10: small-forward p99 while a large gradient runs, against the same idle."""
    svc, _ = stack.enter_context(server(service("memory://"), env=SERVICE_ENV))
    create(svc, SEED_MODEL)
    create(svc, mnist_model("wide", (1024, 1024, 1024, 1024, 1024)))
    X = np.random.default_rng(1).random((1024, 1024))
    T = np.eye(1024)[np.random.default_rng(2).integers(0, 1024, 1024)]
    buffer = io.BytesIO()
    np.savez(buffer, inputs=X, targets=T)
    big = buffer.getvalue()
    stop = threading.Event()
    gradients = [0]

    def churn() -> None:
        os.sched_setaffinity(0, {LOAD_CPU})  # this thread: off the server's CPU, like wrk
        with httpx.Client(timeout=120) as client:
            while not stop.is_set():
                client.post(
                    svc + "/v1/models/wide/gradient",
                    content=big,
                    headers={"Content-Type": "application/x-npz", "Accept": "application/x-npz"},
                ).raise_for_status()
                gradients[0] += 1

    path = svc + "/v1/models/seed/forward"
    idle: list[float] = []
    busy: list[float] = []
    for _ in range(budget.rounds):
        idle.append(
            wrk.run(
                path, body=SEED_FORWARD, connections=2, seconds=budget.seconds, cpu=LOAD_CPU
            ).p99_ms
        )
        stop.clear()
        worker = threading.Thread(target=churn, daemon=True)
        worker.start()
        time.sleep(0.5)
        busy.append(
            wrk.run(
                path, body=SEED_FORWARD, connections=2, seconds=budget.seconds, cpu=LOAD_CPU
            ).p99_ms
        )
        stop.set()
        worker.join()
    return [
        Row(
            "forward_p99_under_gradient",
            "small-forward p99 while a 1024x4 batch-1024 gradient runs",
            statistics.median(busy),
            statistics.median(idle),
            "ms",
            "small-forward p99 idle",
            "<= 2.0",
            note=f"{gradients[0]} large gradients ran meanwhile",
            raw={"idle": idle, "busy": busy},
        )
    ]


WRK_TIMEOUT_MS = 10_000.0  # wrk.run's --timeout
HEALTH_LIMIT_MS = 250.0  # /healthz must answer within this whatever else runs
HEAVY_MEMORY = 512 << 20  # BACKPROP_MAX_REQUEST_MEMORY_BYTES of the heavy-work server
WORKER_MEMORY = 2 * HEAVY_MEMORY + (256 << 20)  # a worker's memory limit (answers: default)


def vm_kib(pid: int, field: str) -> int:
    """A field of /proc/<pid>/status (VmRSS, VmHWM) of that process alone, in KiB."""
    return memory_kib(pid, field, tree=False)


def heavy_requests(svc: str) -> dict[str, Callable[[httpx.Client], httpx.Response]]:
    """One heavy, valid (or large and invalid) request of each class, on models made here."""
    create(svc, SEED_MODEL)
    wide = {
        "inputs": 1,
        "layers": [{"units": 4096, "activation": "tanh"}, {"units": 1, "activation": "identity"}],
        "loss": "half_squared_error",
    }
    create(svc, {"name": "wide", "network": wide, "init": {"seed": 1}})
    create(svc, mnist_model("deep", (1024, 1024, 1024, 1024, 1024)))
    create(svc, mnist_model("big", (1, 1700, 1700, 2)))  # 2.9M parameters: a 23 MB .npz
    diagram = {
        "inputs": 32,
        "layers": [{"units": 31, "activation": "sigmoid"}, {"units": 1, "activation": "sigmoid"}],
        "loss": "half_squared_error",
    }
    create(svc, {"name": "drawn", "network": diagram, "init": {"seed": 1}})
    rows = npy_bytes(np.linspace(-1, 1, 100_000).reshape(-1, 1))
    X = np.random.default_rng(1).random((1024, 1024))
    T = np.eye(1024)[np.random.default_rng(2).integers(0, 1024, 1024)]
    buffer = io.BytesIO()
    np.savez(buffer, inputs=X, targets=T)
    gradient_npz = buffer.getvalue()
    exported = httpx.get(f"{svc}/v1/models/big/export?format=npz", timeout=120).content
    # 30 MB of JSON rows whose last value is not a number: refused (422), read once.
    invalid = json.dumps({"inputs": [[0.5]] * 1_500_000 + [["x"]], "targets": [[0.1]] * 1_500_001})
    imports = [0]

    def import_npz(client: httpx.Client) -> httpx.Response:
        imports[0] += 1
        name = f"imported-{imports[0]}"
        answer = client.post(
            f"/v1/models?name={name}",
            content=exported,
            headers={"Content-Type": "application/x-npz"},
        )
        client.delete(f"/v1/models/{name}")  # the memory registry would hold every import
        return answer

    npy = {"Content-Type": "application/x-npy", "Accept": "application/x-npy"}
    npz = {"Content-Type": "application/x-npz", "Accept": "application/x-npz"}
    return {
        "a 100,000-row forward on 1-4096-1 (in blocks)": lambda c: c.post(
            "/v1/models/wide/forward", content=rows, headers=npy
        ),
        "a 1024x4 batch-1024 gradient": lambda c: c.post(
            "/v1/models/deep/gradient", content=gradient_npz, headers=npz
        ),
        "the diagram of a 32-31-1 network": lambda c: c.get("/v1/models/drawn/diagram.svg"),
        "a JSON export of 2.9M parameters": lambda c: c.get("/v1/models/big/export"),
        "an .npz import of 2.9M parameters": import_npz,
        "a 30 MB gradient body that does not validate": lambda c: c.post(
            "/v1/models/seed/gradient",
            content=invalid.encode(),
            headers={"Content-Type": "application/json"},
        ),
    }


class Churn:
    """A thread that sends one request after another to the server while the block runs."""

    def __init__(self, url: str, send: Callable[[httpx.Client], httpx.Response]) -> None:
        self.url = url
        self.send = send
        self.done = 0
        self.statuses: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        os.sched_setaffinity(0, {LOAD_CPU})  # off the server's CPU, like wrk
        with httpx.Client(base_url=self.url, timeout=300) as client:
            while not self._stop.is_set():
                self.statuses.add(self.send(client).status_code)
                self.done += 1

    def __enter__(self) -> Churn:
        self._thread.start()
        time.sleep(0.5)  # the first heavy request under way
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def heavy_work(budget: Budget, stack: ExitStack) -> list[Row]:
    """Small-forward p99 and /healthz p99 while each class of heavy work runs, and the
    server's peak memory over all of them against the memory setting."""
    env = {**SERVICE_ENV, "BACKPROP_MAX_REQUEST_MEMORY_BYTES": str(HEAVY_MEMORY)}
    svc, process = stack.enter_context(server(service("memory://"), env=env))
    requests = heavy_requests(svc)
    before = vm_kib(process.pid, "VmRSS")
    forward, health = svc + "/v1/models/seed/forward", svc + "/healthz"

    def p99(url: str, body: bytes | None) -> float:
        load = wrk.run(url, body=body, connections=2, seconds=budget.seconds, cpu=LOAD_CPU)
        # No answer at all within the run: as slow as wrk's timeout, at least.
        return load.p99_ms if load.requests else WRK_TIMEOUT_MS

    idle_forward = [p99(forward, SEED_FORWARD) for _ in range(budget.rounds)]
    idle_health = [p99(health, None) for _ in range(budget.rounds)]
    rows: list[Row] = []
    for label, send in requests.items():
        churn = Churn(svc, send)
        busy_forward, busy_health = [], []
        with churn:
            for _ in range(budget.rounds):
                busy_forward.append(p99(forward, SEED_FORWARD))
                busy_health.append(p99(health, None))
        note = f"{churn.done} ran meanwhile, answered {sorted(churn.statuses)}"
        idle = statistics.median(idle_health)
        rows += [
            Row(
                "forward_p99_under_heavy",
                f"small-forward p99 while {label} runs",
                statistics.median(busy_forward),
                statistics.median(idle_forward),
                "ms",
                "small-forward p99 idle",
                "<= 2.0",
                note=note,
                raw={"idle": idle_forward, "busy": busy_forward},
            ),
            Row(
                "healthz_p99_under_heavy",
                f"/healthz p99 while {label} runs",
                statistics.median(busy_health),
                HEALTH_LIMIT_MS,
                "ms",
                f"the {HEALTH_LIMIT_MS:.0f} ms bound (idle {idle:.2g} ms)",
                "<= 1.0",
                raw={"idle": idle_health, "busy": busy_health},
            ),
        ]
    peak = vm_kib(process.pid, "VmHWM")
    workers = [vm_kib(p, "VmHWM") for p in processes(process.pid) if p != process.pid]
    rows += [
        Row(
            "heavy_peak_memory",
            "the server process's peak resident memory above its start, over every heavy class",
            (peak - before) / 1024,
            HEAVY_MEMORY / 2**20,
            "MiB",
            "BACKPROP_MAX_REQUEST_MEMORY_BYTES",
            "<= 1.0",
        ),
        Row(
            "heavy_worker_memory",
            "the largest peak resident memory of a worker process (its whole size)",
            max(workers, default=0) / 1024,
            WORKER_MEMORY / 2**20,
            "MiB",
            "a worker's limit (2 x memory setting + answer limit, above its start)",
            "<= 1.0",
        ),
    ]
    return rows


def memory(budget: Budget, stack: ExitStack, tmp: Path) -> list[Row]:
    """Figure 11: resident memory with many large models served in turn."""
    cache_mib = 256
    svc, process = stack.enter_context(
        server(
            service(f"sqlite:///{tmp}/many.db"),
            env={**SERVICE_ENV, "BACKPROP_CACHE_BYTES": str(cache_mib * 2**20)},
        )
    )
    # 1000 inputs, 499 relu units, 1 output: 499,999 parameters (4 MB in float64).
    network = {
        "inputs": 1000,
        "layers": [{"units": 499, "activation": "relu"}, {"units": 1, "activation": "sigmoid"}],
        "loss": "half_squared_error",
    }
    body = {"inputs": np.random.default_rng(3).random((1, 1000)).tolist()}
    with httpx.Client(base_url=svc, timeout=120) as client:
        for i in range(budget.models):
            create(svc, {"name": f"m{i}", "network": network, "init": {"seed": i}})
        for _ in range(2):
            for i in range(budget.models):
                client.post(f"/v1/models/m{i}/forward", json=body).raise_for_status()
    rss = rss_mib(process.pid)
    return [
        Row(
            "memory_many_models",
            f"resident memory, {budget.models} stored models of 500k parameters served in turn",
            rss,
            cache_mib + 250,
            "MiB",
            f"BACKPROP_CACHE_BYTES ({cache_mib} MiB) + 250 MB",
            "<= 1.0",
        )
    ]


# -- in-process figures -----------------------------------------------------------------------


def alternate(
    a: Callable[[], object], b: Callable[[], object], budget: Budget
) -> tuple[float, float]:
    """Median seconds per call of ``a`` and ``b``, timed in alternation (A B A B ...)."""
    for fn in (a, b):  # warm-up
        for _ in range(3):
            fn()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(max(5, budget.rounds * 5)):
        for fn, out in ((a, samples[0]), (b, samples[1])):
            started = time.perf_counter()
            for _ in range(budget.repeats):
                fn()
            out.append((time.perf_counter() - started) / budget.repeats)
    return statistics.median(samples[0]), statistics.median(samples[1])


def mlp(sizes: Sequence[int], dtype: DType, last: str = "softmax") -> Network:
    layers = [Layer(u, "relu") for u in sizes[1:-1]]
    loss = "cross_entropy" if last == "softmax" else "half_squared_error"
    return Network(sizes[0], (*layers, Layer(sizes[-1], last)), loss, dtype)  # type: ignore[arg-type]


def data(network: Network, rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((rows, network.inputs)).astype(network.dtype)
    k = network.layers[-1].units
    if network.loss == "cross_entropy":
        T = np.eye(k, dtype=network.dtype)[rng.integers(0, k, rows)]
    else:
        T = rng.random((rows, k)).astype(network.dtype)
    return X, T


def core_step(
    network: Network, params: Params, X: np.ndarray, T: np.ndarray
) -> Callable[[], object]:
    optimizer = SGD(learning_rate=0.01)
    state = OptimizerState()

    def run() -> object:
        result = gradient(network, params, X, T)
        return step(optimizer, params, result.gradients, state)

    return run


def step_gemms(network: Network, params: Params, X: np.ndarray) -> Callable[[], object]:
    """The matrix products of one train step alone, into buffers made once: per layer the
    forward's ``a W``, and backwards ``a^T delta`` (the weights' gradient) and, but for the
    first layer, ``delta W^T`` (the delta of the layer before)."""
    acts = [X]
    for p in params:
        acts.append(np.ones((len(X), p.W.shape[1]), dtype=network.dtype))
    outs = [np.empty_like(a) for a in acts[1:]]
    grads = [np.empty_like(p.W) for p in params]
    backs = [np.empty_like(a) for a in acts[:-1]]

    def run() -> object:
        for layer, p in enumerate(params):
            np.matmul(acts[layer], p.W, out=outs[layer])
        for layer in range(len(params) - 1, -1, -1):
            delta = acts[layer + 1]
            np.matmul(acts[layer].T, delta, out=grads[layer])
            if layer:
                np.matmul(delta, params[layer].W.T, out=backs[layer])
        return None

    return run


def torch_step(
    network: Network, params: Params, X: np.ndarray, T: np.ndarray
) -> Callable[[], object]:
    import torch

    dtype = torch.float64 if network.dtype == "float64" else torch.float32
    modules: list[torch.nn.Module] = []
    for i, (layer, p) in enumerate(zip(network.layers, params, strict=True)):
        linear = torch.nn.Linear(p.W.shape[0], p.W.shape[1], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(p.W.T.copy()))
            linear.bias.copy_(torch.from_numpy(p.b.copy()))
        modules.append(linear)
        if i < len(network.layers) - 1:
            modules.append(torch.nn.ReLU())
        elif layer.activation == "sigmoid":
            modules.append(torch.nn.Sigmoid())
    model = torch.nn.Sequential(*modules)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, t = torch.from_numpy(X), torch.from_numpy(T)
    softmax = network.layers[-1].activation == "softmax"

    def run() -> object:
        optimizer.zero_grad()
        out = model(x)
        if softmax:
            loss = torch.nn.functional.cross_entropy(out, t)
        else:
            loss = 0.5 * ((out - t) ** 2).sum(dim=1).mean()
        loss.backward()
        optimizer.step()
        return loss

    return run


def has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


NO_TORCH = "torch not installed: pip install torch==2.13.0"


def train_steps(budget: Budget, threads: int) -> list[Row]:
    """Figures 6-7: a train step against PyTorch eager on the same threads."""
    rows: list[Row] = []
    cases: list[tuple[str, str, Network, int]] = [
        (
            f"train_step_mnist_{d}",
            f"train step, 784-256-256-10 batch 128, {d}",
            mlp(MNIST_SIZES, d),
            128,
        )
        for d in ("float32", "float64")
    ]
    cases.append(
        (
            "train_step_seed",
            "train step, 2-3-3-1 batch 1",
            mlp((2, 3, 3, 1), "float64", "sigmoid"),
            1,
        )
    )
    if has_torch():
        import torch

        torch.set_num_threads(threads)
    for name, figure, network, batch in cases:
        goal = "<= 0.2" if name == "train_step_seed" else "<= 0.90"
        params = initialize(network, "he_uniform", 0)
        X, T = data(network, batch)
        ours = core_step(network, params, X, T)
        if name != "train_step_seed":
            t_step, t_gemms = alternate(ours, step_gemms(network, params, X), budget)
            rows.append(
                Row(
                    f"{name}_gemms",
                    f"{figure}, against its own matrix products",
                    t_step * 1e6,
                    t_gemms * 1e6,
                    "µs",
                    "the step's 8 GEMMs alone, same shapes and dtype",
                    "<= 1.15",
                )
            )
        if not has_torch():
            t, _ = alternate(ours, ours, budget)
            rows.append(
                Row(name, figure, t * 1e6, None, "µs", "PyTorch eager", goal, note=NO_TORCH)
            )
            continue
        t_ours, t_torch = alternate(ours, torch_step(network, params, X, T), budget)
        rows.append(Row(name, figure, t_ours * 1e6, t_torch * 1e6, "µs", "PyTorch eager", goal))
    return rows


def gemm_rate(budget: Budget) -> list[Row]:
    """Figure 8: forward GFLOP/s on 1024x4, batch 1024, float32, against NumPy's own GEMM."""
    network = mlp((1024, 1024, 1024, 1024, 1024), "float32", "identity")
    params = initialize(network, "he_uniform", 0)
    X, _ = data(network, 1024)
    A = np.random.default_rng(4).random((1024, 1024), dtype=np.float32)
    B = np.random.default_rng(5).random((1024, 1024), dtype=np.float32)
    t_forward, t_gemm = alternate(lambda: forward(network, params, X), lambda: A @ B, budget)
    flops = 2 * 1024 * 1024 * 1024
    return [
        Row(
            "forward_gflops",
            "forward, 1024x4 batch 1024, float32",
            4 * flops / t_forward / 1e9,
            flops / t_gemm / 1e9,
            "GFLOP/s",
            "NumPy's 1024^3 float32 GEMM",
            ">= 0.85",
        )
    ]


def training_throughput(budget: Budget, threads: int) -> list[Row]:
    """Figure 9: a job's training loop (samples/s) against a PyTorch eager loop, same data,
    in float32 and in float64."""
    rows: list[Row] = []
    for dtype in ("float32", "float64"):
        rows.append(_training_throughput(budget, threads, dtype))
    return rows


def _training_throughput(budget: Budget, threads: int, dtype: DType) -> Row:
    network = mlp((256, 256, 256, 10), dtype)
    rows = 128 * (8 if budget is QUICK else 64)
    X, T = data(network, rows)
    params = initialize(network, "he_uniform", 0)
    config = TrainConfig(epochs=1, batch_size=128, optimizer=SGD(learning_rate=0.01), seed=0)
    trainer = Trainer(network, X, T, config)

    def ours() -> object:
        for _ in trainer.run(params, OptimizerState(), trainer.start()):
            pass
        return None

    goal = ">= 1.05"
    name = f"training_throughput_{dtype}"
    figure = f"training job loop, 256-256-256-10 batch 128, {dtype}"
    if not has_torch():
        t, _ = alternate(ours, ours, QUICK)
        return Row(
            name, figure, rows / t, None, "samples/s", "PyTorch eager loop", goal, note=NO_TORCH
        )
    import torch

    torch.set_num_threads(threads)
    order = np.random.default_rng(0).permutation(rows)
    steps = [
        torch_step(network, params, X[order[i : i + 128]], T[order[i : i + 128]])
        for i in range(0, rows, 128)
    ]

    def theirs() -> object:
        for run in steps:
            run()
        return None

    t_ours, t_torch = alternate(ours, theirs, Budget(budget.rounds, 0, 0, 0, 1))
    return Row(name, figure, rows / t_ours, rows / t_torch, "samples/s", "PyTorch eager loop", goal)


# -- the suite --------------------------------------------------------------------------------

GROUPS = (
    "forward",
    "workers",
    "batch",
    "v2",
    "under_load",
    "heavy",
    "memory",
    "train_steps",
    "gemm",
    "training",
)


def run(budget: Budget, only: Sequence[str], kserve_python: Path | None, threads: int) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for group in GROUPS:
            if only and group not in only:
                continue
            started = time.perf_counter()
            with ExitStack() as stack:
                if group == "forward":
                    rows += forward_throughput(budget, stack, tmp)
                elif group == "workers":
                    rows += workers_scaling(budget, stack, tmp)
                elif group == "batch":
                    rows += batch_bodies(budget, stack)
                elif group == "v2":
                    rows += v2_infer(budget, stack, kserve_python)
                elif group == "under_load":
                    rows += forward_under_load(budget, stack)
                elif group == "heavy":
                    rows += heavy_work(budget, stack)
                elif group == "memory":
                    rows += memory(budget, stack, tmp)
                elif group == "train_steps":
                    rows += train_steps(budget, threads)
                elif group == "gemm":
                    rows += gemm_rate(budget)
                elif group == "training":
                    rows += training_throughput(budget, threads)
            print(f"  {group}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows


def _number(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def table(rows: Sequence[Row]) -> str:
    """A Markdown table of the rows."""
    lines = [
        "| figure | value | baseline | ratio | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "n/a" if r.met is None else ("yes" if r.met else "**no**")
        ratio = "n/a" if r.ratio is None else f"{r.ratio:.2f}"
        note = f" ({r.note})" if r.note else ""
        lines.append(
            f"| {r.figure}{note} | {_number(r.value)} {r.unit} | {_number(r.baseline)} {r.unit} "
            f"({r.baseline_name}) | {ratio} | {r.goal} | {met} |"
        )
    return "\n".join(lines)


def default_kserve() -> Path:
    return ROOT / ".peers" / "kserve" / "bin" / "python"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="the CI smoke: short and small")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    parser.add_argument("--seconds", type=float, help="seconds per wrk run (default 3)")
    parser.add_argument("--only", nargs="*", choices=GROUPS, default=[], help="groups to run")
    parser.add_argument("--kserve-python", type=Path, default=default_kserve())
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "suite.json")
    args = parser.parse_args(argv)
    if not wrk.available():
        parser.error("wrk is needed: apt-get install -y wrk")
    budget = QUICK if args.quick else FULL
    budget = Budget(
        args.rounds or budget.rounds,
        args.seconds or budget.seconds,
        budget.requests,
        budget.models,
        budget.repeats,
    )
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    # the in-process figures: with the allocator tuned as the service tunes it
    tune_malloc_mib(Settings().malloc_mmap_threshold_mb)
    rows = run(budget, args.only, args.kserve_python, threads)
    print(table(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "numpy": np.__version__,
                },
                "budget": asdict(budget),
                "rows": [asdict(r) for r in rows],
            },
            indent=2,
        )
    )
    print(f"(written to {args.json})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
