"""Binary bodies at the HTTP edge: routes chosen by ``Content-Type``, ``Accept`` negotiation of
``.npy`` answers, and the problem responses of the interchange formats' errors.

A binary variant of an endpoint is a separate route on the same path, declared before the JSON
one with :func:`content_route` so that it matches only its media types; every other request
falls through to the JSON route, whose behaviour stays exactly as it was. The binary variants
are documented on the JSON operation (``openapi_extra``) and hidden themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from numpy.typing import NDArray
from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from service.api.problems import Problem
from service.core import LOSSES, FloatArray, Params, ShapeMismatch
from service.interop import (
    NotAcceptable,
    UnsupportedContent,
    npy,
)

NPY = npy.NPY
NPZ = npy.NPZ
ONNX = "application/onnx"
JSON = "application/json"

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])


def media_type(value: str | None) -> str:
    """``type/subtype`` of a Content-Type or media range, lower case, without parameters."""
    return (value or "").split(";", 1)[0].strip().lower()


def content_route(*media_types: str) -> type[APIRoute]:
    """A route class that matches only requests whose Content-Type is one of ``media_types``."""
    accepted = frozenset(media_types)

    class ContentRoute(APIRoute):
        media_types = accepted

        def matches(self, scope: Scope) -> tuple[Match, Scope]:
            match, child = super().matches(scope)
            if match is Match.NONE:
                return match, child
            for key, value in scope.get("headers", ()):
                if key == b"content-type":
                    if media_type(value.decode("latin-1")) in accepted:
                        return match, child
                    break
            return Match.NONE, {}

    return ContentRoute


def post(router: APIRouter, path: str, *media_types: str, **options: Any) -> Callable[[F], F]:
    """Register the decorated handler as the binary variant of ``POST path`` on ``router``,
    chosen for requests whose Content-Type is one of ``media_types`` (declare it before the
    JSON route of the same path). It is documented on the JSON operation, not on its own."""

    def register(endpoint: F) -> F:
        router.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            route_class_override=content_route(*media_types),
            include_in_schema=False,
            **options,
        )
        return endpoint

    return register


def inputs_npy(body: bytes, max_rows: int) -> NDArray[Any]:
    """The batch of inputs sent as an ``.npy`` body: a 2-D array of numbers, 1 to ``max_rows``
    rows of at least one column (its width and values are the core's to check)."""
    return _rows(
        npy.numeric(npy.loads(body, "the inputs array", "/inputs"), "the inputs array", "/inputs"),
        "inputs",
        max_rows,
    )


def batch_npz(body: bytes, max_bytes: int, max_rows: int) -> tuple[NDArray[Any], NDArray[Any]]:
    """``inputs`` and ``targets`` of an ``.npz`` body; other arrays are refused."""
    arrays = npy.loads_npz(body, max_bytes)
    for name in ("inputs", "targets"):
        if name not in arrays:
            raise UnsupportedContent(
                f"the .npz body needs the arrays inputs and targets; it lacks {name}", f"/{name}"
            )
    for name in arrays:
        if name not in ("inputs", "targets"):
            raise UnsupportedContent(
                f"the .npz body holds an array {name!r}; only inputs and targets are taken",
                f"/{name}",
            )
    X, T = (
        _rows(npy.numeric(arrays[name], f"the {name} array", f"/{name}"), name, max_rows)
        for name in ("inputs", "targets")
    )
    return X, T


def wants_npy(headers: Headers, *, trace: bool = False) -> bool:
    """Whether to answer with the outputs as ``.npy``; a trace has no ``.npy`` form."""
    if not accepts(headers, NPY):
        return False
    if trace:
        raise NotAcceptable(
            "the trace has no .npy form: ask for application/json to get it, or leave trace out"
        )
    return True


def _rows(array: NDArray[Any], name: str, max_rows: int) -> NDArray[Any]:
    """``array`` if it is a batch: 2-D, 1 to ``max_rows`` rows, at least one column."""
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        like = "[[x1, x2, ...]]" if name == "inputs" else "[[t1, ...]]"
        raise ShapeMismatch(
            f"the {name} array must be 2-D, rows x columns with at least one of each (like "
            f"{like}); got shape {list(array.shape)}",
            f"/{name}",
        )
    if array.shape[0] > max_rows:
        raise ShapeMismatch(
            f"{name} has {array.shape[0]} rows; the limit is {max_rows} (BACKPROP_MAX_BATCH_ROWS)",
            f"/{name}",
        )
    return array


def _quality(accept: str, wanted: str) -> float:
    """The q of the most specific media range in ``accept`` that covers ``wanted``."""
    main = wanted.split("/", 1)[0]
    best, specificity = 0.0, -1
    for item in accept.split(","):
        kind, *params = (part.strip() for part in item.split(";"))
        kind = kind.lower()
        level = 2 if kind == wanted else 1 if kind == f"{main}/*" else 0 if kind == "*/*" else -1
        if level <= specificity:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best, specificity = q, level
    return best


def wants_npz(headers: Headers, *, trace: bool = False) -> bool:
    """Whether to answer a gradient as an ``.npz`` file; a trace has no ``.npz`` form."""
    if not accepts(headers, NPZ):
        return False
    if trace:
        raise NotAcceptable(
            "the trace has no .npz form: ask for application/json to get it, or leave trace out"
        )
    return True


def gradient_npz(loss: float, gradients: Params, deltas: tuple[FloatArray, ...] | None) -> bytes:
    """A gradient as an ``.npz`` file: ``loss`` (a 0-d array), ``W0, b0, W1, ...`` (dE/dW and
    dE/db of each layer) and with ``deltas`` ``delta0, ...`` (dE/dnet, rows x units)."""
    arrays: dict[str, NDArray[Any]] = {"loss": np.asarray(loss, dtype=np.float64)}
    for i, g in enumerate(gradients):
        arrays[f"W{i}"], arrays[f"b{i}"] = g.W, g.b
    for i, d in enumerate(deltas or ()):
        arrays[f"delta{i}"] = d
    return npy.dumps_npz(arrays)


def input_gradient_npz(loss: float, gradients: FloatArray, jacobian: FloatArray | None) -> bytes:
    """Input gradients as an ``.npz`` file: ``loss`` (a 0-d array), ``input_gradients`` (rows,
    inputs) and with the Jacobian ``jacobian`` (rows, outputs, inputs)."""
    arrays: dict[str, NDArray[Any]] = {
        "loss": np.asarray(loss, dtype=np.float64),
        "input_gradients": gradients,
    }
    if jacobian is not None:
        arrays["jacobian"] = jacobian
    return npy.dumps_npz(arrays)


def accepts(headers: Headers, wanted: str) -> bool:
    """Whether the client asks for ``wanted`` over JSON (:func:`prefers`)."""
    return prefers(headers.get("accept", ""), wanted)


def prefers(accept: str, wanted: str) -> bool:
    """Whether the ``Accept`` value asks for ``wanted`` over JSON: named (not by a wildcard)
    with a quality above zero and not below that of ``application/json`` (the most specific
    range that covers each counts)."""
    if wanted not in accept.lower():
        return False
    q = _quality(accept, wanted)
    return q > 0 and q >= _quality(accept, JSON)


def npy_response(array: FloatArray, headers: dict[str, str] | None = None) -> Response:
    """``array`` as an ``application/x-npy`` body."""
    return Response(npy.dumps(array), headers=headers, media_type=NPY)


def validate(schema: type[M], data: Any, *where: str | int) -> M:
    """``schema`` validated from plain data that came in a binary body, its errors reported
    like those of a JSON body, at ``where`` in it."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        errors = [
            {**error, "loc": ("body", *where, *error["loc"])}
            for error in exc.errors(include_url=False, include_context=False)
        ]
        raise RequestValidationError(errors) from exc


def binary_body(media_types: tuple[str, ...], description: str) -> dict[str, Any]:
    """``openapi_extra`` documenting binary request bodies beside the operation's JSON one."""
    return {
        "requestBody": {
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}} for media in media_types
            },
            "description": description,
        }
    }


