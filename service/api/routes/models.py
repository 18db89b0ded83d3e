"""The model registry: create, list, read, delete, parameters, versions and rollback."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Iterable
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response, status
from starlette.responses import StreamingResponse

from service import specs
from service.api import answers, binary, convert, examples
from service.api.bodies import JSONBodies
from service.api.deps import (
    CheckedIfMatch,
    CursorQuery,
    NamePath,
    NotationQuery,
    OpsDep,
    SettingsDep,
    StoreDep,
    etag,
    page,
    per_page,
)
from service.api.problems import problem_responses
from service.api.schemas.common import MAX_INTEGER, NAME_PATTERN
from service.api.schemas.models import (
    ModelCreate,
    ModelList,
    ModelPublic,
    ParametersPublic,
    ParametersPut,
    RollbackRequest,
    VersionList,
    VersionPublic,
)
from service.api.schemas.networks import InitSpec, LayeredParameters, Loss, NamedParameters
from service.core import Network, Params, check_parameters, initialize
from service.core.errors import CoreError
from service.interop import archive, onnx_io
from service.registry import Encoded, ModelRecord
from service.store import ModelStore

router = APIRouter(prefix="/v1/models", tags=["models"], route_class=JSONBodies)


def public(record: ModelRecord) -> ModelPublic:
    spec = record.spec
    net = specs.network_from_dict(spec["network"])
    return ModelPublic.model_validate(
        {
            "name": record.name,
            "version": record.version,
            "network": spec["network"],
            "optimizer": spec["optimizer"],
            "init": spec.get("init"),
            "description": spec.get("description"),
            "tags": spec.get("tags", []),
            "parameter_count": net.parameter_count,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }
    )


ImportName = Annotated[
    str | None,
    Query(
        pattern=NAME_PATTERN,
        max_length=64,
        description="With an ONNX or .npz body only: the new model's name (default: the ONNX "
        "graph's name, the archive's model name).",
    ),
]
ImportLoss = Annotated[
    Loss | None,
    Query(
        description="With an ONNX or .npz body only: the network's loss (ONNX has none). "
        "Default: the file's (`backprop.loss` in ONNX metadata, the archive's network), else "
        "cross_entropy for a softmax output and half_squared_error otherwise."
    ),
]


@binary.post(
    router,
    "",
    binary.ONNX,
    binary.NPZ,
    status_code=status.HTTP_201_CREATED,
    response_model=ModelPublic,
)
async def import_model(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    response: Response,
    name: ImportName = None,
    loss: ImportLoss = None,
) -> ModelPublic:
    onnx = binary.media_type(request.headers.get("content-type")) == binary.ONNX
    decode = partial(
        decode_import, onnx=onnx, name=name, loss=loss, max_bytes=settings.max_body_bytes
    )
    # A large file is read, checked, converted and encoded for the registry in a worker
    # process; the server passes its bytes on.
    body, net, params = await answers.decoded(store, request, decode, isolate=True)
    return await _store_new(store, response, body, net, params, None)


def decode_import(
    content: bytes, *, onnx: bool, name: str | None, loss: str | None, max_bytes: int
) -> tuple[ModelCreate, Network, Encoded]:
    """An ONNX or .npz model file: its model description, network and parameters, checked,
    the parameters encoded as the registry stores them."""
    if onnx:
        imported = onnx_io.from_onnx(content)
        fields: dict[str, Any] = {
            "name": imported.name,
            "network": imported.network(loss or imported.loss or onnx_io.default_loss(imported)),
        }
        pairs = imported.params
    else:
        fields, pairs = archive.from_npz(content, max_bytes)
        if loss is not None and isinstance(fields.get("network"), dict):
            fields["network"] = {**fields["network"], "loss": loss}
    body = binary.validate(ModelCreate, {**fields, "name": name or fields.get("name")})
    net = convert.network(body.network)
    with convert.at("/parameters"):
        return body, net, specs.encoded(check_parameters(net, pairs))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a model",
    description="Store a network with given parameters (layered or named) or with parameters "
    "drawn by an initialisation scheme and seed. Answers 201 with the model at version 1, its "
    "`Location` and `ETag`. Also imports a model file: an ONNX graph (`application/onnx`: a "
    "chain of Gemm, or MatMul and Add, layers with Relu, LeakyRelu, Sigmoid, Tanh, "
    "Softmax(axis=1) or Identity; other operators get 422 naming them) or an .npz archive as "
    "`GET /v1/models/{name}/export?format=npz` writes it (`application/x-npz`), with `name` "
    "and `loss` as query parameters.",
    responses=problem_responses(400, 409, 413, 422, 507),
    openapi_extra={
        **binary.binary_body(
            (binary.ONNX, binary.NPZ),
            "JSON, or a model file to import: ONNX or an .npz archive of the export.",
        ),
        "parameters": [binary.IMPORT_NAME_PARAMETER, binary.IMPORT_LOSS_PARAMETER],
    },
)
async def create_model(
    body: Annotated[ModelCreate, Body(openapi_examples=examples.CREATE)],
    store: StoreDep,
    response: Response,
    # For file imports; a JSON body carries its own name and loss, so here they are refused.
    _name: Annotated[str | None, Query(alias="name", include_in_schema=False)] = None,
    _loss: Annotated[str | None, Query(alias="loss", include_in_schema=False)] = None,
) -> ModelPublic:
    binary.refuse_with_json("name", _name, "file imports (ONNX, .npz)", 'a JSON body has "name"')
    binary.refuse_with_json(
        "loss", _loss, "file imports (ONNX, .npz)", 'a JSON body has "network": {"loss"}'
    )
    net = convert.network(body.network)
    init: dict[str, Any] | None = None
    if body.parameters is not None:
        params = await _converted(store, net, body.parameters)
    else:
        scheme = body.init or InitSpec()
        seed = scheme.seed if scheme.seed is not None else secrets.randbits(63)
        draw = partial(initialize, net, scheme.scheme, seed)
        params = draw() if net.parameter_count <= answers.LARGE else await store.offload(draw)
        init = {"scheme": scheme.scheme, "seed": seed}
    return await _store_new(store, response, body, net, params, init)


async def _converted(
    store: ModelStore, net: Network, given: LayeredParameters | NamedParameters
) -> Params:
    """The core's parameters of ``given``; many of them converted in a worker thread."""
    convert_them = partial(convert.parameters, net, given)
    return (
        convert_them()
        if net.parameter_count <= answers.LARGE
        else await store.offload(convert_them)
    )


