"""Dependencies of the handlers, as ``Annotated`` aliases so that handlers read as plain
signatures: the app's state, path and query parameters (names, cursors and pages, versions,
the learners' samples of numbers in the query, with their parsing), preconditions. They are
``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a hop that costs
more than the whole of a small forward."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, Literal, TypeVar, cast

from fastapi import Depends, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.models import Example

from service.api import examples
from service.api.headers import shown, version_tag
from service.api.problems import MalformedHeaderValue
from service.api.schemas.common import MAX_INTEGER, NAME_PATTERN, StorableText
from service.core import CoreError
from service.jobs.store import JobStore
from service.operations import Operations
from service.registry import VersionConflict
from service.settings import Settings
from service.store import ModelStore

# What the app keeps in its state (service.api.app), each for the handlers that take it.


async def get_store(request: Request) -> ModelStore:
    return cast(ModelStore, request.app.state.store)


async def get_operations(request: Request) -> Operations:
    return cast(Operations, request.app.state.ops)


async def get_jobs(request: Request) -> JobStore:
    return cast(JobStore, request.app.state.jobs)


async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='Only act if the model\'s current version is this ETag, e.g. `"3"`.',
    ),
]


async def if_match(value: IfMatchHeader = None) -> int | None:
    """The version named by ``If-Match`` (``None`` for absent or ``*``)."""
    if value is None or value.strip() == "*":
        return None
    version = version_tag(value)
    if version is None:
        raise MalformedHeaderValue(
            f'If-Match must be an ETag such as "3" (a model version, at most {MAX_INTEGER}), '
            f"got {shown(value)}"
        )
    return version


StoreDep = Annotated[ModelStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
OpsDep = Annotated[Operations, Depends(get_operations)]
JobsDep = Annotated[JobStore, Depends(get_jobs)]
IfMatchDep = Annotated[int | None, Depends(if_match)]


def name_path(kind: str, example: str, summary: str) -> Any:
    """The path parameter naming a stored ``kind`` (model, dataset), by the registry's rule,
    with ``example`` (described by ``summary``) as its example."""
    return Path(
        pattern=NAME_PATTERN,
        max_length=64,
        description=f"The {kind}'s name.",
        # On the parameter, not in its schema: Swagger UI shows (and fills in) only these.
        openapi_examples=examples.path_example(example, summary),
    )


NamePath = Annotated[str, name_path("model", "seed", "The worked example's model")]
NotationQuery = Annotated[
    Literal["layered", "named"],
    Query(description="`named`: the seed's w1.., b1.., n1.. names instead of layers."),
]

CursorQuery = Annotated[
    StorableText | None, Query(max_length=64, description="`next_cursor` of the previous page.")
]
R = TypeVar("R")


def per_page(what: str) -> Any:
    """The ``limit`` query parameter of a listing of ``what`` (say "Models"): 1 to 500."""
    return Query(ge=1, le=500, description=f"{what} per page.")


def page(
    records: Sequence[R], limit: int, cursor: Callable[[R], str]
) -> tuple[Sequence[R], str | None]:
    """A listing's page of ``limit`` of ``records`` (fetched ``limit + 1``: the one more says a
    next page follows) and the ``next_cursor`` to it, the ``cursor`` of the page's last record
    (``None`` on the last page)."""
    items = records[:limit]
    return items, cursor(items[-1]) if len(records) > limit else None


def etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


async def checked_if_match(name: NamePath, store: StoreDep, expected: IfMatchDep) -> int | None:
    """``If-Match`` checked against the model before the body is even looked at (404 for an
    unknown model, 412 for a stale version); the write re-checks it atomically."""
    if expected is not None:
        current = await store.current_version(name)
        if current != expected:
            raise VersionConflict(name, expected, current)
    return expected


CheckedIfMatch = Annotated[int | None, Depends(checked_if_match)]


# -- numbers in the query (the learn routes' samples) ------------------------------------------

_SEED_INPUTS = ",".join(repr(v) for v in examples.SEED_INPUTS[0])
_SEED_TARGETS = ",".join(repr(v) for v in examples.SEED_TARGETS[0])
_NUMBERS = "numbers separated by commas"
# Inputs and targets travel together in one request line, which uvicorn refuses (a bare
# text/plain 400) beyond 64 KiB. Two parameters of this many characters stay inside it even
# when every character is percent-encoded UTF-8 of 4 bytes (12 bytes on the wire).
QUERY_MAX_LENGTH = 2048


def _numbers(description: str, example: str, value: str) -> Any:
    """A query parameter of numbers as text (``0.23,0.55``), with the seed's as its example."""
    return Query(
        max_length=QUERY_MAX_LENGTH,
        description=description,
        openapi_examples={"worked-example": Example(summary=example, value=value)},
    )