def binary_response(media: str, description: str) -> dict[int | str, dict[str, Any]]:
    """A ``responses`` entry adding a binary representation of the 200 answer."""
    return {
        200: {
            "description": description,
            "content": {media: {"schema": {"type": "string", "format": "binary"}}},
        }
    }


NPY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or with `Accept: application/x-npy` the outputs array as an .npy "
        "file (the model's version in `ETag`).",
        "content": {NPY: {"schema": {"type": "string", "format": "binary"}}},
    },
    406: {
        "model": Problem,
        "description": "`Accept: application/x-npy` with a trace, which has no .npy form",
    },
}


NPZ_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or with `Accept: application/x-npz` an .npz file of the arrays "
        "`loss` (0-d), `W0, b0, W1, ...` (dE/dW and dE/db of every layer) and, with `deltas`, "
        "`delta0, ...` (the model's version in `ETag`).",
        "content": {NPZ: {"schema": {"type": "string", "format": "binary"}}},
    },
    406: {
        "model": Problem,
        "description": "`Accept: application/x-npz` with a trace, which has no .npz form",
    },
}


INPUT_GRADIENT_NPZ_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or with `Accept: application/x-npz` an .npz file of the arrays "
        "`loss` (0-d), `input_gradients` (rows x inputs) and, with `jacobian`, `jacobian` (rows "
        "x outputs x inputs), in the network's dtype.",
        "content": {NPZ: {"schema": {"type": "string", "format": "binary"}}},
    },
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


