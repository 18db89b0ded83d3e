"""Headless Chromium for the browser tests, driven by Playwright: Debian's Chromium at
/usr/bin/chromium (``apt-get install -y chromium``), no browser downloaded.

Where Chromium is missing the tests fail under ``CI=true``, so that a CI machine without it
cannot pass unnoticed, and are skipped with the reason elsewhere. The browser's resolver knows
no host name, so that nothing beyond the loopback address can be reached; every page also
records what it asked for and what it logged, for the tests to check.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # No name resolves, so no host beyond the loopback addresses can be reached.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
# The screenshots stay here after the test run (CI lists them), to be looked at.
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


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


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed afterwards."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Recorded:
    """What a page asked for and what it logged as an error or a warning."""

    page: Page
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def requested(self) -> list[str]:
        """What the page asked for, less what its Content-Security-Policy stopped in the
        browser (such a request never leaves it)."""
        return [url for url in self.requests if url not in self.blocked]

    def assert_only_local(self, server: str) -> None:
        self.page.wait_for_load_state("networkidle")
        urls = self.requested()
        assert urls, "the page made no request at all"
        foreign = [u for u in urls if not u.startswith((f"{server}/", "data:", "blob:"))]
        assert not foreign, f"the page reached beyond the service: {foreign}"


def recorded(page: Page) -> Recorded:
    """``page`` with its requests, CSP refusals, console errors and warnings recorded."""
    record = Recorded(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            record.problems.append(f"{message.type}: {message.text}")

    def on_failed(request: Request) -> None:
        if "BLOCKED_BY_CSP" in (request.failure or "") or "csp" in (request.failure or ""):
            record.blocked.append(request.url)

    page.on("request", lambda request: record.requests.append(request.url))
    page.on("requestfailed", on_failed)
    page.on("console", on_console)
    page.on("pageerror", lambda error: record.problems.append(f"uncaught: {error}"))
    return record


def screenshot(page: Page, folder: str, name: str, *, full_page: bool = True) -> Path:
    """A screenshot kept under ``artifacts/<folder>/<name>.png`` after the run."""
    path = ARTIFACTS / folder / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)
    return path
