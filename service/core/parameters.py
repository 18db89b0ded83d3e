"""Parameters of a network and the checks that bring outside numbers into the core."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from service.core.errors import NonFiniteValue, ShapeMismatch
from service.core.network import Network
from service.core.words import counted

FloatArray = NDArray[np.floating]


@dataclass(frozen=True)
class LayerParams:
    """One dense layer: ``net = X @ W + b`` with ``W`` (n_in, n_out) and ``b`` (n_out,).

    Gradients, velocities and moments share this shape, so they use this type too.
    """

    W: FloatArray
    b: FloatArray


Params = tuple[LayerParams, ...]


def check_parameters(network: Network, layers: Sequence[tuple[ArrayLike, ArrayLike]]) -> Params:
    """Validate ``[(W, b), ...]`` against ``network`` and return them as arrays of its dtype.

    Raises :class:`ShapeMismatch` for a wrong number of layers or a wrong shape and
    :class:`NonFiniteValue` for NaN or infinity, each with a pointer such as
    ``/layers/1/weights``.
    """
    if len(layers) != len(network.layers):
        raise ShapeMismatch(
            f"the network has {counted(len(network.layers), 'layer')} but the parameters "
            f"have {len(layers)}",
            "/layers",
        )
    dtype = network.np_dtype
    out: list[LayerParams] = []
    for i, ((W, b), (n_in, n_out)) in enumerate(zip(layers, network.shapes, strict=True)):
        W_arr = _as_array(W, dtype, (n_in, n_out), f"/layers/{i}/weights", f"layer {i} weights")
        b_arr = _as_array(b, dtype, (n_out,), f"/layers/{i}/biases", f"layer {i} biases")
        out.append(LayerParams(W_arr, b_arr))
    return tuple(out)


def check_batch(network: Network, X: ArrayLike, *, name: str = "inputs") -> FloatArray:
    """Validate a batch of inputs: 2-D, at least one row, ``network.inputs`` columns, finite."""
    return check_rows(X, network.inputs, network.np_dtype, name)


def check_targets(network: Network, T: ArrayLike, rows: int) -> FloatArray:
    """Validate targets: one row per input row and ``network.outputs`` columns, finite."""
    T_arr = check_rows(T, network.outputs, network.np_dtype, "targets")
    if T_arr.shape[0] != rows:
        raise ShapeMismatch(
            f"targets has {counted(T_arr.shape[0], 'row')} but inputs has "
            f"{counted(rows, 'row')}; give one target row "
            "per input row",
            "/targets",
        )
    return T_arr


def check_rows(X: ArrayLike, width: int, dtype: np.dtype[np.floating], name: str) -> FloatArray:
    """A 2-D batch of ``width`` columns and at least one row, finite, as ``dtype``.

    Pointers of errors start with ``/{name}``: ``/inputs/3`` for the fourth row of ``inputs``.
    """
    where = f"/{name}"
    if isinstance(X, (list, tuple)):
        # Row by row, so that a ragged batch is reported at its first short or long row.
        for r, row in enumerate(X):
            is_row = isinstance(row, (list, tuple)) or (
                isinstance(row, np.ndarray) and row.ndim == 1
            )
            if not is_row or len(row) != width:
                n = counted(len(row), "value") if is_row else "a scalar"
                raise ShapeMismatch(
                    f"{name} rows must have {counted(width, 'value')} each (the network's "
                    f"{'inputs' if name == 'inputs' else 'outputs'}); {name}[{r}] has {n}",
                    f"{where}/{r}",
                )
    arr = _to_array(X, dtype, name, where)
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ShapeMismatch(
            f"{name} must be a 2-D array with at least one row, like [[x1, x2, ...]]; "
            f"got shape {list(arr.shape)}",
            where,
        )
    if arr.shape[1] != width:
        raise ShapeMismatch(
            f"{name} rows must have {counted(width, 'value')} each, got {arr.shape[1]}",
            f"{where}/0",
        )
    _check_finite(arr, name, where)
    return arr


def _as_array(
    value: ArrayLike, dtype: np.dtype[np.floating], shape: tuple[int, ...], pointer: str, what: str
) -> FloatArray:
    arr = _to_array(value, dtype, what, pointer)
    if arr.shape != shape:
        raise ShapeMismatch(f"{what} must have shape {list(shape)}, got {list(arr.shape)}", pointer)
    _check_finite(arr, what, pointer)
    return arr


def _to_array(
    value: ArrayLike, dtype: np.dtype[np.floating], what: str, pointer: str = ""
) -> FloatArray:
    try:
        if dtype == np.float64 and isinstance(value, list):
            # Python's floats are float64s: nothing can overflow, and NumPy's errstate would
            # cost a small request more than the conversion.
            return np.asarray(value, dtype=dtype)
        with np.errstate(over="ignore"):
            return np.asarray(value, dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise ShapeMismatch(
            f"{what} must be a rectangular array of numbers (rows of equal length)", pointer
        ) from exc


# For a small network the per-call cost of isfinite, not the arithmetic, is what counts: a few
# values are checked one by one, a few thousand in one pass over their concatenation.
_SCALAR_LIMIT = 64
_CONCAT_LIMIT = 4096


def all_finite(arrays: Sequence[FloatArray]) -> bool:
    """Whether every value of every array is finite (no NaN, no infinity)."""
    size = sum(a.size for a in arrays)
    if size <= _SCALAR_LIMIT:
        return all(math.isfinite(x) for a in arrays for x in a.flat)
    if size <= _CONCAT_LIMIT:
        return bool(np.isfinite(np.concatenate(arrays, axis=None)).all())
    return all(bool(np.isfinite(a).all()) for a in arrays)


def _check_finite(arr: FloatArray, what: str, pointer: str) -> None:
    if not np.isfinite(arr).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        where = pointer + "".join(f"/{i}" for i in bad)
        raise NonFiniteValue(
            f"{what} must be finite numbers (no NaN or infinity, and within the range of "
            f"{arr.dtype}); the value at {where or '/'} is not",
            where,
        )
