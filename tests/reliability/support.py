"""Helpers of the reliability tests: strict JSON, and the fuzzer's case counts."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

# Statuses the fuzzer got, by operation; printed in pytest's terminal summary by conftest.py.
FUZZ_CASES: dict[str, Counter[int]] = defaultdict(Counter)


def record_case(operation: str, status: int) -> None:
    FUZZ_CASES[operation][status] += 1


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} in JSON")


def strict_json(text: str) -> Any:
    """Parse JSON, raising ValueError on NaN, Infinity or -Infinity (which Python's json module
    accepts by default) and on numbers too large for a float."""
    value = json.loads(text, parse_constant=_reject_constant)
    _check_finite(value, "")
    return value


def _check_finite(value: Any, where: str) -> None:
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        # json.loads turns 1e999 into inf without calling parse_constant.
        raise ValueError(f"non-finite number at {where or '/'}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_finite(item, f"{where}/{i}")
