"""Time and bytes on the wire of one large forward, as JSON, as .npy and as V2 binary tensors.

A real server (memory registry) holds a 784-256-256-10 relu/softmax network; a batch of
4096 x 784 float64 inputs goes to it three ways, and the outputs come back the same way:

- JSON:      ``POST /v1/models/{name}/forward`` with ``{"inputs": [[...]]}``;
- .npy:      the same endpoint, ``Content-Type`` and ``Accept: application/x-npy``;
- V2 binary: ``POST /v2/models/{name}/infer`` with binary input and output tensors.

Each time is the median over the rounds of the whole exchange as a client sees it: encoding
the request, the server's work, the transfer and decoding the answer into a NumPy array. The
outputs of the three are checked to be equal.

    .venv/bin/python -m benchmarks.wire_bench [--rows 4096] [--rounds 5]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np
from numpy.typing import NDArray

from tests.servers import start

NAME = "mnist-mlp"
SIZES = [784, 256, 256, 10]
# An MNIST-shaped classifier (784-256-256-10); jobs_bench trains one too.
MNIST_NETWORK = {
    "inputs": SIZES[0],
    "layers": [
        {"units": 256, "activation": "relu"},
        {"units": 256, "activation": "relu"},
        {"units": 10, "activation": "softmax"},
    ],
    "loss": "cross_entropy",
}
MODEL = {"name": NAME, "network": MNIST_NETWORK, "init": {"scheme": "he_uniform", "seed": 0}}
Array = NDArray[np.float64]


@dataclass
class Exchange:
    """One way of sending the batch: request bytes, response bytes, time, outputs."""

    name: str
    sent: int = 0
    received: int = 0
    seconds: float = 0.0
    outputs: Array | None = None


def as_json(client: httpx.Client, X: Array) -> tuple[int, int, Array]:
    content = json.dumps({"inputs": X.tolist()}).encode()
    response = client.post(
        f"/v1/models/{NAME}/forward",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    response.raise_for_status()
    return len(content), len(response.content), np.array(response.json()["outputs"])


def as_npy(client: httpx.Client, X: Array) -> tuple[int, int, Array]:
    stream = io.BytesIO()
    np.save(stream, X, allow_pickle=False)
    content = stream.getvalue()
    response = client.post(
        f"/v1/models/{NAME}/forward",
        content=content,
        headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"},
    )
    response.raise_for_status()
    outputs: Array = np.load(io.BytesIO(response.content), allow_pickle=False)
    return len(content), len(response.content), outputs


def as_v2_binary(client: httpx.Client, X: Array) -> tuple[int, int, Array]:
    raw = X.astype("<f8").tobytes()
    tensor = {
        "name": "input",
        "shape": list(X.shape),
        "datatype": "FP64",
        "parameters": {"binary_data_size": len(raw)},
    }
    request = {"inputs": [tensor], "parameters": {"binary_data_output": True}}
    header = json.dumps(request).encode()
    response = client.post(
        f"/v2/models/{NAME}/infer",
        content=header + raw,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    response.raise_for_status()
    n = int(response.headers["Inference-Header-Content-Length"])
    (output,) = json.loads(response.content[:n])["outputs"]
    outputs = np.frombuffer(response.content[n:], "<f8").reshape(output["shape"])
    return len(header) + len(raw), len(response.content), outputs


WAYS: dict[str, Callable[[httpx.Client, Array], tuple[int, int, Array]]] = {
    "JSON": as_json,
    ".npy": as_npy,
    "V2 binary": as_v2_binary,
}


def measure(url: str, X: Array, rounds: int) -> list[Exchange]:
    exchanges = {name: Exchange(name) for name in WAYS}
    times: dict[str, list[float]] = {name: [] for name in WAYS}
    with httpx.Client(base_url=url, timeout=300) as client:
        for way in WAYS.values():  # one warm-up each
            way(client, X)
        for _ in range(rounds):  # interleaved rounds
            for name, way in WAYS.items():
                started = time.perf_counter()
                sent, received, outputs = way(client, X)
                times[name].append(time.perf_counter() - started)
                exchange = exchanges[name]
                exchange.sent, exchange.received, exchange.outputs = sent, received, outputs
    for name, exchange in exchanges.items():
        exchange.seconds = statistics.median(times[name])
    return list(exchanges.values())


def table(exchanges: list[Exchange], rows: int) -> str:
    base = exchanges[0]
    lines = [
        f"forward of {rows} x {SIZES[0]} float64 on {'-'.join(map(str, SIZES))} relu/softmax",
        "| transport | request bytes | response bytes | time (ms) | bytes vs JSON | time vs JSON |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for e in exchanges:
        total, base_total = e.sent + e.received, base.sent + base.received
        lines.append(
            f"| {e.name} | {e.sent:,} | {e.received:,} | {e.seconds * 1000:,.0f} | "
            f"{total / base_total:.3f} | {e.seconds / base.seconds:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    X = np.random.default_rng(0).random((args.rows, SIZES[0]))
    env = {"BACKPROP_LOG_LEVEL": "warning", "BACKPROP_MAX_BODY_BYTES": str(512 * 1024 * 1024)}
    server = start("--registry", "memory://", env=env)
    try:
        created = httpx.post(f"{server.url}/v1/models", json=MODEL, timeout=30)
        created.raise_for_status()
        exchanges = measure(server.url, X, args.rounds)
    finally:
        server.stop()
    reference = exchanges[0].outputs
    for e in exchanges[1:]:
        if e.outputs is None or reference is None or not np.array_equal(e.outputs, reference):
            raise SystemExit(f"{e.name} outputs differ from the JSON outputs")
    print(table(exchanges, args.rows))


if __name__ == "__main__":
    main()
