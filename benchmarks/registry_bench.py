"""Forward and train-step throughput of a real server on each registry backend.

One server process per backend (memory, SQLite, PostgreSQL), all started up front; rounds are
interleaved (memory, SQLite, PostgreSQL, memory, ...) and each figure is the median over the
rounds, reported with its ratio to the memory backend measured in the same run.

    .venv/bin/python -m benchmarks.registry_bench [--seconds 3] [--rounds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx

from tests.seed import SEED
from tests.servers import Server, start

MODEL = {
    "name": "seed",
    "network": {**SEED["network"], "loss": "half_squared_error"},
    "parameters": SEED["parameters_named"],
}
FORWARD = {"inputs": [SEED["input"]]}
TRAIN = {"inputs": [SEED["input"]], "targets": [SEED["target"]], "learning_rate": 0.01}


async def throughput(
    url: str, path: str, body: dict[str, Any], seconds: float, clients: int
) -> float:
    """Requests per second of ``clients`` concurrent connections posting ``body`` for a while."""
    done = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                response = await client.post(path, json=body)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text}")
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return done / (time.perf_counter() - started)


def postgres_url() -> str:
    import psycopg

    base = os.environ.get("BACKPROP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"bp_bench_{uuid.uuid4().hex}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{base}?options=-csearch_path%3D{schema}"


def drop_schema(url: str) -> None:
    import psycopg

    base, _, options = url.partition("?")
    schema = options.rsplit("%3D", 1)[-1]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections")
    parser.add_argument("--quick", action="store_true", help="a smoke: 0.5 s, 1 round")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 0.5, 1

    results: dict[str, dict[str, list[float]]] = {}
    with TemporaryDirectory() as tmp, ExitStack() as stack:
        pg = postgres_url()
        stack.callback(drop_schema, pg)
        registries = {"memory": "memory://", "sqlite": f"sqlite:///{tmp}/bench.db", "postgres": pg}
        servers: dict[str, Server] = {}
        for name, registry in registries.items():
            servers[name] = start("--registry", registry, env={"BACKPROP_LOG_LEVEL": "warning"})
            stack.callback(servers[name].stop)
            created = httpx.post(f"{servers[name].url}/v1/models", json=MODEL, timeout=30)
            assert created.status_code == 201, created.text
            results[name] = {"forward": [], "train-step": []}
        for _ in range(args.rounds):
            for name, server in servers.items():  # interleaved: A B C A B C
                for op, path, body in (
                    ("forward", "/v1/models/seed/forward", FORWARD),
                    ("train-step", "/v1/models/seed/train-step", TRAIN),
                ):
                    rps = asyncio.run(
                        throughput(server.url, path, body, args.seconds, args.clients)
                    )
                    results[name][op].append(rps)

    table: list[dict[str, Any]] = []
    for op in ("forward", "train-step"):
        base = statistics.median(results["memory"][op])
        for name in results:
            median = statistics.median(results[name][op])
            table.append(
                {"operation": op, "backend": name, "rps": median, "vs_memory": median / base}
            )
    print(f"seed model over HTTP, {args.clients} clients, {args.rounds} rounds x {args.seconds} s")
    print(f"{'operation':<12}{'backend':<10}{'req/s':>10}{'vs memory':>11}")
    for row in table:
        print(
            f"{row['operation']:<12}{row['backend']:<10}{row['rps']:>10.0f}{row['vs_memory']:>11.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"results": table, "raw": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