async def _store_new(
    store: ModelStore,
    response: Response,
    body: ModelCreate,
    net: Network,
    params: Params | Encoded,
    init: dict[str, Any] | None,
) -> ModelPublic:
    """Store a new model made from ``body`` with ``params``; 201 with its Location."""
    spec = {
        "network": specs.network_to_dict(net),
        "optimizer": specs.optimizer_to_dict(convert.optimizer(body.optimizer)),
        "init": init,
        "description": body.description,
        "tags": body.tags,
    }
    record = await store.create(body.name, spec, params)
    response.headers["Location"] = f"/v1/models/{record.name}"
    response.headers.update(etag(record.version))
    return public(record)


@router.get(
    "",
    summary="List models",
    description="Models ordered by name, a page at a time. Pass the `next_cursor` of a page as "
    "`cursor` to get the next; it is null on the last page.",
    responses=problem_responses(422),
)
async def list_models(
    store: StoreDep,
    limit: Annotated[int, per_page("Models")] = 50,
    cursor: CursorQuery = None,
) -> ModelList:
    records, total = await store.page(limit + 1, cursor)
    items, next_cursor = page(records, limit, lambda r: r.name)
    return ModelList(items=[public(r) for r in items], total=total, next_cursor=next_cursor)


@router.get(
    "/{name}",
    summary="Get a model",
    description="The model's network, optimizer, version and metadata (not its parameters).",
    responses=problem_responses(404),
)
async def get_model(name: NamePath, store: StoreDep, response: Response) -> ModelPublic:
    record = await store.get(name)
    response.headers.update(etag(record.version))
    return public(record)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a model",
    description="Delete the model and all its versions. With `If-Match`, only if it is still at "
    "that version.",
    responses=problem_responses(400, 404, 409, 412, 507),
)
async def delete_model(name: NamePath, store: StoreDep, expected: CheckedIfMatch) -> Response:
    await store.delete(name, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{name}/parameters",
    summary="Get a model's parameters",
    description="The weights and biases of the current version, or of a kept older one with "
    "`?version=N`; layered, or in the seed's named notation with `?notation=named`.",
    response_model=ParametersPublic,
    responses=problem_responses(404, 422),
)
async def get_parameters(
    name: NamePath,
    store: StoreDep,
    notation: NotationQuery = "layered",
    version: Annotated[
        int | None, Query(ge=1, le=MAX_INTEGER, description="A kept older version.")
    ] = None,
) -> Response:
    model = await store.load(name, version)

    def build() -> ParametersPublic:
        return ParametersPublic.model_construct(
            model=name,
            version=model.version,
            parameters=convert.parameters_out(model.params, notation),
        )

    numbers = model.network.parameter_count
    return await answers.json_response(store, numbers, build, etag(model.record.version))


