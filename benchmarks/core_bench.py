"""Timings of the numeric core: forward, and one train step (gradient + SGD step).

Run as ``python -m benchmarks.core_bench [--quick] [--json PATH] [--threads N]``. Cases:

- ``seed``: the seed's 2-3-3-1 network (relu, relu, sigmoid, half squared error), batch 1;
- ``mlp``: a 784-256-256-10 ReLU network with softmax and cross entropy, batch 128;

each in float64 and float32. As a baseline measured in the same run, one bare ``X @ W`` of the
largest layer (batch 128 x 784 inputs times 784 x 256) in each dtype: the ``x GEMM`` column is
a figure divided by that baseline of its dtype, so that runs on different machines compare.

Each figure is the median, 10th and 90th percentile over ``samples`` timed samples, a sample
being ``calls`` back-to-back calls (as many as fill the target sample time) timed with
``time.perf_counter_ns`` after a warm-up, divided by ``calls``. Nothing is asserted: this is
a report, not a test. ``--quick`` (a couple of seconds) is the CI smoke. On a busy machine a
multi-threaded BLAS makes the big cases erratic; ``--threads 1`` steadies them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from service.core import (
    SGD,
    DType,
    Layer,
    Network,
    OptimizerState,
    Params,
    check_parameters,
    forward,
    gradient,
    initialize,
    step,
)
from service.memory import tune_malloc_mib
from service.settings import Settings

GEMM_BATCH, GEMM_IN, GEMM_OUT = 128, 784, 256


@dataclass(frozen=True)
class Budget:
    samples: int
    sample_ns: int  # target duration of one sample; calls per sample are chosen to fill it
    warmup_ns: int


FULL = Budget(samples=41, sample_ns=5_000_000, warmup_ns=50_000_000)
QUICK = Budget(samples=7, sample_ns=1_000_000, warmup_ns=5_000_000)


@dataclass(frozen=True)
class Figure:
    case: str
    dtype: str
    op: str
    batch: int
    median_ns: float
    p10_ns: float
    p90_ns: float
    samples: int
    calls: int
    ratio_to_gemm: float  # median / median of the bare GEMM of the same dtype


def measure(fn: Callable[[], object], budget: Budget) -> tuple[float, float, float, int]:
    """Median, p10 and p90 in ns per call of ``fn``, and the calls per sample."""
    deadline = time.perf_counter_ns() + budget.warmup_ns
    fn()
    while time.perf_counter_ns() < deadline:
        fn()
    calls = 1  # calibrate: as many calls as fill one sample
    while True:
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter_ns() - t0
        if elapsed >= budget.sample_ns * 0.9:
            break
        calls = min(10 * calls, max(calls + 1, round(calls * budget.sample_ns / max(elapsed, 1))))
    times: list[float] = []
    for _ in range(budget.samples):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter_ns() - t0) / calls)
    deciles = statistics.quantiles(times, n=10, method="inclusive")
    return statistics.median(times), deciles[0], deciles[-1], calls


@dataclass(frozen=True)
class Case:
    name: str
    network: Network
    batch: int


def cases(dtype: DType) -> list[Case]:
    seed = Network(
        2, (Layer(3, "relu"), Layer(3, "relu"), Layer(1, "sigmoid")), "half_squared_error", dtype
    )
    mlp = Network(
        784, (Layer(256, "relu"), Layer(256, "relu"), Layer(10, "softmax")), "cross_entropy", dtype
    )
    return [Case("seed 2-3-3-1", seed, 1), Case("mlp 784-256-256-10", mlp, 128)]


# the seed's worked example: parameters, one input row and its target
SEED_WEIGHTS = [
    [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],
    [[0.7, 0.8, 0.9], [0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],
    [[0.7], [0.8], [0.9]],
]
SEED_BIASES = [[0.1, -0.4, 0.3], [-0.5, 0.5, 0.6], [-0.7]]


def data(case: Case, rng: np.random.Generator) -> tuple[Params, np.ndarray, np.ndarray]:
    dtype = case.network.np_dtype
    if case.name.startswith("seed"):
        params = check_parameters(case.network, list(zip(SEED_WEIGHTS, SEED_BIASES, strict=True)))
        return params, np.array([[0.23, 0.55]], dtype=dtype), np.array([[0.01]], dtype=dtype)
    params = initialize(case.network, "he_uniform", seed=0)
    X = rng.uniform(0.0, 1.0, (case.batch, case.network.inputs)).astype(dtype)
    outputs = case.network.outputs
    if case.network.loss == "cross_entropy":
        T = np.eye(outputs, dtype=dtype)[rng.integers(0, outputs, case.batch)]
    else:
        T = rng.uniform(0.0, 1.0, (case.batch, outputs)).astype(dtype)
    return params, X, T


def train_step(
    network: Network, optimizer: SGD, params: Params, X: np.ndarray, T: np.ndarray
) -> tuple[Params, OptimizerState]:
    """What a train-step request does: the gradient of the batch, then one update."""
    result = gradient(network, params, X, T)
    return step(optimizer, params, result.gradients)


def run(budget: Budget) -> list[Figure]:
    rng = np.random.default_rng(0)
    figures: list[Figure] = []
    optimizer = SGD(learning_rate=0.01)
    dtypes: tuple[DType, ...] = ("float64", "float32")
    for dtype in dtypes:
        X = rng.uniform(0.0, 1.0, (GEMM_BATCH, GEMM_IN)).astype(dtype)
        W = rng.uniform(-0.1, 0.1, (GEMM_IN, GEMM_OUT)).astype(dtype)
        gemm, gemm_p10, gemm_p90, gemm_calls = measure(partial(np.matmul, X, W), budget)
        figures.append(
            Figure(f"GEMM {GEMM_BATCH}x{GEMM_IN} @ {GEMM_IN}x{GEMM_OUT}", dtype, "X @ W",
                   GEMM_BATCH, gemm, gemm_p10, gemm_p90, budget.samples, gemm_calls, 1.0)
        )  # fmt: skip
        for case in cases(dtype):
            params, Xc, Tc = data(case, rng)
            ops: list[tuple[str, Callable[[], object]]] = [
                ("forward", partial(forward, case.network, params, Xc)),
                ("train step", partial(train_step, case.network, optimizer, params, Xc, Tc)),
            ]
            for op, fn in ops:
                median, p10, p90, calls = measure(fn, budget)
                figures.append(
                    Figure(case.name, dtype, op, case.batch, median, p10, p90, budget.samples,
                           calls, median / gemm)
                )  # fmt: skip
    return figures


def _duration(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.3f} ms"
    return f"{ns / 1e3:.2f} µs"


def table(figures: Sequence[Figure]) -> str:
    header = ("case", "dtype", "op", "batch", "median", "p10", "p90", "x GEMM", "samples x calls")
    rows = [
        (
            f.case,
            f.dtype,
            f.op,
            str(f.batch),
            _duration(f.median_ns),
            _duration(f.p10_ns),
            _duration(f.p90_ns),
            f"{f.ratio_to_gemm:.3g}",
            f"{f.samples} x {f.calls}",
        )
        for f in figures
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    numeric = {3, 4, 5, 6, 7, 8}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def environment(quick: bool) -> dict[str, object]:
    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "quick": quick,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _pin_blas_threads(threads: int, argv: Sequence[str]) -> None:
    """BLAS reads its thread count when NumPy is loaded: set it and start again, unless set."""
    if all(os.environ.get(v) == str(threads) for v in THREAD_VARIABLES):
        return
    env = {**os.environ, **dict.fromkeys(THREAD_VARIABLES, str(threads))}
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.core_bench", *argv], env)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.core_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a short run (the CI smoke)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="BLAS threads (restarts the script with OPENBLAS_NUM_THREADS=N and the like); "
        "1 gives steadier figures on a busy machine. Default: the BLAS default",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        _pin_blas_threads(args.threads, sys.argv[1:] if argv is None else argv)
    # the allocator tuned as the service tunes it
    tune_malloc_mib(Settings().malloc_mmap_threshold_mb)
    budget = QUICK if args.quick else FULL
    env = environment(args.quick)
    started = time.perf_counter()
    figures = run(budget)
    env["seconds"] = round(time.perf_counter() - started, 2)
    print(
        f"numeric core, per call (numpy {env['numpy']}, python {env['python']}, "
        f"{env['machine']}, {env['cpus']} CPUs, BLAS threads {env['blas_threads']}"
        f"{', quick' if args.quick else ''})"
    )
    print("x GEMM: the median over the median of one bare X @ W of the same dtype\n")
    print(table(figures))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"environment": env, "figures": [asdict(f) for f in figures]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
