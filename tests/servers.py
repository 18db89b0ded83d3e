"""Real server processes for tests: ``python -m service serve`` on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """A running server process and its base URL."""

    process: subprocess.Popen[bytes]
    url: str
    _chunks: list[bytes] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def __post_init__(self) -> None:
        # Drain the output as it comes: a pipe nobody reads fills (64 KiB) and then blocks the
        # server's next log write, which freezes its event loop.
        if self.process.stdout is not None:
            self._reader = threading.Thread(target=self._drain, daemon=True)
            self._reader.start()

    def _drain(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        # os.read returns what is there (up to 64 KiB) and b"" at the end of the output.
        for chunk in iter(lambda: os.read(stream.fileno(), 65536), b""):
            self._chunks.append(chunk)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    raise AssertionError(f"the server did not start:\n{self.log()}")
                time.sleep(0.1)

    def stop(self) -> str:
        """SIGTERM, then wait for a graceful exit; returns the server's log."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log()

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as in a crash."""
        self.process.kill()
        self.process.wait()

    def log(self) -> str:
        if self.process.stdout is None or self.process.poll() is None:
            return ""
        if self._reader is not None:
            self._reader.join()
        self.process.stdout.close()
        return b"".join(self._chunks).decode(errors="replace")


def start(*args: str, env: dict[str, str] | None = None) -> Server:
    """Start ``python -m service serve`` with ``args`` on a free port; wait until it serves."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    server = Server(process, f"http://127.0.0.1:{port}")
    server.wait_ready()
    return server


@contextmanager
def serving(*args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """A server started with ``args`` (as :func:`start`), stopped afterwards."""
    server = start(*args, env=env)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def running(*args: str, env: dict[str, str] | None = None) -> Iterator[httpx.Client]:
    """A client of a server that is stopped gracefully (and must exit cleanly) afterwards."""
    with serving(*args, env=env) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        yield c
    log = server.log()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why.
    assert server.process.returncode in (0, -signal.SIGTERM), log
    assert "Finished server process" in log, log


def processes(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        p = pending.pop()
        found.append(p)
        pending.extend(children.get(p, []))
    return found


def memory_kib(pid: int, field: str, *, tree: bool = True) -> int:
    """The sum over the process tree of ``field`` of /proc/<pid>/status (VmRSS, VmHWM), KiB
    (of ``pid`` alone without ``tree``; 0 for a process gone)."""
    total = 0
    for p in processes(pid) if tree else [pid]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total
