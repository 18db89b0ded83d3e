"""The model registry: create, list, read, delete, parameters, versions and rollback."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response, status

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
from service.core import Network, Params
from service.core.errors import CoreError
from service.operations import models
from service.operations.models import ExportFormat
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
    chunks = [chunk async for chunk in request.stream()]
    body, net, params = await models.imported(store, chunks, decode)
    return await _store_new(store, response, body, net, params, None)


def decode_import(
    content: bytes, *, onnx: bool, name: str | None, loss: str | None, max_bytes: int
) -> tuple[ModelCreate, Network, Encoded]:
    """An ONNX or .npz model file: its model description, network and parameters, checked,
    the parameters encoded as the registry stores them."""
    fields, pairs = models.read_file(content, onnx=onnx, loss=loss, max_bytes=max_bytes)
    body = binary.validate(ModelCreate, {**fields, "name": name or fields.get("name")})
    net = convert.network(body.network)
    with convert.at("/parameters"):
        return body, net, models.encoded(net, pairs)


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
        params, seed = await models.drawn(store, net, scheme.scheme, scheme.seed)
        init = {"scheme": scheme.scheme, "seed": seed}
    return await _store_new(store, response, body, net, params, init)


async def _converted(
    store: ModelStore, net: Network, given: LayeredParameters | NamedParameters
) -> Params:
    """The core's parameters of ``given``, converted where their number says."""
    return await models.converted(store, net, partial(convert.parameters, net, given))


async def _store_new(
    store: ModelStore,
    response: Response,
    body: ModelCreate,
    net: Network,
    params: Params | Encoded,
    init: dict[str, Any] | None,
) -> ModelPublic:
    """Store a new model made from ``body`` with ``params``; 201 with its Location."""
    optimizer = convert.optimizer(body.optimizer)
    record = await models.create(
        store,
        body.name,
        net,
        optimizer,
        params,
        init=init,
        description=body.description,
        tags=body.tags,
    )
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
    exported = await models.export(ops, name, format, version)
    headers = {
        **etag(exported.version),
        "Content-Disposition": f'attachment; filename="{exported.filename}"',
    }
    return answers.file_response(exported.file, EXPORT_MEDIA[format], headers)
