"""JSON in pieces: ``jsontext.loads`` is ``json.loads`` (value, error message and position) and
``jsontext.array`` writes what ``json.dumps`` writes, whatever the size of the pieces; what
``json.loads`` cannot read (integers of too many digits, nesting too deep) is a
``JSONDecodeError`` that says what and where."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest

from service.interop import jsontext

SCALARS: list[Any] = [0, 1, -1.5, 1e-5, 2.5e300, 10**30, "a", 'b"]', "[{,", "\u00e9\U0001f600"]
SCALARS += [True, False, None, float("nan"), float("inf")]
MUTATIONS = list('[]{},:"\\ 1e-.xtnN')


def document(r: random.Random, depth: int = 0) -> Any:
    k = r.random()
    if depth > 4 or k < 0.3:
        return r.choice(SCALARS)
    if k < 0.6:
        return [document(r, depth + 1) for _ in range(r.randint(0, 6))]
    if k < 0.8:
        return [r.random() for _ in range(r.randint(0, 8))]
    return {r.choice("abc") + str(r.randint(0, 3)): document(r, depth + 1) for _ in range(5)}


def outcome(loads: Any, data: str | bytes) -> tuple[Any, ...]:
    try:
        return ("value", json.dumps(loads(data)))
    except json.JSONDecodeError as exc:
        return ("JSONDecodeError", exc.msg, exc.pos, exc.lineno, exc.colno)
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def texts(r: random.Random) -> list[str]:
    value = document(r)
    text = json.dumps(value, indent=r.choice([None, 1]), separators=r.choice([None, (",", ":")]))
    variants = [text, " " + text + "\n"]
    for _ in range(3):
        chars = list(text)
        at = r.randrange(len(chars))
        kind = r.random()
        if kind < 0.33:
            del chars[at]
        elif kind < 0.66:
            chars.insert(at, r.choice(MUTATIONS))
        else:
            chars[at] = r.choice(MUTATIONS)
        variants.append("".join(chars))
    return variants


@pytest.mark.parametrize("piece", [1, 3, 16, 1 << 16])
def test_loads_is_json_loads_for_any_text(piece: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsontext, "PIECE", piece)
    r = random.Random(piece)
    for _ in range(600):
        for text in texts(r):
            for data in (text, text.encode()):
                assert outcome(jsontext.loads, data) == outcome(json.loads, data), data


@pytest.mark.parametrize(
    "data",
    [
        "",
        " ",
        "\ufeff[1]",
        "\ufeff[1]".encode(),
        "[1, 2]".encode("utf-16"),
        "[1, 2]".encode("utf-32-le"),
        b'["\x80"]',
        b'["\\ud800"]',
        '{"a": 1, "a": 2, "b": 3, "a": 4}',
        "[" * 900 + "]" * 900,
        "[" * 900 + "]" * 900 + "x",
        json.dumps([list(range(50)) for _ in range(40)]),
        json.dumps({f"w{i}": i / 7 for i in range(500)}),
        json.dumps(list(range(2000))) + ",",
    ],
)
def test_loads_is_json_loads_at_the_edges(
    data: str | bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsontext, "PIECE", 8)
    assert outcome(jsontext.loads, data) == outcome(json.loads, data)


@pytest.mark.parametrize("piece", [8, 1 << 16])
@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("[" * 5000 + "]" * 5000, "Nesting too deep (5000 levels of arrays and objects)", 4999),
        ('{"a":' * 3000 + "1" + "}" * 3000, "Nesting too deep (3000 levels of", 14995),
        ('["[[[", ' + "[" * 2000 + "]" * 2000 + "]", "Nesting too deep (2001 levels of", 2007),
        ("[" + "9" * 4301 + "]", "Integer longer than 4300 digits", 1),
        ('{"a": "' + "9" * 5000 + '", "b": -' + "9" * 5000 + "}", "Integer longer than 4300", 5015),
        (
            "[1." + "9" * 5000 + ", 1e" + "9" * 5000 + ", " + "7" * 4301 + "]",
            "Integer longer",
            10009,
        ),
    ],
)
def test_loads_says_what_json_loads_cannot_read_and_where(
    text: str, message: str, position: int, piece: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsontext, "PIECE", piece)
    with pytest.raises((RecursionError, ValueError)) as raised:
        json.loads(text)
    assert not isinstance(raised.value, json.JSONDecodeError)
    for data in (text, text.encode()):
        with pytest.raises(json.JSONDecodeError) as error:
            jsontext.loads(data)
        assert error.value.msg.startswith(message), error.value.msg
        assert error.value.pos == position


def test_loads_reads_the_longest_integers_and_deepest_nesting_json_loads_reads() -> None:
    longest = "[" + "9" * 4300 + ", -" + "9" * 4300 + "]"
    assert jsontext.loads(longest) == json.loads(longest)
    deep = "[" * 200 + "]" * 200
    assert jsontext.loads(deep) == json.loads(deep)


@pytest.mark.parametrize("numbers", [1, 2, 5, 8192])
def test_array_is_json_dumps_of_the_list(numbers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsontext, "NUMBERS", numbers)
    rng = np.random.default_rng(numbers)
    for array in (
        rng.standard_normal((7, 3)) * 1e-9,
        rng.standard_normal(11).astype(np.float32),
        rng.standard_normal((2, 3, 2)),
        np.zeros((0, 4)),
        np.zeros(0),
        np.asarray(2.5),
        np.arange(6, dtype=np.int64).reshape(3, 2),
    ):
        assert "".join(jsontext.array(array)) == jsontext.dumps(array.tolist())
