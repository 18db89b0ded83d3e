"""Datasets: training data stored by name, as JSON rows or uploaded as CSV, ``.npz`` or
``.npy``."""

from __future__ import annotations

from typing import Any, Literal

from numpy.typing import NDArray

from service.client.call import (
    NPZ,
    Call,
    Matrix,
    Pages,
    arrays,
    body,
    nothing,
    params,
    path,
    schema,
    upload,
)
from service.client.types import DatasetData, DatasetList, DatasetPublic

UPLOAD_MEDIA = {"csv": "text/csv", "npz": NPZ, "npy": "application/x-npy"}


def create_dataset(name: str, inputs: Matrix, targets: Matrix) -> Call[DatasetPublic]:
    """``POST /v1/datasets``: store ``inputs`` and ``targets`` (one row of targets per row of
    inputs) under ``name``."""
    return Call(
        "POST",
        "/v1/datasets",
        schema(DatasetPublic),
        json=body(name=name, inputs=inputs, targets=targets),
    )


def upload_dataset(
    name: str,
    data: bytes,
    format: Literal["csv", "npz", "npy"],
    *,
    input_columns: int | None = None,
) -> Call[DatasetPublic]:
    """``POST /v1/datasets?name=`` with a file: ``csv`` (the first ``input_columns`` values of
    a line are inputs, the rest targets; a first line that is not all numbers is a header),
    ``npz`` (arrays ``inputs`` and ``targets``, as ``numpy.savez`` writes them) or ``npy`` (one
    2-D array, its first ``input_columns`` columns the inputs). Stored bit for bit."""
    query = params(name=name, input_columns=input_columns)
    return upload("/v1/datasets", schema(DatasetPublic), data, UPLOAD_MEDIA[format], query)


def list_datasets(limit: int | None = None, cursor: str | None = None) -> Call[DatasetList]:
    """``GET /v1/datasets``: one page of datasets ordered by name; pass its ``next_cursor`` as
    ``cursor`` for the next."""
    return Call(
        "GET", "/v1/datasets", schema(DatasetList), params=params(limit=limit, cursor=cursor)
    )


def every_dataset(page_size: int | None = None) -> Pages[DatasetPublic, str]:
    """Every dataset, by name, fetched ``GET /v1/datasets`` page by page."""
    return lambda cursor: list_datasets(page_size, cursor)


def get_dataset(name: str) -> Call[DatasetPublic]:
    """``GET /v1/datasets/{name}``: the dataset's size, columns, dtype and digest."""
    return Call("GET", path("/v1/datasets/{}", name), schema(DatasetPublic))


def get_dataset_data(name: str) -> Call[DatasetData]:
    """``GET /v1/datasets/{name}/data``: the rows as stored, as JSON."""
    return Call("GET", path("/v1/datasets/{}/data", name), schema(DatasetData))


def get_dataset_arrays(name: str) -> Call[tuple[NDArray[Any], ...]]:
    """``GET /v1/datasets/{name}/data?format=npz``: ``(inputs, targets)`` as the stored arrays,
    bit for bit (float64, or float32 as uploaded)."""
    return Call(
        "GET",
        path("/v1/datasets/{}/data", name),
        arrays("inputs", "targets"),
        params={"format": "npz"},
    )


def delete_dataset(name: str) -> Call[None]:
    """``DELETE /v1/datasets/{name}``: delete the dataset (:class:`Conflict` while a job
    trains on it)."""
    return Call("DELETE", path("/v1/datasets/{}", name), nothing)
