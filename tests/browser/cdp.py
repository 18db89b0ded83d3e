"""Headless Chromium driven through its DevTools protocol (CDP), with nothing but
``websockets``: start the browser, open a page, evaluate JavaScript, record every request.

Chromium is Debian's package (``apt-get install -y chromium``); no browser is downloaded.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    # No name resolves, so no host beyond the loopback addresses can be reached.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--window-size=1280,2000",
]


def chromium_path() -> str:
    """Debian's Chromium; fails under CI=true where it is missing, else skips with the reason."""
    path = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if path is None:
        reason = (
            f"headless Chromium is needed and {CHROMIUM} is missing: apt-get install -y chromium"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        print(reason)
        pytest.skip(reason)
    return path


class Page:
    """One browser tab over a CDP WebSocket; events are kept in ``events`` as they arrive."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call ``method`` and return its result (events received meanwhile are kept)."""
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message: dict[str, Any] = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited when it is a promise)."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:200]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str, limit: float = 60) -> Any:
        """Poll until ``expression`` is truthy; its value. ``limit`` only bounds a hang."""
        deadline = time.monotonic() + limit
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never showed {what}")
            time.sleep(0.2)

    def navigate(self, url: str) -> None:
        """Open ``url`` and return once its load event has fired."""
        seen = len(self.events)
        self.send("Page.navigate", url=url)
        while not any(e["method"] == "Page.loadEventFired" for e in self.events[seen:]):
            message: dict[str, Any] = json.loads(self.ws.recv(timeout=60))
            if "method" in message:
                self.events.append(message)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def settle(self, limit: float = 30) -> None:
        """Wait until every HTTP request the page made has finished or failed (a worker's blob:
        script never reports an end)."""
        deadline = time.monotonic() + limit
        while True:
            self.evaluate("0")  # collects the events that arrived meanwhile
            started = {
                e["params"]["requestId"]
                for e in self.events
                if e["method"] == "Network.requestWillBeSent"
                and e["params"]["request"]["url"].startswith(("http:", "https:"))
            }
            ended = {
                e["params"]["requestId"]
                for e in self.events
                if e["method"] in ("Network.loadingFinished", "Network.loadingFailed")
            }
            if started <= ended or time.monotonic() > deadline:
                return
            time.sleep(0.1)

    def requested_urls(self) -> list[str]:
        """What the page asked for, less what the page's Content-Security-Policy stopped in the
        browser (such a request never leaves it)."""
        blocked = {
            e["params"]["requestId"]
            for e in self.events
            if e["method"] == "Network.loadingFailed" and e["params"].get("blockedReason") == "csp"
        }
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e["method"] == "Network.requestWillBeSent"
            and e["params"]["requestId"] not in blocked
        ]


@contextmanager
def browser(profile: Path) -> Iterator[Page]:
    """A fresh headless Chromium (its own profile folder) with one page, closed afterwards."""
    profile.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            chromium_path(),
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        port = _devtools_port(profile, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as answer:
            targets = json.loads(answer.read())
        target = next(t for t in targets if t["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as ws:
            page = Page(ws)
            page.send("Page.enable")
            page.send("Network.enable")
            page.send("Runtime.enable")
            yield page
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def _devtools_port(profile: Path, process: subprocess.Popen[bytes]) -> int:
    """The port Chromium chose, from the ``DevToolsActivePort`` file it writes when ready."""
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while True:
        if active.exists():
            lines = active.read_text().splitlines()
            if lines and lines[0].isdigit():
                return int(lines[0])
        if process.poll() is not None or time.monotonic() > deadline:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise AssertionError(f"Chromium did not start:\n{stderr[-2000:]}")
        time.sleep(0.1)
