"""Training data: a matrix of inputs and one of targets, one row per sample.

Three ways in, each checked the same way (2-D, at least one row and one column, as many target
rows as input rows, finite, within the size limit):

- JSON rows ``{"inputs": [[...]], "targets": [[...]]}``, stored as float64;
- CSV (``text/csv``): one sample per line, its first ``input_columns`` values the inputs and the
  rest the targets; a first line that is not all numbers is a header and skipped;
- ``.npz`` (as ``numpy.savez`` writes it) with arrays ``inputs`` and ``targets``. float64 and
  float32 are kept bit for bit (both float32: stored as float32), integers and booleans become
  float64. The size is checked from the ``.npy`` headers before anything is decompressed.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal

import numpy as np
from numpy.typing import NDArray

from service.core.words import counted
from service.jobs.errors import DatasetTooLarge, InvalidDataset

Source = Literal["json", "csv", "npz", "npy"]
FloatArray = NDArray[np.floating[Any]]
NPZ_KEYS = ("inputs", "targets")


@dataclass(frozen=True)
class Dataset:
    """``inputs`` (rows, input_columns) and ``targets`` (rows, target_columns), finite floats."""

    inputs: FloatArray
    targets: FloatArray
    source: Source

    @property
    def rows(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def size_bytes(self) -> int:
        return int(self.inputs.nbytes + self.targets.nbytes)

    def info(self) -> dict[str, Any]:
        """What the registry stores beside the arrays."""
        return {
            "rows": self.rows,
            "input_columns": int(self.inputs.shape[1]),
            "target_columns": int(self.targets.shape[1]),
            "dtype": str(self.inputs.dtype),
            "source": self.source,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        return {"inputs": self.inputs, "targets": self.targets}


def from_rows(
    inputs: Sequence[Sequence[float]],
    targets: Sequence[Sequence[float]],
    max_bytes: int,
    where: str = "",
) -> Dataset:
    """A dataset of JSON rows (already checked to be rectangular and finite by the schema);
    `where` prefixes the pointers of errors (``/dataset`` for data inline in a job)."""
    width = (len(inputs[0]) if inputs else 0) + (len(targets[0]) if targets else 0)
    _check_bytes(max(len(inputs), len(targets)) * width * 8, max_bytes)
    return _checked(_matrix(inputs), _matrix(targets), "json", where)


# Above this many values, rows are converted a block at a time: one np.asarray of millions
# would hold the interpreter lock, and every other thread with it, for as long (60 ms a million).
_BLOCK = 65_536


def _matrix(rows: Sequence[Sequence[float]]) -> FloatArray:
    """``np.asarray(rows, dtype=np.float64)`` of rectangular rows, a block of rows at a time."""
    width = len(rows[0]) if rows else 0
    if len(rows) * width <= _BLOCK:
        return np.asarray(rows, dtype=np.float64)
    matrix = np.empty((len(rows), width), dtype=np.float64)
    step = max(1, _BLOCK // width)
    for start in range(0, len(rows), step):
        matrix[start : start + step] = rows[start : start + step]
    return matrix


def from_arrays(arrays: Mapping[str, np.ndarray], source: Source) -> Dataset:
    """A dataset of stored arrays (checked when they were stored)."""
    return Dataset(arrays["inputs"], arrays["targets"], source)


def from_csv(data: bytes, input_columns: int, max_bytes: int) -> Dataset:
    """Parse CSV text: the first `input_columns` values of each line are inputs, the rest
    targets. Blank lines are skipped; a first line that is not all numbers is a header."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidDataset(f"the CSV is not UTF-8 text: {exc}") from None
    values: list[list[float]] = []
    width: int | None = None
    header_seen = False
    for line, fields in enumerate(_records(text), start=1):
        if not fields or all(not f.strip() for f in fields):
            continue
        row = len(values)
        parsed = [_number(f) for f in fields]
        if None in parsed:
            if row == 0 and not header_seen:
                header_seen = True
                continue
            column = parsed.index(None)
            raise InvalidDataset(
                f"CSV line {line}, column {column + 1}: {_shown(fields[column])} is not a number",
                f"/{row}/{column}",
            )
        numbers: list[float] = [p for p in parsed if p is not None]
        if width is None:
            width = len(numbers)
            if not 0 < input_columns < width:
                raise InvalidDataset(
                    f"input_columns is {input_columns} but the CSV has "
                    f"{counted(width, 'column')}; it must "
                    "leave at least one column of inputs and one of targets",
                    f"/{row}",
                )
        elif len(numbers) != width:
            raise InvalidDataset(
                f"CSV line {line} has {counted(len(numbers), 'value')}; the first data line "
                f"has {width}",
                f"/{row}",
            )
        bad = next((c for c, v in enumerate(numbers) if not math.isfinite(v)), None)
        if bad is not None:
            raise InvalidDataset(
                f"CSV line {line}, column {bad + 1}: {_shown(fields[bad])} is not finite",
                f"/{row}/{bad}",
            )
        values.append(numbers)
        _check_bytes(len(values) * width * 8, max_bytes)
    if not values or width is None:
        raise InvalidDataset("the CSV has no data lines")
    table = np.array(values, dtype=np.float64)
    return _checked(table[:, :input_columns], table[:, input_columns:], "csv", "")


