"""Dependencies of the handlers, as ``Annotated`` aliases so that handlers read as plain
signatures. They are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread,
a hop that costs more than the whole of a small forward."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar, cast

from fastapi import Depends, Header, Path, Query, Request

from service.api import examples
from service.api.headers import shown, version_tag
from service.api.problems import MalformedHeaderValue
from service.api.schemas.common import MAX_INTEGER, NAME_PATTERN, StorableText
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
