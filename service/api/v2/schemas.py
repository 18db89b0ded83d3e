"""Bodies of the Open Inference Protocol (V2), as the KServe/Triton spec names them.

The inference request and response are documented here and encoded by ``codec`` (they may
carry binary data after the JSON, which Pydantic cannot parse); the metadata and health
responses are served through these models.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from service.api.schemas.common import Out

Parameters = dict[str, Any]


class ServerMetadata(Out):
    name: str
    version: str
    extensions: list[str] = Field(description="Protocol extensions the server supports.")


class ServerLive(Out):
    live: bool


class ServerReady(Out):
    ready: bool


class ModelReady(Out):
    name: str
    ready: bool


class TensorMetadata(Out):
    name: str
    datatype: str = Field(examples=["FP64"])
    shape: list[int] = Field(description="-1 for a dimension of any size.", examples=[[-1, 2]])


class ModelMetadata(Out):
    name: str
    versions: list[str] = Field(description="The kept versions, newest first.")
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class RequestInput(BaseModel):
    """An input tensor: ``data`` in JSON (flat or nested, row-major), or
    ``parameters.binary_data_size`` bytes of raw little-endian data after the JSON."""

    name: str = Field(examples=["input"])
    shape: list[int] = Field(examples=[[1, 2]])
    datatype: str = Field(
        description="FP64 or FP32 (the model's, see its metadata); FP16 and INT8..UINT64 "
        "are cast to it.",
        examples=["FP64"],
    )
    parameters: Parameters | None = Field(
        None, description="`binary_data_size`: bytes of this input in the binary part."
    )
    data: list[Any] | None = Field(None, examples=[[0.23, 0.55]])


class RequestOutput(BaseModel):
    name: str = Field(examples=["output"])
    parameters: Parameters | None = Field(
        None, description="`binary_data`: true for this output as binary data after the JSON."
    )


class InferenceRequest(BaseModel):
    """An inference request. With binary inputs, the JSON is followed by their bytes and the
    `Inference-Header-Content-Length` header gives the length of the JSON."""

    id: str | None = None
    parameters: Parameters | None = Field(
        None, description="`binary_data_output`: true for every output as binary data."
    )
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = Field(None, description="Default: every output.")


class ResponseOutput(Out):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = Field(
        None, description="`binary_data_size`: bytes of this output in the binary part."
    )
    data: list[float] | None = Field(None, description="Row-major, flat; absent when binary.")


class InferenceResponse(Out):
    """The outputs. When any is binary, the body is this JSON followed by their bytes
    (row-major, little-endian) and the `Inference-Header-Content-Length` header gives the
    length of the JSON."""

    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of ``model`` with every ``$defs`` reference inlined, for places of the
    OpenAPI spec (``openapi_extra``) that cannot add components."""
    schema = model.model_json_schema()
    defs: dict[str, Any] = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