_INPUTS = _numbers(
    f"One sample's inputs, {_NUMBERS}: `0.23,0.55`.", "The seed's input", _SEED_INPUTS
)
_TARGETS = _numbers(f"Its targets, {_NUMBERS}: `0.01`.", "The seed's target", _SEED_TARGETS)
InputsQuery = Annotated[str | None, _INPUTS]
TargetsQuery = Annotated[str | None, _TARGETS]
SampleInputs = Annotated[str, _INPUTS]
SampleTargets = Annotated[str, _TARGETS]
BatchInputs = Annotated[
    str | None,
    _numbers(
        f"Inputs, {_NUMBERS}, rows separated by semicolons: `0.23,0.55;0.1,0.9`. "
        "With `targets`: plot the loss of every kept version on these samples.",
        "The seed's input",
        _SEED_INPUTS,
    ),
]
BatchTargets = Annotated[
    str | None,
    _numbers(
        f"Targets, one row per input row, {_NUMBERS}, rows separated by "
        "semicolons: `0.01;0.99`. With `inputs`.",
        "The seed's target",
        _SEED_TARGETS,
    ),
]
VersionQuery = Annotated[
    int | None,
    Query(ge=1, le=MAX_INTEGER, description="A kept older version; the current one by default."),
]
FormatQuery = Annotated[
    Literal["json", "markdown"] | None,
    Query(
        description="`markdown` for a Markdown document with LaTeX (as `Accept: text/markdown`)."
    ),
]


def query_error(parameter: str, message: str) -> RequestValidationError:
    """A 422 naming the query parameter."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", parameter), "msg": message}]
    )


def query_rows(text: str, parameter: str) -> list[list[float]]:
    """``0.23,0.55;0.1,0.9`` -> ``[[0.23, 0.55], [0.1, 0.9]]``; 422 naming the parameter for
    anything else."""
    rows: list[list[float]] = []
    for part in text.split(";"):
        row: list[float] = []
        for item in part.split(","):
            try:
                value = float(item)
            except ValueError:
                raise query_error(
                    parameter, f"{parameter} must be {_NUMBERS}; {item.strip()!r} is not a number"
                ) from None
            if not math.isfinite(value):
                raise query_error(
                    parameter, f"{parameter} must be finite numbers; {item.strip()!r} is not"
                )
            row.append(value)
        rows.append(row)
    return rows


def query_sample(text: str, parameter: str) -> list[list[float]]:
    """:func:`query_rows` of one row; 422 naming the parameter for more."""
    rows = query_rows(text, parameter)
    if len(rows) != 1:
        raise query_error(parameter, f"{parameter} must be one sample (one row), got {len(rows)}")
    return rows


@contextmanager
def from_query() -> Iterator[None]:
    """Core errors about ``/inputs...`` or ``/targets...`` name the query parameter that
    carried those numbers."""
    try:
        yield
    except CoreError as exc:
        where = exc.pointer.split("/")[1] if exc.pointer.count("/") else ""
        if where in ("inputs", "targets"):
            raise query_error(where, exc.message) from exc
        raise