def _records(text: str) -> Iterator[list[str]]:
    """The CSV's records; what the csv module cannot read (a field over its size limit) is an
    invalid dataset."""
    reader = csv.reader(io.StringIO(text))
    try:
        yield from reader
    except csv.Error as exc:
        raise InvalidDataset(f"the CSV cannot be read at line {reader.line_num}: {exc}") from None


def _shown(field: str) -> str:
    """A CSV field as a message repeats it: quoted, cut short when long."""
    field = field.strip()
    return repr(field) if len(field) <= 40 else f"{field[:40]!r}... ({len(field)} characters)"


def from_npz(data: bytes, max_bytes: int) -> Dataset:
    """Read arrays ``inputs`` and ``targets`` of an ``.npz`` file (never unpickling)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InvalidDataset(
            "the upload is not an .npz file (a zip archive of .npy files)"
        ) from None
    arrays: dict[str, np.ndarray] = {}
    total = 0
    with archive:
        names = set(archive.namelist())
        missing = [k for k in NPZ_KEYS if f"{k}.npy" not in names]
        if missing:
            raise InvalidDataset(
                f"the .npz file has no array {' or '.join(map(repr, missing))}; it needs "
                "'inputs' and 'targets'",
                f"/{missing[0]}",
            )
        for key in NPZ_KEYS:
            try:
                with archive.open(f"{key}.npy") as member:
                    shape, dtype = _npy_header(member, key)
                    total += math.prod(shape) * _stored_size(dtype)
                    _check_bytes(total, max_bytes)
                with archive.open(f"{key}.npy") as member:
                    arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
            except (InvalidDataset, DatasetTooLarge):
                raise
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
                raise InvalidDataset(f"array {key!r} of the .npz file: {exc}", f"/{key}") from None
    inputs, targets = arrays["inputs"], arrays["targets"]
    for key in NPZ_KEYS:
        _check_matrix(arrays[key], key, "")  # before conversion, which makes a 0-d array 1-d
    common = np.float32 if inputs.dtype == targets.dtype == np.float32 else np.float64
    inputs, targets = _as_float(inputs, common), _as_float(targets, common)
    _check_bytes(inputs.nbytes + targets.nbytes, max_bytes)  # a float32 beside a float64 doubles
    return _checked(inputs, targets, "npz", "")


def from_npy(data: bytes, input_columns: int, max_bytes: int) -> Dataset:
    """Read one 2-D array of an ``.npy`` file (never unpickling): its first `input_columns`
    columns are the inputs, the rest the targets, as in a CSV upload."""
    member = io.BytesIO(data)
    try:
        shape, dtype = _npy_header(member, "array")
        _check_bytes(math.prod(shape) * _stored_size(dtype), max_bytes)
        member.seek(0)
        table = np.lib.format.read_array(member, allow_pickle=False)
    except (InvalidDataset, DatasetTooLarge):
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidDataset(f"the upload is not a readable .npy file: {exc}") from None
    if table.ndim != 2:
        raise InvalidDataset(
            f"the .npy array must be 2-D (rows x columns); got shape {list(table.shape)}"
        )
    if not 0 < input_columns < table.shape[1]:
        raise InvalidDataset(
            f"input_columns is {input_columns} but the array has "
            f"{counted(table.shape[1], 'column')}; it "
            "must leave at least one column of inputs and one of targets"
        )
    table = _as_float(table, np.float32 if table.dtype == np.float32 else np.float64)
    return _checked(table[:, :input_columns], table[:, input_columns:], "npy", "")


def to_npz(dataset: Dataset) -> bytes:
    """The dataset as an ``.npz`` file that :func:`from_npz` reads back bit for bit."""
    buffer = io.BytesIO()
    np.savez(buffer, inputs=dataset.inputs, targets=dataset.targets)
    return buffer.getvalue()


def _npy_header(member: IO[bytes], key: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    if dtype.kind not in "fiub" or dtype.itemsize > 8:
        raise InvalidDataset(
            f"array {key!r} has dtype {dtype}; only real numbers (float, int, bool) are read",
            f"/{key}",
        )
    # A header may declare any tuple: refuse those no array can have before sizing them.
    if (
        len(shape) > _MAX_DIMENSIONS
        or any(type(d) is not int or d < 0 for d in shape)  # (True,) passes NumPy's own check
        or _span(shape) > _MAX_SPAN
    ):
        text = str(list(shape))
        text = text if len(text) <= 80 else f"{text[:80]}... ({len(shape)} dimensions)"
        raise InvalidDataset(
            f"array {key!r} declares shape {text}, which no array can have", f"/{key}"
        )
    return tuple(shape), dtype


_MAX_DIMENSIONS = 64  # NumPy's most
_MAX_SPAN = 2**63 - 1  # bytes, the most an array can span


def _span(shape: Sequence[int]) -> int:
    """The bytes of float64 an array of ``shape`` would take, were its empty dimensions 1."""
    return math.prod(d for d in shape if d) * 8


def _stored_size(dtype: np.dtype[Any]) -> int:
    """Bytes a value of ``dtype`` takes once stored: float32 stays float32, the rest float64."""
    return 4 if dtype == np.float32 else 8


def _as_float(arr: np.ndarray, dtype: type[np.floating[Any]]) -> FloatArray:
    # A float of the same width is kept as it is (only its byte order fixed): bit-exact.
    return np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("="))


def _number(field: str) -> float | None:
    try:
        return float(field.strip())
    except ValueError:
        return None


def _check_bytes(size: int, limit: int) -> None:
    if size > limit:
        raise DatasetTooLarge(size, limit)


def _check_matrix(arr: np.ndarray, name: str, prefix: str) -> None:
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InvalidDataset(
            f"{name} must be a 2-D array with at least one row and one column; got shape "
            f"{list(arr.shape)}",
            f"{prefix}/{name}",
        )


def _checked(inputs: np.ndarray, targets: np.ndarray, source: Source, prefix: str) -> Dataset:
    for name, arr in (("inputs", inputs), ("targets", targets)):
        _check_matrix(arr, name, prefix)
        finite = np.isfinite(arr)
        if not finite.all():
            r, c = (int(i) for i in np.argwhere(~finite)[0])
            raise InvalidDataset(
                f"{name}[{r}][{c}] is not a finite number", f"{prefix}/{name}/{r}/{c}"
            )
    if inputs.shape[0] != targets.shape[0]:
        raise InvalidDataset(
            f"targets has {counted(targets.shape[0], 'row')} but inputs has "
            f"{counted(inputs.shape[0], 'row')}; give one "
            "target row per input row",
            f"{prefix}/targets",
        )
    return Dataset(inputs, targets, source)