@router.put(
    "/{name}/parameters",
    summary="Replace a model's parameters",
    description="Store new parameters (either notation) as version + 1. `If-Match` is checked "
    "before anything else (412 when stale). The optimizer state (momentum, moments) restarts.",
    response_model=ParametersPublic,
    responses=problem_responses(400, 404, 409, 412, 413, 422, 507),
)
async def put_parameters(
    name: NamePath,
    body: Annotated[ParametersPut, Body(openapi_examples=examples.PUT_PARAMETERS)],
    store: StoreDep,
    expected: CheckedIfMatch,
    notation: NotationQuery = "layered",
) -> Response:
    if body.model is not None and body.model != name:
        raise CoreError(f"the body names model {body.model!r}, the path {name!r}", "/model")
    model = await store.load(name)
    params = await _converted(store, model.network, body.parameters)
    record = await store.put_parameters(name, params, expected)

    def build() -> ParametersPublic:
        return ParametersPublic.model_construct(
            model=name, version=record.version, parameters=convert.parameters_out(params, notation)
        )

    numbers = model.network.parameter_count
    return await answers.json_response(store, numbers, build, etag(record.version))


@router.get(
    "/{name}/versions",
    summary="List a model's kept versions",
    description="The versions whose parameters are still kept (the newest "
    "`BACKPROP_KEEP_VERSIONS`), newest first, with when and why each was made.",
    responses=problem_responses(404),
)
async def list_versions(name: NamePath, store: StoreDep, response: Response) -> VersionList:
    record, versions = await store.versions(name)
    response.headers.update(etag(record.version))
    return VersionList(
        model=name,
        version=record.version,
        items=[
            VersionPublic(version=v.version, created_at=v.created_at, reason=v.reason)
            for v in versions
        ],
    )


@router.post(
    "/{name}/rollback",
    summary="Roll back to a kept version",
    description="Make a new version (version + 1) whose parameters and optimizer state equal "
    "those of a kept older version. History is never rewritten.",
    responses=problem_responses(400, 404, 409, 412, 422, 507),
)
async def rollback(
    name: NamePath,
    body: Annotated[RollbackRequest, Body(openapi_examples=examples.ROLLBACK)],
    store: StoreDep,
    expected: CheckedIfMatch,
    response: Response,
) -> ModelPublic:
    record = await store.rollback(name, body.version, expected)
    response.headers.update(etag(record.version))
    return public(record)


