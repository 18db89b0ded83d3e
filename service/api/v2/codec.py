"""The Open Inference Protocol (V2) over HTTP: inference requests decoded from bytes to arrays,
responses encoded from arrays to bytes, with the binary tensor data extension.

A request is a JSON object, optionally followed by the raw bytes of its binary inputs; the
``Inference-Header-Content-Length`` header then gives the length of the JSON part, and each
binary input says in ``parameters.binary_data_size`` how many of the following bytes are its
own, in the order of ``inputs``. Binary tensors are row-major and little-endian. Responses are
framed the same way when an output is asked for in binary.

Errors of framing and encoding are :class:`MalformedContent` (400); whether the tensors fit the
model is for the caller and the core to judge.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.api.headers import decimal, shown
from service.api.schemas.common import MAX_INTEGER
from service.core import ShapeMismatch
from service.core.words import counted
from service.interop import MalformedContent, MalformedHeader, jsontext

HEADER_LENGTH = "Inference-Header-Content-Length"

# Datatypes accepted in inputs; integers and FP16 are cast to the model's dtype.
DATATYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(code)
    for name, code in {
        "FP64": "<f8",
        "FP32": "<f4",
        "FP16": "<f2",
        "INT8": "i1",
        "INT16": "<i2",
        "INT32": "<i4",
        "INT64": "<i8",
        "UINT8": "u1",
        "UINT16": "<u2",
        "UINT32": "<u4",
        "UINT64": "<u8",
    }.items()
}
DATATYPE_OF_DTYPE = {"float64": "FP64", "float32": "FP32"}
MAX_DIMENSIONS = 64  # NumPy's most
_SHARED_MEMORY = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")

Tensor = NDArray[Any]


@dataclass(frozen=True)
class RequestedOutput:
    """An output asked for by name; ``binary`` is its ``binary_data`` parameter, if given."""

    name: str
    binary: bool | None = None


@dataclass(frozen=True)
class InferenceRequest:
    """A decoded inference request: its id, input tensors by name (each in its own datatype,
    shaped), the outputs asked for (empty: all) and whether outputs default to binary."""

    id: str | None
    inputs: Mapping[str, Tensor]
    outputs: tuple[RequestedOutput, ...]
    binary_data_output: bool

    def binary(self, output: str) -> bool:
        """Whether ``output`` goes back as binary data: its own ``binary_data`` parameter,
        else the request's ``binary_data_output``."""
        for requested in self.outputs:
            if requested.name == output and requested.binary is not None:
                return requested.binary
        return self.binary_data_output


@dataclass(frozen=True)
class OutputTensor:
    name: str
    data: Tensor
    binary: bool


def decode_request(body: bytes, header_length: str | None) -> InferenceRequest:
    """Split ``body`` into its JSON header and binary part and decode every input."""
    header, binary = _split(body, header_length)
    try:
        document = jsontext.loads(header)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise MalformedContent(f"the inference request is not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise MalformedContent(
            f"the inference request must be a JSON object, not {_kind(document)}"
        )
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise MalformedContent(f"id must be a string, not {_kind(request_id)}", "/id")
    parameters = _parameters(document, "/parameters")
    binary_output = parameters.get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise MalformedContent(
            f"binary_data_output must be true or false, not {_kind(binary_output)}",
            "/parameters/binary_data_output",
        )
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise MalformedContent(
            f"inputs must be a non-empty list of tensors, not {_kind(inputs)}", "/inputs"
        )
    tensors: dict[str, Tensor] = {}
    offset = 0
    for i, entry in enumerate(inputs):
        name, tensor, offset = _input(entry, f"/inputs/{i}", binary, offset)
        if name in tensors:
            raise MalformedContent(f"input {shown(name)} is given twice", f"/inputs/{i}/name")
        tensors[name] = tensor
    if offset != len(binary):
        raise MalformedContent(
            f"{counted(len(binary) - offset, 'byte')} of binary data follow the inputs' "
            f"binary_data_size (the binary part has {counted(len(binary), 'byte')}, the inputs "
            f"claim {offset})"
        )
    return InferenceRequest(
        request_id, tensors, _requested_outputs(document.get("outputs")), binary_output
    )


