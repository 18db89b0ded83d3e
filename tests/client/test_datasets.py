"""Datasets through the client: JSON rows, CSV and ``.npz`` uploads stored bit for bit, listed
page by page, read back as JSON and as arrays, deleted."""

from __future__ import annotations

import io

import numpy as np
import pytest

from service.client import AsyncClient, Client, Conflict, InvalidInput, NotFound
from tests.client.conftest import Unique

XOR_INPUTS = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
XOR_TARGETS = [[0.0], [1.0], [1.0], [0.0]]


def test_json_rows_are_stored_and_read_back(client: Client, unique: Unique) -> None:
    name = unique("xor")
    created = client.create_dataset(name, np.array(XOR_INPUTS), XOR_TARGETS)
    assert (created.name, created.rows, created.input_columns, created.target_columns) == (
        name,
        4,
        2,
        1,
    )
    assert (created.source, created.dtype) == ("json", "float64")
    assert client.get_dataset(name) == created
    data = client.get_dataset_data(name)
    assert (data.inputs, data.targets) == (XOR_INPUTS, XOR_TARGETS)
    with pytest.raises(Conflict):
        client.create_dataset(name, XOR_INPUTS, XOR_TARGETS)


def test_csv_upload_with_a_header(client: Client, unique: Unique) -> None:
    name = unique("csv")
    csv = b"x1,x2,y\n0.1,0.2,1\n0.3,0.4,0\n1e-3,5,0.5\n"
    created = client.upload_dataset(name, csv, "csv", input_columns=2)
    assert (created.source, created.rows, created.input_columns) == ("csv", 3, 2)
    data = client.get_dataset_data(name)
    assert data.inputs == [[0.1, 0.2], [0.3, 0.4], [0.001, 5.0]]
    assert data.targets == [[1.0], [0.0], [0.5]]


def test_csv_without_input_columns_names_the_missing_parameter(
    client: Client, unique: Unique
) -> None:
    with pytest.raises(InvalidInput) as info:
        client.upload_dataset(unique("csv"), b"1,2,3\n", "csv")
    assert [e.get("parameter") for e in info.value.errors] == ["input_columns"]


def test_npz_upload_keeps_float32_bit_for_bit(client: Client, unique: Unique) -> None:
    name = unique("npz")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 3)).astype(np.float32)
    T = rng.uniform(size=(50, 2)).astype(np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, inputs=X, targets=T)
    created = client.upload_dataset(name, buffer.getvalue(), "npz")
    assert (created.source, created.dtype, created.rows) == ("npz", "float32", 50)
    inputs, targets = client.get_dataset_arrays(name)
    assert inputs.dtype == np.float32 and inputs.tobytes() == X.tobytes()
    assert targets.dtype == np.float32 and targets.tobytes() == T.tobytes()


def test_npy_upload_splits_its_columns(client: Client, unique: Unique) -> None:
    name = unique("npy")
    table = np.random.default_rng(2).normal(size=(20, 4))
    buffer = io.BytesIO()
    np.save(buffer, table, allow_pickle=False)
    created = client.upload_dataset(name, buffer.getvalue(), "npy", input_columns=3)
    assert (created.source, created.input_columns, created.target_columns) == ("npy", 3, 1)
    inputs, targets = client.get_dataset_arrays(name)
    assert inputs.tobytes() == np.ascontiguousarray(table[:, :3]).tobytes()
    assert targets.tobytes() == np.ascontiguousarray(table[:, 3:]).tobytes()


def test_delete_then_not_found(client: Client, unique: Unique) -> None:
    name = unique("gone")
    client.create_dataset(name, XOR_INPUTS, XOR_TARGETS)
    assert client.delete_dataset(name) is None
    with pytest.raises(NotFound) as info:
        client.get_dataset(name)
    assert info.value.type == "/problems/dataset-not-found"


def test_iter_datasets_walks_every_page(client: Client, unique: Unique) -> None:
    names = [unique(f"ds-{i}") for i in range(3)]
    for name in names:
        client.create_dataset(name, XOR_INPUTS, XOR_TARGETS)
    listed = [d.name for d in client.iter_datasets(page_size=1)]
    assert [n for n in listed if n in names] == names
    assert listed == sorted(listed) and len(listed) == client.list_datasets().total


@pytest.mark.anyio
async def test_async_datasets(aclient: AsyncClient) -> None:
    await aclient.create_dataset("b", XOR_INPUTS, XOR_TARGETS)
    await aclient.upload_dataset("a", b"1,2,3\n4,5,6\n", "csv", input_columns=1)
    assert [d.name async for d in aclient.iter_datasets(page_size=1)] == ["a", "b"]
    assert (await aclient.get_dataset("a")).target_columns == 2
    assert (await aclient.get_dataset_data("a")).targets == [[2.0, 3.0], [5.0, 6.0]]
    inputs, targets = await aclient.get_dataset_arrays("b")
    assert inputs.tolist() == XOR_INPUTS and targets.tolist() == XOR_TARGETS
    await aclient.delete_dataset("b")
    assert (await aclient.list_datasets()).total == 1