# The query parameters of the binary bodies, documented on the JSON operations. None has a
# schema `default`: Swagger UI would fill it in and send it with the JSON example, which refuses
# them (:func:`refuse_with_json`). Their defaults are said in words instead.
TRACE_PARAMETER = _query(
    "trace",
    {"type": "boolean"},
    "**Binary bodies only** (.npy, .npz): also return every layer's net and out. Default "
    "false. With a JSON body it is refused (422): the body says it in `trace`.",
)
DELTAS_PARAMETER = _query(
    "deltas",
    {"type": "boolean"},
    "**.npz bodies only**: also return dE/dnet. Default false. With a JSON body it is refused "
    "(422): the body says it in `deltas`.",
)
JACOBIAN_PARAMETER = _query(
    "jacobian",
    {"type": "boolean"},
    "**.npz bodies only**: also return the Jacobian dy_k/dx_i. Default false. With a JSON body "
    "it is refused (422): the body says it in `jacobian`.",
)
IMPORT_NAME_PARAMETER = _query(
    "name",
    {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", "maxLength": 64},
    "**Model files only** (ONNX, .npz): the new model's name. Default: the ONNX graph's name, "
    "the archive's model name. With a JSON body it is refused (422): the body has `name`.",
)
IMPORT_LOSS_PARAMETER = _query(
    "loss",
    {
        "type": "string",
        "enum": list(LOSSES),
    },
    "**Model files only** (ONNX, .npz): the network's loss (ONNX has none). Default: the "
    "file's (`backprop.loss` in ONNX metadata, the archive's network), else cross_entropy for "
    "a softmax output and half_squared_error otherwise. With a JSON body it is refused (422): "
    "the body has `network.loss`.",
)
LEARNING_RATE_PARAMETER = _query(
    "learning_rate",
    {"type": "number", "exclusiveMinimum": 0},
    "**.npz bodies only**: the step's learning rate. Default: the model's optimizer's. With a "
    "JSON body it is refused (422): the body says it in `learning_rate`.",
)


def refuse_with_json(name: str, value: object, binary_forms: str, instead: str) -> None:
    """Refuse (422, at the query parameter ``name``) a ``value`` sent with a JSON body for a
    parameter that applies to ``binary_forms`` only (".npz bodies"): the JSON body would
    override it silently. ``instead`` says where the body says it. ``None`` (not sent)
    passes."""
    if value is not None:
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": f"?{name}= applies to {binary_forms} only; {instead}",
                }
            ]
        )
