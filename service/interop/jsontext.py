"""JSON text read and written in pieces, so that a thread doing it lets go of the interpreter
lock often.

``json.loads`` of 30 MB is one call into C that holds the interpreter lock for a second or more:
run in a worker thread it still stops every other thread, the event loop's included, for as
long. :func:`loads` gives the same value, and raises the same errors at the same positions: it
parses an array or object that may be large element by element in Python (the standard
library's own pure-Python parser, which the C one mirrors) and hands the C scanner only the
rest: numbers, strings, arrays of numbers that close within ``PIECE`` characters (a row, a
layer's biases), any value when less than ``PIECE`` characters are left. Between those calls
the interpreter may switch threads. :func:`array` writes an array's JSON in pieces the same way.

Two kinds of valid JSON that ``json.loads`` cannot read fail here as a ``JSONDecodeError`` that
says what and where, like any other error of the text: an integer longer than the interpreter
converts (``sys.get_int_max_str_digits()``, 4300 digits by default; ``json.loads`` raises a bare
``ValueError``) and arrays and objects nested deeper than the parser's stack allows
(``json.loads`` raises ``RecursionError``).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator
from json.decoder import JSONArray, JSONObject  # type: ignore[attr-defined]
from json.scanner import make_scanner  # the C scanner, as json.loads uses
from typing import Any

from numpy.typing import NDArray

PIECE = 1 << 16  # characters parsed by one call into C, at most (about)
NUMBERS = 8192  # numbers written by one call into C, at most (about)
_OPEN = "[{"


class _Decoder(json.JSONDecoder):
    """``json.JSONDecoder()`` whose ``scan_once`` parses large containers in pieces (one per
    document: the memo of object keys lives as long as the document)."""

    def __init__(self) -> None:
        super().__init__()
        whole = make_scanner(self)  # type: ignore[arg-type]
        memo: dict[str, str] = {}

        def scan_once(s: str, idx: int) -> tuple[Any, int]:
            if idx < len(s) and s[idx] in _OPEN and len(s) - idx > PIECE and _large(s, idx):
                if s[idx] == "{":
                    return JSONObject(  # type: ignore[no-any-return]
                        (s, idx + 1), self.strict, scan_once, None, _dict, memo
                    )
                return JSONArray((s, idx + 1), scan_once)  # type: ignore[no-any-return]
            return whole(s, idx)

        self.scan_once = scan_once


def _dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``dict(pairs)`` (the last value of a repeated key wins, in the place of its first) built
    ``NUMBERS`` pairs at a time."""
    result: dict[str, Any] = {}
    for start in range(0, len(pairs), NUMBERS):
        result.update(pairs[start : start + NUMBERS])
    return result


def _large(s: str, idx: int) -> bool:
    """Whether the array or object at ``s[idx]`` may end more than ``PIECE`` characters on
    (False when it certainly ends before: a flat array of numbers, closed within the piece)."""
    if s[idx] == "[":
        end = s.find("]", idx, idx + PIECE)
        if end != -1 and all(s.find(c, idx + 1, end) == -1 for c in '[{"'):
            return False  # no string, no nesting: its first "]" closes it
    return True


def loads(data: bytes | bytearray | str) -> Any:
    """``json.loads(data)``: the same value, the same ``JSONDecodeError`` (message, position)
    or ``UnicodeDecodeError``, parsed in pieces; and a ``JSONDecodeError`` where ``json.loads``
    fails otherwise (an integer of too many digits, nesting too deep)."""
    if isinstance(data, str):
        if data.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", data, 0)
        text = data
    else:
        text = data.decode(json.detect_encoding(data), "surrogatepass")
    try:
        if len(text) <= PIECE:
            return json.loads(text)
        try:
            return _Decoder().decode(text)
        except RecursionError:
            # Containers nested deeper than Python's frames allow: what the C parser makes of it.
            return json.loads(text)
    except RecursionError:
        raise _too_deep(text) from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # int() of a number past the interpreter's limit of digits
        raise _too_long(text, exc) from None


# What matters to the two errors below: strings (skipped whole: their brackets and digits are
# text), numbers (an integer has no fraction and no exponent) and brackets.
_TOKENS = re.compile(
    r'"(?:[^"\\]|\\.)*"|(?P<number>-?[0-9]+(?P<real>(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?))|[\[\]{}]'
)


def _too_long(text: str, exc: ValueError) -> json.JSONDecodeError:
    """The error of the first integer with more digits than ``int()`` converts."""
    limit = sys.get_int_max_str_digits()
    for token in _TOKENS.finditer(text):
        number = token["number"]
        if number and not token["real"] and len(number.removeprefix("-")) > limit:
            return json.JSONDecodeError(f"Integer longer than {limit} digits", text, token.start())
    return json.JSONDecodeError(str(exc), text, 0)


def _too_deep(text: str) -> json.JSONDecodeError:
    """The error of arrays and objects nested too deeply: how deep, at the first of the
    deepest."""
    depth = deepest = where = 0
    for token in _TOKENS.finditer(text):
        kind = token.group()[0]
        if kind in "[{":
            depth += 1
            if depth > deepest:
                deepest, where = depth, token.start()
        elif kind in "]}":
            depth -= 1
    return json.JSONDecodeError(
        f"Nesting too deep ({deepest} levels of arrays and objects)", text, where
    )


def array(values: NDArray[Any]) -> Iterator[str]:
    """``dumps(values.tolist())`` in pieces of about ``NUMBERS`` numbers (whole rows)."""
    if values.ndim == 0:
        yield dumps(values.tolist())
        return
    width = math.prod(values.shape[1:])
    step = max(1, NUMBERS // max(1, width))
    yield "["
    for start in range(0, len(values), step):
        yield ("," if start else "") + dumps(values[start : start + step].tolist())[1:-1]
    yield "]"


def dumps(value: Any) -> str:
    """The compact JSON of ``value``, refusing NaN and infinities."""
    return json.dumps(value, allow_nan=False, separators=(",", ":"))