def model_input(request: InferenceRequest, name: str, width: int, max_rows: int) -> Tensor:
    """The request's one input ``name`` of shape ``[rows, width]``, 1 <= rows <= max_rows.

    Unknown or missing inputs are malformed (400); a shape that does not fit the model is a
    :class:`ShapeMismatch` (422), as on the ``/v1`` endpoints.
    """
    for i, given in enumerate(request.inputs):
        if given != name:
            raise MalformedContent(
                f"unknown input {shown(given)}; the model has one input, {shown(name)}",
                f"/inputs/{i}/name",
            )
    if name not in request.inputs:
        raise MalformedContent(f"the request lacks the input {shown(name)}", "/inputs")
    tensor = request.inputs[name]
    pointer = f"/inputs/{list(request.inputs).index(name)}/shape"
    shape = list(tensor.shape)
    if tensor.ndim != 2 or shape[1] != width:
        raise ShapeMismatch(
            f"input {shown(name)} must have shape [-1, {width}] (rows of the model's {width} "
            f"inputs); got {shape}",
            pointer,
        )
    if not 1 <= shape[0] <= max_rows:
        raise ShapeMismatch(
            f"input {shown(name)} must have 1 to {max_rows} rows; got {shape[0]}", pointer
        )
    return tensor


def check_outputs(request: InferenceRequest, names: Sequence[str]) -> list[str]:
    """The outputs to send: those asked for (each must exist), else all of ``names``."""
    if not request.outputs:
        return list(names)
    for i, requested in enumerate(request.outputs):
        if requested.name not in names:
            raise MalformedContent(
                f"unknown output {shown(requested.name)}; the model's outputs are "
                f"{', '.join(repr(n) for n in names)}",
                f"/outputs/{i}/name",
            )
    return [requested.name for requested in request.outputs]


def encode_response(
    model_name: str, model_version: str, request_id: str | None, outputs: Sequence[OutputTensor]
) -> tuple[bytes, int | None]:
    """The response body and, when any output is binary, the length of its JSON header."""
    chunks: list[bytes] = []
    entries: list[dict[str, Any]] = []
    for output in outputs:
        entry: dict[str, Any] = {
            "name": output.name,
            "datatype": DATATYPE_OF_DTYPE[output.data.dtype.name],
            "shape": list(output.data.shape),
        }
        if output.binary:
            raw = np.ascontiguousarray(output.data, output.data.dtype.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = output.data.ravel().tolist()
        entries.append(entry)
    document: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        document["id"] = request_id
    document["outputs"] = entries
    header = json.dumps(document, allow_nan=False, separators=(",", ":")).encode()
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)


# -- internals --------------------------------------------------------------------------------


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    n = decimal(header_length, len(body))
    if not n:
        raise MalformedHeader(
            f"{HEADER_LENGTH} must be the length in bytes of the JSON part of the body, an "
            f"integer from 1 to the body's {len(body)} bytes; got {shown(header_length)}"
        )
    return body[:n], body[n:]


