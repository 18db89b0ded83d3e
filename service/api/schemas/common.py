"""Building blocks shared by every schema: finite numbers, batches, names, the strict base."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from service.core.words import counted
from service.settings import current_limits

#: The key by which a schema names the limit that bounds it; the app's spec writes the app's
#: value in its place (``maxItems`` of an array, ``maximum`` of a number) and in its
#: description's ``{limit}``.
LIMIT_KEY = "x-backprop-limit"


def at_most(limit: str) -> tuple[AfterValidator, Any]:
    """Metadata bounding a list's length or an integer by the size limit named ``limit`` of
    the app serving the request (:func:`service.settings.current_limits`), refused with the
    error Pydantic's own ``max_length`` and ``le`` give."""

    def check(value: Any) -> Any:
        bound = getattr(current_limits(), limit)
        if isinstance(value, list):
            if len(value) > bound:
                raise PydanticCustomError(
                    "too_long",
                    "List should have at most {max_length} items after validation, "
                    "not {actual_length}",
                    {"field_type": "List", "max_length": bound, "actual_length": len(value)},
                )
        elif value > bound:
            raise PydanticCustomError(
                "less_than_equal", "Input should be less than or equal to {le}", {"le": bound}
            )
        return value

    return AfterValidator(check), Field(json_schema_extra={LIMIT_KEY: limit})


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


def name_rule(kind: str, example: str) -> tuple[Any, AfterValidator]:
    """Metadata of the name of a stored ``kind`` (model, dataset): the registry's rule,
    documented with ``example``, and names with '..' refused."""
    field = Field(
        min_length=1,
        max_length=64,
        pattern=NAME_PATTERN,
        description=NAME_DESCRIPTION,
        examples=[example],
    )
    return field, no_double_dot(kind)


ModelName = Annotated[str, *name_rule("model", "seed")]


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
    Field(min_length=1, description="Rows of equal length, 1 to {limit} of them."),
    *at_most("max_batch_rows"),
    AfterValidator(_rectangular),
]

LearningRate = Annotated[
    float, Field(strict=True, gt=0, allow_inf_nan=False, description="Finite and > 0.")
]
