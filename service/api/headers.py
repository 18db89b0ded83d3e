"""Numbers in request headers (``If-Match``, ``Last-Event-ID``,
``Inference-Header-Content-Length``), read as ASCII digits within a bound.

``int()`` alone will not do: it takes the digits of other scripts (and ``str.isdigit`` takes
superscripts that ``int()`` then refuses), and refuses more than 4,300 digits with a
``ValueError`` that would otherwise surface as a 500.
"""

from __future__ import annotations

from service.api.schemas.common import MAX_INTEGER

SHOWN = 40  # characters of a malformed value repeated in a message


def decimal(text: str, largest: int = MAX_INTEGER) -> int | None:
    """The integer from 0 to ``largest`` that ``text`` spells in ASCII decimal digits (spaces
    around it allowed); ``None`` for anything else."""
    digits = text.strip()
    if not digits or not (digits.isascii() and digits.isdigit()):
        return None
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(largest)):
        return None
    value = int(significant)
    return value if value <= largest else None


def version_tag(value: str) -> int | None:
    """The model version an ETag such as ``"3"`` or ``W/"3"`` names; ``None`` if it names none."""
    tag = value.strip().removeprefix("W/").strip('"')
    return decimal(tag) if tag == tag.strip() else None


def shown(value: str) -> str:
    """``value`` as a message repeats it: quoted, and cut short when long."""
    if len(value) <= SHOWN:
        return repr(value)
    return f"{value[:SHOWN]!r}... ({len(value)} characters)"
