"""Binary encoding of named array bundles and of model specs.

Bundle layout (all integers little-endian)::

    magic  b"BPARRAY" + format version byte (1)
    u32    length of the JSON header
    JSON   {"arrays": [{"name": str, "dtype": "<f8" | "<f4" | "<i8", "shape": [int, ...]}, ...]}
    data   each array's raw C-order bytes, in header order, every section starting on an
           8-byte boundary (zero padding)

Raw bytes instead of decimal text keep values bit-exact (-0.0, subnormals, NaN payloads), and
a hand-written header avoids pickle, so decoding untrusted bytes cannot execute code.
"""

from __future__ import annotations

import json
import math
import mmap
import pickle
import struct
from collections.abc import Mapping
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

_MAGIC = b"BPARRAY\x01"
_PREFIX = struct.Struct("<8sI")
_ALIGN = 8
_ALLOWED_DTYPES = {np.dtype(code): code for code in ("<f8", "<f4", "<i8")}
_MAX_HEADER = 16 * 1024 * 1024


def _padded(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


class Encoded:
    """A bundle already encoded by :func:`encode_arrays`, stored as it is.

    A model file imported in a worker process comes back encoded there, so that the server
    stores its bytes without spending the interpreter lock on copying megabytes. It pickles
    its bytes out of band (protocol 5), so they travel to the server through shared memory;
    there they arrive as a read-only view of a private mapping that nothing else writes. A
    view of anything else that could change (a bytearray, say) is copied.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes | memoryview) -> None:
        if isinstance(data, memoryview):
            data = data.toreadonly() if _immutable(data) else bytes(data)
        self.data: bytes | memoryview = data

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        if protocol >= 5:
            return Encoded, (pickle.PickleBuffer(self.data),)
        return Encoded, (bytes(self.data),)


def _immutable(data: bytes | memoryview) -> bool:
    """Whether nothing can change ``data``'s bytes: bytes, or a view of bytes or of a private
    mapping (a shipped result's, whose writable views the server drops once it has read it)."""
    if isinstance(data, bytes):
        return True
    return isinstance(data.obj, bytes | mmap.mmap)


@overload
def encode_arrays(arrays: Mapping[str, NDArray[Any]]) -> bytes: ...
@overload
def encode_arrays(arrays: Mapping[str, NDArray[Any]] | Encoded) -> bytes | memoryview: ...
def encode_arrays(arrays: Mapping[str, NDArray[Any]] | Encoded) -> bytes | memoryview:
    """Encode a bundle of named arrays to bytes, keeping names, order, dtype, shape and bits
    (an :class:`Encoded` bundle: its bytes as they are).

    Raises ValueError if a name is not a str or an array is not an ndarray of dtype float64,
    float32 or int64 (either byte order).
    """
    if isinstance(arrays, Encoded):
        return arrays.data
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, arr in arrays.items():
        if not isinstance(name, str):
            raise ValueError(f"array names must be str, got {type(name).__name__}")
        if not isinstance(arr, np.ndarray):
            raise ValueError(f"array {name!r} is a {type(arr).__name__}, not a numpy ndarray")
        code = _ALLOWED_DTYPES.get(arr.dtype.newbyteorder("<"))
        if code is None:
            raise ValueError(
                f"array {name!r} has dtype {arr.dtype}; only float64, float32, int64 are stored"
            )
        entries.append({"name": name, "dtype": code, "shape": list(arr.shape)})
        # Fixing the byte order here makes the stored bytes independent of the host.
        chunks.append(np.ascontiguousarray(arr, dtype=code).tobytes())
    header = json.dumps({"arrays": entries}, separators=(",", ":")).encode()
    parts = [_PREFIX.pack(_MAGIC, len(header)), header]
    offset = _PREFIX.size + len(header)
    for chunk in chunks:
        parts.append(b"\x00" * (_padded(offset) - offset))
        parts.append(chunk)
        offset = _padded(offset) + len(chunk)
    return b"".join(parts)


def decode_arrays(data: bytes | memoryview) -> dict[str, NDArray[Any]]:
    """Decode bytes made by `encode_arrays` into a new dict of read-only arrays.

    The arrays are views of an immutable bytes object (or of a read-only view of bytes or of a
    private mapping nothing writes, as :class:`Encoded` keeps them; anything else is copied),
    so their WRITEABLE flag cannot be set back to True. Raises ValueError if the data is malformed.
    """
    if not isinstance(data, bytes) and not (
        isinstance(data, memoryview) and data.readonly and _immutable(data)
    ):
        data = bytes(data)  # a view of a mutable buffer would make the arrays mutable
    if len(data) < _PREFIX.size:
        raise ValueError("corrupt array bundle: too short")
    magic, header_len = _PREFIX.unpack_from(data)
    if magic != _MAGIC:
        raise ValueError("corrupt array bundle: bad magic or unsupported format version")
    offset = _PREFIX.size + header_len
    if header_len > _MAX_HEADER or offset > len(data):
        raise ValueError("corrupt array bundle: header length out of range")
    try:
        entries = json.loads(bytes(data[_PREFIX.size : offset]))["arrays"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"corrupt array bundle: bad header ({exc})") from exc
    if not isinstance(entries, list):
        raise ValueError("corrupt array bundle: bad header")
    result: dict[str, NDArray[Any]] = {}
    for entry in entries:
        name, dtype, shape = _check_entry(entry)
        if name in result:
            raise ValueError(f"corrupt array bundle: duplicate name {name!r}")
        count = math.prod(shape)
        offset = _padded(offset)
        end = offset + count * dtype.itemsize
        if end > len(data):
            raise ValueError(f"corrupt array bundle: data of {name!r} truncated")
        arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)
        result[name] = arr
        offset = end
    if offset != len(data):
        raise ValueError("corrupt array bundle: trailing bytes")
    return result


def _check_entry(entry: Any) -> tuple[str, np.dtype[Any], tuple[int, ...]]:
    if not isinstance(entry, dict):
        raise ValueError("corrupt array bundle: bad header entry")
    name, code, shape = entry.get("name"), entry.get("dtype"), entry.get("shape")
    if not isinstance(name, str) or code not in _ALLOWED_DTYPES.values():
        raise ValueError("corrupt array bundle: bad header entry")
    if not isinstance(shape, list) or not all(
        type(n) is int and n >= 0
        for n in shape  # bool is an int subclass: reject it
    ):
        raise ValueError(f"corrupt array bundle: bad shape for {name!r}")
    return name, np.dtype(code), tuple(shape)


def encode_spec(spec: dict[str, Any]) -> str:
    """Serialise a model spec to JSON text; ValueError if it is not a JSON object."""
    if not isinstance(spec, dict):
        raise ValueError(f"spec must be a dict, got {type(spec).__name__}")
    try:
        # ASCII output: lone surrogates in strings then cannot break UTF-8 storage.
        return json.dumps(spec, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"spec is not JSON-serialisable: {exc}") from exc


def decode_spec(text: str) -> dict[str, Any]:
    """Parse JSON text made by `encode_spec` into a new dict."""
    spec = json.loads(text)
    if not isinstance(spec, dict):
        raise ValueError("stored spec is not a JSON object")
    return spec