def _kind(value: Any) -> str:
    """The JSON type of ``value``, for messages about a value of the wrong type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    return "an object"


def _object(value: Any, pointer: str, what: str = "") -> dict[str, Any]:
    """``value`` if it is a JSON object; ``what`` names it (by default, its key)."""
    if not isinstance(value, dict):
        what = what or pointer.rsplit("/", 1)[-1]
        raise MalformedContent(f"{what} must be a JSON object, not {_kind(value)}", pointer)
    return value


def _parameters(owner: dict[str, Any], pointer: str) -> dict[str, Any]:
    """The ``parameters`` object of ``owner``: empty when absent or null, as the protocol's
    optional fields are."""
    value = owner.get("parameters")
    return {} if value is None else _object(value, pointer)


def _input(entry: Any, where: str, binary: bytes, offset: int) -> tuple[str, Tensor, int]:
    """One input tensor: its name, its array (in its datatype, shaped) and the offset after its
    binary data."""
    entry = _object(entry, where, "every input (a tensor)")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedContent(
            f"every input needs a name, a non-empty string (got {_kind(name)})", f"{where}/name"
        )
    datatype = entry.get("datatype")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        given = shown(datatype) if isinstance(datatype, str) else _kind(datatype)
        raise MalformedContent(
            f"input {shown(name)}: unsupported datatype {given}; expected a string, one of "
            f"{', '.join(DATATYPES)}",
            f"{where}/datatype",
        )
    dtype = DATATYPES[datatype]
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_INTEGER for d in shape
    ):
        raise MalformedContent(
            f"input {shown(name)}: shape must be a list of integers from 0 to {MAX_INTEGER}",
            f"{where}/shape",
        )
    if len(shape) > MAX_DIMENSIONS:
        raise MalformedContent(
            f"input {shown(name)}: shape has {len(shape)} dimensions; at most {MAX_DIMENSIONS}",
            f"{where}/shape",
        )
    count = math.prod(shape)
    if math.prod(d for d in shape if d) * dtype.itemsize > MAX_INTEGER:
        raise MalformedContent(
            f"input {shown(name)}: shape {shape} of {datatype} is larger than any array can be",
            f"{where}/shape",
        )
    parameters = _parameters(entry, f"{where}/parameters")
    for key in _SHARED_MEMORY:
        if key in parameters:
            raise MalformedContent(
                f"input {shown(name)}: shared memory is not supported; send the data in the body",
                f"{where}/parameters/{key}",
            )
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_INTEGER:
            raise MalformedContent(
                f"input {shown(name)}: binary_data_size must be an integer from 0 to "
                f"{MAX_INTEGER}, not {_kind(size)}",
                f"{where}/parameters/binary_data_size",
            )
        if "data" in entry:
            raise MalformedContent(
                f"input {shown(name)} has both data and binary_data_size; give one", f"{where}/data"
            )
        if size != count * dtype.itemsize:
            raise MalformedContent(
                f"input {shown(name)}: binary_data_size is {counted(size, 'byte')}, but shape "
                f"{shape} of "
                f"{datatype} takes {count * dtype.itemsize}",
                f"{where}/parameters/binary_data_size",
            )
        if offset + size > len(binary):
            raise MalformedContent(
                f"input {shown(name)}: binary_data_size says {counted(size, 'byte')}, but only "
                f"{counted(len(binary) - offset, 'byte')} of binary data remain in the body",
                f"{where}/parameters/binary_data_size",
            )
        tensor = np.frombuffer(binary, dtype=dtype, count=count, offset=offset)
        return name, tensor.reshape(shape), offset + size
    if "data" not in entry:
        raise MalformedContent(
            f"input {shown(name)} has neither data nor parameters.binary_data_size", f"{where}/data"
        )
    return name, _json_data(entry["data"], name, datatype, shape, count, f"{where}/data"), offset


def _holds_bool(data: list[Any]) -> bool:
    """Whether ``data``, a list of numbers or of such lists, holds a JSON ``true`` or ``false``."""
    pending = [data]
    while pending:
        for value in pending.pop():
            if value is True or value is False:
                return True
            if isinstance(value, list):
                pending.append(value)
    return False


def _json_data(
    data: Any, name: str, datatype: str, shape: list[int], count: int, where: str
) -> Tensor:
    """Tensor data given in JSON, flat or nested, row-major."""
    if not isinstance(data, list):
        raise MalformedContent(
            f"input {shown(name)}: data must be a list of numbers, not {_kind(data)}", where
        )
    try:
        values = np.array(data)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise MalformedContent(
            f"input {shown(name)}: data must be a flat or evenly nested list of numbers", where
        ) from exc
    dtype = DATATYPES[datatype]
    integral = dtype.kind in "iu"
    if values.dtype.kind not in ("iu" if integral else "iuf") and values.size:
        if values.dtype.kind == "O" and all(type(v) is int for v in values.flat):
            advice = (
                f"out of the range of {datatype}"
                if integral
                else "write them with an exponent, like 1e30"
            )
            raise MalformedContent(
                f"input {shown(name)}: data holds integers beyond 64 bits; {advice}", where
            )
        kind = "integers" if integral else "numbers"
        raise MalformedContent(f"input {shown(name)}: data of {datatype} must be {kind}", where)
    if values.dtype.kind in "iuf" and _holds_bool(data):  # NumPy reads true as 1, false as 0
        kind = "integers" if integral else "numbers"
        raise MalformedContent(
            f"input {shown(name)}: data of {datatype} must be {kind}, not true or false", where
        )
    if values.size != count:
        raise MalformedContent(
            f"input {shown(name)}: shape {shape} has {counted(count, 'element')} but data has "
            f"{values.size}",
            where,
        )
    with np.errstate(over="ignore", invalid="ignore"):
        typed = values.astype(dtype)
    if integral and not np.array_equal(typed, values):
        raise MalformedContent(f"input {shown(name)}: data out of the range of {datatype}", where)
    return typed.reshape(shape)


def _requested_outputs(value: Any) -> tuple[RequestedOutput, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MalformedContent(f"outputs must be a list, not {_kind(value)}", "/outputs")
    requested: list[RequestedOutput] = []
    for i, entry in enumerate(value):
        where = f"/outputs/{i}"
        entry = _object(entry, where, "every requested output")
        name = entry.get("name")
        if not isinstance(name, str):
            raise MalformedContent(
                f"every requested output needs a name, a string (got {_kind(name)})",
                f"{where}/name",
            )
        parameters = _parameters(entry, f"{where}/parameters")
        for key in ("classification", *_SHARED_MEMORY):
            if key in parameters and parameters[key] not in (None, 0, False):
                raise MalformedContent(
                    f"output {shown(name)}: the parameter {key} is not supported",
                    f"{where}/parameters/{key}",
                )
        binary = parameters.get("binary_data")
        if binary is not None and not isinstance(binary, bool):
            raise MalformedContent(
                f"output {shown(name)}: binary_data must be true or false, not {_kind(binary)}",
                f"{where}/parameters/binary_data",
            )
        requested.append(RequestedOutput(name, binary))
    return tuple(requested)
