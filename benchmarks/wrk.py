"""Load from wrk (Debian's ``wrk``), pinned to its own CPU, and its figures parsed.

A POST body goes in a Lua script written to a temporary file; ``--latency`` gives the
percentiles. Responses other than 2xx are counted and reported, never ignored.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class Load:
    """What one wrk run measured."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx responses and socket errors


def available() -> bool:
    return shutil.which("wrk") is not None


def script(body: bytes, content_type: str) -> str:
    """A wrk Lua script that POSTs ``body``."""
    text = body.decode()
    fence = "=" * 8
    assert f"]{fence}]" not in text
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = [{fence}[{text}]{fence}]\n"
        f'wrk.headers["Content-Type"] = "{content_type}"\n'
    )


def run(
    url: str,
    *,
    body: bytes | None = None,
    content_type: str = "application/json",
    connections: int = 8,
    seconds: float = 3.0,
    cpu: int | None = None,
) -> Load:
    """``wrk -t1 -c{connections} -d{seconds}s --latency`` against ``url``."""
    with tempfile.TemporaryDirectory() as folder:
        command = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "--timeout",
            "10s",
        ]
        if body is not None:
            path = os.path.join(folder, "post.lua")
            with open(path, "w") as f:
                f.write(script(body, content_type))
            command += ["-s", path]
        if cpu is not None:
            command = ["taskset", "-c", str(cpu), *command]
        out = subprocess.run(
            [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
        ).stdout
    return parse(out)


def parse(out: str) -> Load:
    """The figures of wrk's report."""
    rps = float(_search(r"Requests/sec:\s+([\d.]+)", out))
    requests = int(_search(r"(\d+) requests in", out))
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    return Load(rps, _percentile(out, "50"), _percentile(out, "99"), requests, errors)


def _percentile(out: str, p: str) -> float:
    m = re.search(rf"^\s+{p}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
    if m is None:
        raise ValueError(f"no {p}% latency in wrk's output:\n{out}")
    return float(m.group(1)) * UNITS[m.group(2)]


def _search(pattern: str, out: str) -> str:
    m = re.search(pattern, out)
    if m is None:
        raise ValueError(f"wrk's output has no {pattern!r}:\n{out}")
    return m.group(1)
