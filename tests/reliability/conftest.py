"""Reliability tests: prints how many cases the API fuzzer ran."""

from __future__ import annotations

import pytest

from tests.reliability.support import FUZZ_CASES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FUZZ_CASES:
        return
    terminalreporter.section("API fuzzing (schemathesis)")
    total = 0
    for operation, statuses in sorted(FUZZ_CASES.items()):
        count = sum(statuses.values())
        total += count
        mix = " ".join(f"{status}x{n}" for status, n in sorted(statuses.items()))
        terminalreporter.write_line(f"{count:6d}  {operation:48s} {mix}")
    terminalreporter.write_line(f"{total:6d}  cases in all, over {len(FUZZ_CASES)} operations")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
