"""The model registry: create, import, list, read, delete, parameters, versions, rollback and
export."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from service.client.call import (
    NPZ,
    ONNX,
    Call,
    Obj,
    Pages,
    body,
    content,
    nothing,
    params,
    path,
    precondition,
    schema,
    upload,
)
from service.client.types import ModelList, ModelPublic, ParametersPublic, VersionList

Notation = Literal["layered", "named"]
ExportFormat = Literal["json", "onnx", "npz"]
MEDIA = {"json": "application/json", "onnx": ONNX, "npz": NPZ}


def create_model(
    name: str,
    network: Obj,
    *,
    parameters: Obj | None = None,
    init: Obj | None = None,
    optimizer: Obj | None = None,
    description: str | None = None,
    tags: Sequence[str] | None = None,
) -> Call[ModelPublic]:
    """``POST /v1/models``: store ``network`` with ``parameters`` (layered
    ``{"layers": [{"weights", "biases"}, ...]}`` or named ``{"w1": ..., "b1": ...}``) or with
    parameters drawn by ``init`` (``{"scheme", "seed"}``; xavier_uniform by default). The model
    at version 1; :class:`Conflict` if the name is taken."""
    return Call(
        "POST",
        "/v1/models",
        schema(ModelPublic),
        json=body(
            name=name,
            network=network,
            parameters=parameters,
            init=init,
            optimizer=optimizer,
            description=description,
            tags=list(tags) if tags is not None else None,
        ),
    )


def import_model(
    data: bytes,
    format: ExportFormat,
    *,
    name: str | None = None,
    loss: str | None = None,
) -> Call[ModelPublic]:
    """``POST /v1/models`` with a model file: ``onnx`` (``application/onnx``), ``npz``
    (``application/x-npz``, as :meth:`export_model` writes it) or ``json`` (the export's
    body). ``name`` replaces the file's name, ``loss`` sets the network's loss (ONNX has
    none; by default the file's, else cross_entropy after softmax, half_squared_error
    otherwise). For ``json`` the client applies them to the body."""
    if format == "json":
        document = json.loads(data)
        if name is not None:
            document["name"] = name
        if loss is not None:
            document["network"] = {**document["network"], "loss": loss}
        return Call("POST", "/v1/models", schema(ModelPublic), json=document)
    query = params(name=name, loss=loss)
    return upload("/v1/models", schema(ModelPublic), data, MEDIA[format], query)


def list_models(limit: int | None = None, cursor: str | None = None) -> Call[ModelList]:
    """``GET /v1/models``: one page of models ordered by name (``limit`` per page, 50 by
    default); pass its ``next_cursor`` as ``cursor`` for the next page."""
    return Call("GET", "/v1/models", schema(ModelList), params=params(limit=limit, cursor=cursor))


def every_model(page_size: int | None = None) -> Pages[ModelPublic, str]:
    """Every model, by name, fetched ``GET /v1/models`` page by page."""
    return lambda cursor: list_models(page_size, cursor)


def get_model(name: str) -> Call[ModelPublic]:
    """``GET /v1/models/{name}``: the model's network, optimizer, version and metadata."""
    return Call("GET", path("/v1/models/{}", name), schema(ModelPublic))


def delete_model(name: str, *, if_match: int | None = None) -> Call[None]:
    """``DELETE /v1/models/{name}``: delete the model and its versions; with ``if_match``
    only if it is still at that version (else :class:`PreconditionFailed`)."""
    return Call("DELETE", path("/v1/models/{}", name), nothing, headers=precondition(if_match))


def get_parameters(
    name: str, *, notation: Notation = "layered", version: int | None = None
) -> Call[ParametersPublic]:
    """``GET /v1/models/{name}/parameters``: the weights and biases of the current version
    (or of a kept older ``version``), layered or in the seed's ``named`` notation."""
    return Call(
        "GET",
        path("/v1/models/{}/parameters", name),
        schema(ParametersPublic),
        params=params(notation=notation, version=version),
    )


def put_parameters(
    name: str, parameters: Obj, *, notation: Notation = "layered", if_match: int | None = None
) -> Call[ParametersPublic]:
    """``PUT /v1/models/{name}/parameters``: store ``parameters`` (either notation) as a new
    version; with ``if_match`` only if the model is still at that version. The answer's
    parameters are in ``notation``."""
    return Call(
        "PUT",
        path("/v1/models/{}/parameters", name),
        schema(ParametersPublic),
        params=params(notation=notation),
        json=body(parameters=parameters),
        headers=precondition(if_match),
    )


def list_versions(name: str) -> Call[VersionList]:
    """``GET /v1/models/{name}/versions``: the kept versions, newest first."""
    return Call("GET", path("/v1/models/{}/versions", name), schema(VersionList))


def rollback(name: str, version: int, *, if_match: int | None = None) -> Call[ModelPublic]:
    """``POST /v1/models/{name}/rollback``: a new version whose parameters and optimizer state
    equal those of the kept ``version``."""
    return Call(
        "POST",
        path("/v1/models/{}/rollback", name),
        schema(ModelPublic),
        json={"version": version},
        headers=precondition(if_match),
    )


def export_model(
    name: str, format: ExportFormat = "json", *, version: int | None = None
) -> Call[bytes]:
    """``GET /v1/models/{name}/export``: the model (or a kept older ``version``) as a file,
    ``json`` (the body of ``POST /v1/models``), ``onnx`` or ``npz``; :meth:`import_model`
    reads it back."""
    return Call(
        "GET",
        path("/v1/models/{}/export", name),
        content,
        params=params(format=format, version=version),
    )
