"""Forward latency on the seed model with and without a training job running in the server.

One server process; first the forward latency with nothing else running, then while a job
trains a 784-256-256-10 network (softmax, cross-entropy, batches of 64, random data) in the
same process. Requests are sequential on one keep-alive connection, so each latency is the
server's alone; p50 and p99 over all of them, and the job's steps per second meanwhile.

    .venv/bin/python -m benchmarks.jobs_bench [--requests 2000] [--registry sqlite|memory]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
import numpy as np

from benchmarks.wire_bench import MNIST_NETWORK
from tests.seed import SEED
from tests.servers import start

SEED_MODEL = {
    "name": "seed",
    "network": {**SEED["network"], "loss": "half_squared_error"},
    "parameters": SEED["parameters_named"],
}
FORWARD = {"inputs": [SEED["input"]]}
BIG_MODEL = {
    "name": "mnist-shaped",
    "network": MNIST_NETWORK,
    "init": {"scheme": "he_uniform", "seed": 1},
}


def latencies(client: httpx.Client, n: int) -> list[float]:
    """Milliseconds of `n` sequential forward requests on the seed model."""
    out = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.post("/v1/models/seed/forward", json=FORWARD)
        out.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"forward: {response.status_code} {response.text}")
    return out


def summary(name: str, ms: list[float]) -> dict[str, Any]:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "condition": name,
        "requests": len(ms),
        "p50_ms": round(q[49], 3),
        "p99_ms": round(q[98], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


def dataset(rows: int) -> bytes:
    rng = np.random.default_rng(0)
    inputs = rng.random((rows, 784))
    targets = np.eye(10)[rng.integers(0, 10, rows)]
    buffer = io.BytesIO()
    np.savez(buffer, inputs=inputs, targets=targets)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="forward requests per phase")
    parser.add_argument("--registry", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument(
        "--blas-threads",
        type=int,
        help="OPENBLAS_NUM_THREADS (and OMP_, MKL_) of the server; default: the library's",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    with TemporaryDirectory() as tmp:
        url = "memory://" if args.registry == "memory" else f"sqlite:///{tmp}/bench.db"
        env = {"BACKPROP_LOG_LEVEL": "warning"}
        if args.blas_threads is not None:
            for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env[name] = str(args.blas_threads)
        server = start("--registry", url, env=env)
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                for body in (SEED_MODEL, BIG_MODEL):
                    client.post("/v1/models", json=body).raise_for_status()
                client.post(
                    "/v1/datasets?name=random",
                    content=dataset(4096),
                    headers={"Content-Type": "application/x-npz"},
                ).raise_for_status()
                latencies(client, 200)  # warm-up
                idle = summary("no job", latencies(client, args.requests))
                job = client.post(
                    "/v1/models/mnist-shaped/train",
                    json={
                        "dataset": "random",
                        "epochs": 10_000,
                        "batch_size": 64,
                        "learning_rate": 0.01,
                        "seed": 1,
                    },
                ).json()
                while client.get(f"/v1/jobs/{job['id']}").json()["state"] != "running":
                    time.sleep(0.01)
                time.sleep(1.0)  # let it settle into its epochs
                before = time.perf_counter()
                step_before = client.get(f"/v1/jobs/{job['id']}").json()["step"]
                busy = summary("784-256-256-10 job training", latencies(client, args.requests))
                state = client.get(f"/v1/jobs/{job['id']}").json()
                steps = (state["step"] - step_before) / (time.perf_counter() - before)
                busy["job_steps_per_second"] = round(steps, 1)
                if state["state"] != "running":
                    raise RuntimeError(f"the job stopped during the measurement: {state}")
                client.post(f"/v1/jobs/{job['id']}/cancel").raise_for_status()
        finally:
            server.stop()
    rows = [idle, busy]
    threads = "default" if args.blas_threads is None else args.blas_threads
    print(
        f"forward latency on the seed model ({args.registry} registry, BLAS threads {threads}, "
        f"{os.cpu_count()} CPUs), sequential requests"
    )
    print(f"{'condition':32} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for row in rows:
        print(
            f"{row['condition']:32} {row['requests']:8d} {row['p50_ms']:8.3f} "
            f"{row['p99_ms']:8.3f} {row['mean_ms']:8.3f}"
        )
    print(
        f"job throughput during the measurement: {busy['job_steps_per_second']} steps/s "
        "(batches of 64)"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
