"""NumPy's ``.npy`` and ``.npz`` files, read without pickle and without trusting their headers.

A header that claims more data than the file holds, an object array (which needs pickle), a
zip member larger than allowed: each is refused before anything is allocated for it.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.interop.errors import MalformedContent, UnsupportedContent

NPY = "application/x-npy"
NPZ = "application/x-npz"

NUMERIC_KINDS = "iuf"  # integers and floats; booleans, complex, strings and objects are not
MAX_DIMENSIONS = 64  # NumPy's most
MAX_BYTES = 2**63 - 1  # the most any array can span, were its dimensions of zero size not zero


def loads(data: bytes, what: str = "the .npy body", pointer: str = "") -> NDArray[Any]:
    """The array of an ``.npy`` file (read-only, sharing ``data``'s memory); ``pointer`` says
    where errors about its content point."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unknown .npy format version {version}")
    except Exception as exc:  # numpy's header parser raises many kinds on arbitrary bytes
        raise MalformedContent(f"{what} is not an .npy file ({exc})") from exc
    if dtype.hasobject or dtype.kind not in NUMERIC_KINDS + "U":
        raise UnsupportedContent(
            f"{what} holds an array of dtype {dtype.str!r}; only integer and floating-point "
            "arrays are accepted (object arrays are never unpickled)",
            pointer,
        )
    _check_shape(shape, dtype, what)
    count = math.prod(shape)
    offset = stream.tell()
    if len(data) - offset != count * dtype.itemsize:
        raise MalformedContent(
            f"{what} declares shape {_text(shape)} of {dtype.str}, {count * dtype.itemsize} "
            f"bytes, but holds {len(data) - offset}"
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return array.reshape(shape, order="F" if fortran_order else "C")


def _check_shape(shape: tuple[int, ...], dtype: np.dtype[Any], what: str) -> None:
    """Refuse a declared shape no array can have: negative sizes, more dimensions than NumPy
    allows, more bytes than memory can address (counting the sizes other than zero)."""
    if len(shape) > MAX_DIMENSIONS:
        raise MalformedContent(
            f"{what} declares {len(shape)} dimensions; an array has at most {MAX_DIMENSIONS}"
        )
    if (
        any(type(d) is not int or d < 0 for d in shape)  # (True,) is a tuple of ints to NumPy
        or math.prod(d for d in shape if d) * dtype.itemsize > MAX_BYTES
    ):
        raise MalformedContent(
            f"{what} declares shape {_text(shape)} of {dtype.str}, which no array can have"
        )


def _text(shape: tuple[int, ...]) -> str:
    """``shape`` as a list in a message, cut short when its numbers are long."""
    text = str(list(shape))
    return text if len(text) <= 80 else f"{text[:80]}... ({len(shape)} dimensions)"


def dumps(array: NDArray[Any]) -> bytes:
    """``array`` as an ``.npy`` file."""
    stream = io.BytesIO()
    np.lib.format.write_array(stream, np.asanyarray(array), allow_pickle=False)
    return stream.getvalue()


def loads_npz(data: bytes, max_bytes: int) -> dict[str, NDArray[Any]]:
    """The arrays of an ``.npz`` file by name; at most ``max_bytes`` once decompressed."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise MalformedContent(f"the .npz body is not a zip archive ({exc})") from exc
    with archive:
        members = archive.infolist()
        total = sum(member.file_size for member in members)
        if total > max_bytes:
            raise UnsupportedContent(
                f"the .npz body unpacks to {total} bytes; the limit is {max_bytes}"
            )
        arrays: dict[str, NDArray[Any]] = {}
        for member in members:
            if not member.filename.endswith(".npy"):
                raise MalformedContent(
                    f"the .npz body holds {member.filename!r}, which is not an .npy file"
                )
            name = member.filename.removesuffix(".npy")
            try:
                content = archive.read(member)
            except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
                raise MalformedContent(f"the .npz member {name!r} cannot be read ({exc})") from exc
            arrays[name] = loads(content, f"the .npz member {name!r}", f"/{name}")
    return arrays


def dumps_npz(arrays: Mapping[str, NDArray[Any]]) -> bytes:
    """``arrays`` as an uncompressed ``.npz`` file."""
    stream = io.BytesIO()
    np.savez(stream, allow_pickle=False, **arrays)
    return stream.getvalue()


def numeric(array: NDArray[Any], what: str, pointer: str = "") -> NDArray[Any]:
    """``array`` itself when it holds integers or floats."""
    if array.dtype.kind not in NUMERIC_KINDS:
        raise UnsupportedContent(
            f"{what} must hold integers or floating-point numbers, not dtype {array.dtype.str!r}",
            pointer,
        )
    return array


def text(array: NDArray[Any], what: str, pointer: str = "") -> str:
    """The string held by a 0-d unicode array."""
    if array.dtype.kind != "U" or array.ndim != 0:
        raise UnsupportedContent(f"{what} must be a single string", pointer)
    return str(array[()])
