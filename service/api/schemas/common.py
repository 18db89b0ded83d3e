"""Building blocks shared by every schema: finite numbers, batches, names, the strict base."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from service.core.words import counted
from service.settings import Limits

# Limits are read once, at import, so that the OpenAPI spec shows the values in force.
LIMITS = Limits()

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class Body(BaseModel):
    """Base of request bodies: unknown fields, non-finite numbers and values of another JSON type
    than the schema's (``0`` for a boolean, ``"3"`` or ``false`` for an integer) are rejected."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class Out(BaseModel):
    """Base of response bodies."""

    model_config = ConfigDict(allow_inf_nan=False)


def no_double_dot(kind: str) -> AfterValidator:
    """A validator refusing names with '..' (they read as paths), naming the ``kind``."""

    def check(name: str) -> str:
        if ".." in name:
            raise ValueError(f"a {kind} name must not contain '..'")
        return name

    return AfterValidator(check)


NAME_DESCRIPTION = (
    "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, without '..'."
)


ModelName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=NAME_PATTERN,
        description=NAME_DESCRIPTION,
        examples=["seed"],
    ),
    no_double_dot("model"),
]


def _storable(text: str) -> str:
    if "\x00" in text:
        raise PydanticCustomError(
            "nul_character",
            "must not contain the NUL character (U+0000), which the registry cannot store",
        )
    return text


# Free text that reaches the registry's queries (a cursor, a name to filter by): PostgreSQL
# cannot hold a NUL, so it is refused here, naming the parameter, before any query is made.
StorableText = Annotated[str, AfterValidator(_storable)]

# The largest integer a registry stores (a signed 64-bit BIGINT): versions, seeds, event ids.
MAX_INTEGER = 2**63 - 1

Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Row = list[Finite]


def _rectangular(rows: list[list[float]]) -> list[list[float]]:
    width = len(rows[0])
    for r, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(
                f"all rows must have the same length: row 0 has {counted(width, 'value')}, "
                f"row {r} has {len(row)}"
            )
    return rows


Batch = Annotated[
    list[Row],
    Field(
        min_length=1,
        max_length=LIMITS.max_batch_rows,
        description=f"Rows of equal length, 1 to {LIMITS.max_batch_rows} of them.",
    ),
    AfterValidator(_rectangular),
]

LearningRate = Annotated[
    float, Field(strict=True, gt=0, allow_inf_nan=False, description="Finite and > 0.")
]