ExportFormat = Literal["json", "onnx", "npz"]
EXPORT_MEDIA = {"json": "application/json", "onnx": binary.ONNX, "npz": binary.NPZ}


@router.get(
    "/{name}/export",
    summary="Export a model",
    description="The model (its current version, or a kept older one with `?version=N`) as a "
    "file: `json`, the body of `POST /v1/models` that recreates it; `onnx`, an ONNX graph "
    "(opset 17) of Gemm and activation operators with input `input` [N, inputs] and output "
    "`output`, the loss in the metadata property `backprop.loss`; `npz`, a NumPy archive of "
    "the arrays W0, b0, W1, ... and the JSON body without parameters as the string `model`. "
    "ONNX and .npz files import again by `POST /v1/models`.",
    response_model=None,
    responses={
        200: {
            "description": "The model file, as an attachment named `{name}-v{version}.{format}`.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                binary.ONNX: {"schema": {"type": "string", "format": "binary"}},
                binary.NPZ: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **problem_responses(404, 413, 422),
    },
)
async def export_model(
    name: NamePath,
    ops: OpsDep,
    format: Annotated[ExportFormat, Query(description="The file format.")] = "json",
    version: Annotated[
        int | None, Query(ge=1, le=MAX_INTEGER, description="A kept older version.")
    ] = None,
) -> Response:
    store = ops.store
    model = await store.load(name, version)
    spec, net, params = model.record.spec, model.network, model.params
    ops.admit_export(net, binary=format != "json")
    render: Callable[[], bytes | list[bytes]]
    if format == "onnx":
        render = partial(onnx_io.to_onnx, net, params, name, model.version)
    elif format == "npz":
        render = partial(archive.to_npz, archive.create_body(name, spec, None), params)
    else:
        render = partial(json_file, name, spec, params)
    filename = f"{name}-v{model.version}.{format}"
    headers = {
        **etag(model.record.version),
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    media = EXPORT_MEDIA[format]
    return await file_response(store, net.parameter_count, render, media, headers)


def json_file(name: str, spec: specs.JSON, params: Params) -> list[bytes]:
    """The JSON export of a model, in blocks."""
    return blocks(archive.json_pieces(name, spec, params))


def blocks(pieces: Iterable[str]) -> list[bytes]:
    """``pieces`` of text joined and encoded a block of about ``answers.BLOCK`` bytes at a
    time (one join of megabytes would hold the interpreter lock for as long)."""
    done: list[bytes] = []
    pending: list[str] = []
    size = 0
    for piece in pieces:
        pending.append(piece)
        size += len(piece)
        if size >= answers.BLOCK:
            done.append("".join(pending).encode())
            pending, size = [], 0
    done.append("".join(pending).encode())
    return done


async def file_response(
    store: ModelStore,
    numbers: int,
    render: Callable[[], bytes | list[bytes]],
    media_type: str,
    headers: dict[str, str],
) -> Response:
    """The file ``render()`` writes, with its ``Content-Length``; with many numbers written in a
    worker process (``render`` a partial that pickles) and sent a block at a time, so that no
    single write of megabytes holds up the event loop."""
    if numbers <= answers.LARGE:
        content = render()
        return Response(
            content if isinstance(content, bytes) else b"".join(content),
            media_type=media_type,
            headers=headers,
        )
    rendered = await store.isolate(render)  # from a worker process: memoryviews, when large
    if isinstance(rendered, bytes | memoryview):
        whole = memoryview(rendered)
        parts: list[bytes | memoryview] = [
            whole[start : start + answers.BLOCK] for start in range(0, len(whole), answers.BLOCK)
        ]
    else:
        parts = list(rendered)
    length = sum(len(part) for part in parts)

    async def body() -> AsyncIterator[bytes | memoryview]:
        for part in parts:
            yield part
            await asyncio.sleep(0)  # the other requests' turn between blocks

    headers = {**headers, "Content-Length": str(length)}
    return StreamingResponse(body(), media_type=media_type, headers=headers)
