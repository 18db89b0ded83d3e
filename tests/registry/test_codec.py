"""Tests of the array-bundle and spec codecs."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from service.registry.codec import Encoded, decode_arrays, decode_spec, encode_arrays, encode_spec

DTYPES: list[np.dtype[Any]] = [np.dtype(code) for code in ("<f8", ">f8", "<f4", "<i8")]
arrays_strategy: st.SearchStrategy[NDArray[Any]] = hnp.arrays(
    dtype=st.sampled_from(DTYPES),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
)


@given(st.dictionaries(st.text(max_size=8), arrays_strategy, max_size=4))
def test_round_trip_is_bit_exact(arrays: dict[str, NDArray[Any]]) -> None:
    decoded = decode_arrays(encode_arrays(arrays))
    assert list(decoded) == list(arrays)
    for name, arr in arrays.items():
        # Byte order is normalised to little-endian; values and bits are kept.
        expected = arr.astype(arr.dtype.newbyteorder("<"))
        assert decoded[name].dtype == expected.dtype
        assert decoded[name].shape == arr.shape
        assert decoded[name].tobytes() == expected.tobytes()
        assert not decoded[name].flags.writeable


@pytest.mark.parametrize(
    "bad",
    [
        np.array([True]),
        np.array([1], dtype=np.int32),
        np.array([1.0], dtype=np.float16),
        np.array([1j]),
        np.array([None]),
        np.zeros(1, dtype=[("a", "<f8")]),
        [1.0, 2.0],
    ],
)
def test_unsupported_arrays_are_rejected(bad: Any) -> None:
    with pytest.raises(ValueError):
        encode_arrays({"x": bad})


def test_non_str_name_is_rejected() -> None:
    with pytest.raises(ValueError):
        encode_arrays({1: np.zeros(1)})  # type: ignore[dict-item]


def test_decoding_from_a_mutable_buffer_copies_it() -> None:
    data = bytearray(encode_arrays({"x": np.zeros(2)}))
    arr = decode_arrays(data)  # type: ignore[arg-type]
    data[-8:] = np.ones(1).tobytes()
    assert arr["x"].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("readonly", [False, True])
def test_decoding_from_a_view_of_a_mutable_buffer_copies_it(readonly: bool) -> None:
    data = bytearray(encode_arrays({"x": np.zeros(2)}))
    view = memoryview(data).toreadonly() if readonly else memoryview(data)
    arr = decode_arrays(view)
    data[-8:] = np.ones(1).tobytes()
    assert arr["x"].tolist() == [0.0, 0.0]


def test_an_encoded_view_of_a_mutable_buffer_is_copied() -> None:
    data = bytearray(encode_arrays({"x": np.zeros(2)}))
    encoded = Encoded(memoryview(data))
    data[-8:] = np.ones(1).tobytes()
    assert decode_arrays(encoded.data)["x"].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("protocol", [4, 5])
def test_an_encoded_bundle_pickles_to_the_same_bytes(protocol: int) -> None:
    blob = encode_arrays({"x": np.arange(3.0), "y": np.ones((2, 2), np.float32)})
    buffers: list[pickle.PickleBuffer] = []
    callback = buffers.append if protocol == 5 else None
    pickled = pickle.dumps(Encoded(blob), protocol, buffer_callback=callback)
    assert len(buffers) == (1 if protocol == 5 else 0)  # protocol 5: the bytes out of band
    again = pickle.loads(pickled, buffers=[b.raw() for b in buffers])
    assert bytes(encode_arrays(again)) == blob
    assert not isinstance(again.data, memoryview) or again.data.readonly


def test_corrupt_bundles_raise_value_error() -> None:
    good = encode_arrays({"x": np.arange(4.0), "y": np.zeros((2, 2), dtype=np.float32)})
    for bad in [b"", good[:5], b"X" + good[1:], good[:-1], good + b"\x00", good[:12] + b"{"]:
        with pytest.raises(ValueError, match="corrupt"):
            decode_arrays(bad)


def test_spec_round_trip_and_rejections() -> None:
    spec = {"a": [1, 2.5, None, True], "b": {"c": "ü"}}
    assert decode_spec(encode_spec(spec)) == spec
    for bad in ({"x": float("inf")}, {"x": object()}, ["not", "a", "dict"]):
        with pytest.raises(ValueError):
            encode_spec(bad)  # type: ignore[arg-type]
