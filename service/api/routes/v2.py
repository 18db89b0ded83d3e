"""The Open Inference Protocol (V2) of KServe and Triton, so that their clients (such as an
unmodified ``tritonclient.http``) can run the stored models.

Every model has one input ``input`` of shape ``[-1, inputs]`` and one output ``output`` of shape
``[-1, outputs]``, in the network's dtype (FP64 or FP32). Versions are the registry's kept
versions; without one, the current version answers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Response
from starlette.concurrency import run_in_threadpool

from service import __version__, specs
from service.api import answers, endpoint, examples
from service.api.deps import NamePath, StoreDep, etag
from service.api.endpoint import CallDep
from service.api.problems import problem_responses
from service.api.schemas.common import MAX_INTEGER
from service.api.v2 import codec
from service.api.v2.schemas import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
    TensorMetadata,
    inline_schema,
)
from service.operations import Operations
from service.registry import VersionNotFound
from service.store import LoadedModel, ModelStore

router = APIRouter(prefix="/v2", tags=["inference"])

INPUT, OUTPUT = "input", "output"
PLATFORM = "numpy"
EXTENSIONS = ["binary_tensor_data"]

VersionPath = Annotated[
    int,
    Path(
        ge=1,
        le=MAX_INTEGER,
        description="A kept version of the model.",
        openapi_examples=examples.path_example(1, "The version a new model starts at"),
    ),
]
HeaderLength = Annotated[
    str | None,
    Header(
        alias=codec.HEADER_LENGTH,
        description="With binary inputs: the length in bytes of the JSON part of the body.",
    ),
]

INFER_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The inference request as JSON, or (binary tensor data extension) that "
        "JSON followed by the raw little-endian bytes of the inputs that have "
        "`parameters.binary_data_size`, with `Inference-Header-Content-Length` giving the "
        "length of the JSON. Any Content-Type is accepted (Triton's client sends none).",
        "content": {
            "application/json": {
                "schema": inline_schema(InferenceRequest),
                "examples": {
                    "worked-example": {
                        "summary": "The seed's input, output as JSON",
                        "value": {
                            "inputs": [
                                {
                                    "name": "input",
                                    "shape": [1, 2],
                                    "datatype": "FP64",
                                    "data": [0.23, 0.55],
                                }
                            ]
                        },
                    }
                },
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": InferenceResponse,
        "description": "The outputs: JSON, or with binary outputs that JSON followed by their "
        "bytes, `Inference-Header-Content-Length` giving the length of the JSON.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            codec.HEADER_LENGTH: {
                "description": "With binary outputs: the length in bytes of the JSON part.",
                "schema": {"type": "integer"},
            }
        },
    },
    **problem_responses(400, 404, 413, 422),
}


@router.get(
    "",
    summary="Server metadata",
    description="The server's name, version and protocol extensions (`binary_tensor_data`).",
)
async def server_metadata() -> ServerMetadata:
    return ServerMetadata(name="backprop-service", version=__version__, extensions=EXTENSIONS)


@router.get(
    "/health/live",
    summary="Server liveness",
    description="200 while the process serves requests.",
)
async def server_live() -> ServerLive:
    return ServerLive(live=True)


@router.get(
    "/health/ready",
    summary="Server readiness",
    description="200 when the model registry answers; 503 (a problem) while it cannot be reached.",
    responses=problem_responses(503),
)
async def server_ready(store: StoreDep) -> ServerReady:
    await run_in_threadpool(store.registry.ping)
    return ServerReady(ready=True)


@router.get(
    "/models/{name}",
    summary="Model metadata",
    description="The model's kept versions, its one input `input` of shape `[-1, inputs]` and "
    "its one output `output` of shape `[-1, outputs]`, in its dtype (FP64 or FP32).",
    responses=problem_responses(404),
)
async def model_metadata(name: NamePath, store: StoreDep) -> ModelMetadata:
    return await _metadata(store, name, None)


@router.get(
    "/models/{name}/versions/{version}",
    summary="Model version metadata",
    description="The metadata of the model, answered for a kept version (404 otherwise).",
    responses=problem_responses(404),
)
async def model_version_metadata(
    name: NamePath, version: VersionPath, store: StoreDep
) -> ModelMetadata:
    return await _metadata(store, name, version)


@router.get(
    "/models/{name}/ready",
    summary="Model readiness",
    description="200 when the model exists (stored models are always ready); 404 otherwise.",
    responses=problem_responses(404),
)
async def model_ready(name: NamePath, store: StoreDep) -> ModelReady:
    await _metadata(store, name, None)
    return ModelReady(name=name, ready=True)


@router.get(
    "/models/{name}/versions/{version}/ready",
    summary="Model version readiness",
    description="200 when the version is kept; 404 otherwise.",
    responses=problem_responses(404),
)
async def model_version_ready(name: NamePath, version: VersionPath, store: StoreDep) -> ModelReady:
    await _metadata(store, name, version)
    return ModelReady(name=name, ready=True)


@endpoint.post(
    router,
    "/models/{name}/infer",
    summary="Inference",
    description="The forward pass of the model's current version, as the Open Inference "
    "Protocol defines it: one input `input` (FP64 or FP32; FP16 and integers are cast to the "
    "model's dtype), one output `output`, each as JSON `data` or binary data. Outputs are "
    "binary when the request's `parameters.binary_data_output` or the output's "
    "`parameters.binary_data` says so. 400 for a request that cannot be decoded, 422 for an "
    "input that does not fit the model (as on `/v1`), 404 for an unknown model.",
    response_model=None,
    responses=INFER_RESPONSES,
    openapi_extra=INFER_OPENAPI,
)
async def infer(name: NamePath, call: CallDep, header_length: HeaderLength = None) -> Response:
    model = await call.ops.store.load(name)
    return await infer_response(
        call.ops, model, call.body, header_length, call.settings.max_batch_rows
    )


@endpoint.post(
    router,
    "/models/{name}/versions/{version}/infer",
    summary="Inference on a version",
    description="Inference as above, on a kept version of the model (404 otherwise).",
    response_model=None,
    responses=INFER_RESPONSES,
    openapi_extra=INFER_OPENAPI,
)
async def infer_version(
    name: NamePath, version: VersionPath, call: CallDep, header_length: HeaderLength = None
) -> Response:
    model = await call.ops.store.load(name, version)
    return await infer_response(
        call.ops, model, call.body, header_length, call.settings.max_batch_rows
    )


async def _metadata(store: ModelStore, name: str, version: int | None) -> ModelMetadata:
    record, kept = await store.versions(name)
    numbers = [v.version for v in kept]
    if version is not None and version not in numbers:
        raise VersionNotFound(name, version, (min(numbers), max(numbers)) if numbers else None)
    # Versions differ in parameters only: the network, and so the tensors, are the record's.
    network = specs.network_from_dict(record.spec["network"])
    datatype = codec.DATATYPE_OF_DTYPE[network.dtype]
    return ModelMetadata(
        name=name,
        versions=[str(n) for n in numbers],
        platform=PLATFORM,
        inputs=[TensorMetadata(name=INPUT, datatype=datatype, shape=[-1, network.inputs])],
        outputs=[TensorMetadata(name=OUTPUT, datatype=datatype, shape=[-1, network.outputs])],
    )


async def infer_response(
    ops: Operations,
    model: LoadedModel,
    body: bytes,
    header_length: str | None,
    max_rows: int,
) -> Response:
    request = codec.decode_request(body, header_length)
    X = codec.model_input(request, INPUT, model.network.inputs, max_rows)
    outputs = codec.check_outputs(request, [OUTPUT])
    binary = all(request.binary(name) for name in outputs)
    Y = await ops.outputs(model.network, model.params, X, binary=binary)
    content, json_length = codec.encode_response(
        model.record.name,
        str(model.version),
        request.id,
        [codec.OutputTensor(name, Y, request.binary(name)) for name in outputs],
    )
    headers = etag(model.version)
    if json_length is None:
        return answers.JSONAnswer(content, headers)
    headers[codec.HEADER_LENGTH] = str(json_length)
    return Response(content, headers=headers, media_type="application/octet-stream")
