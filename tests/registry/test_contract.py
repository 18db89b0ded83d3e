"""The registry contract, run against every backend in conftest.BACKENDS."""

from __future__ import annotations

import mmap
import pickle
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from numpy.typing import NDArray

from service.registry import (
    Encoded,
    ModelExists,
    ModelNotFound,
    Registry,
    RegistryUnavailable,
    VersionConflict,
    VersionNotFound,
)
from service.registry.codec import encode_arrays

if TYPE_CHECKING:
    from .conftest import RegistryFactory

SPEC: dict[str, Any] = {
    "network": {"layers": [2, 3, 1], "activations": ["tanh", "sigmoid"]},
    "optimizer": {"kind": "sgd", "lr": 0.1},
    "description": "xor — ünïcode",
    "tags": ["demo"],
}
SPECIAL = [0.1, -0.0, 0.0, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 1 / 3]
# Smallest subnormal and largest finite float32.
SPECIAL32 = [0.1, -0.0, 0.0, 1e-45, 3.4028235e38, -3.4028235e38, 1 / 3]


def bundle(seed: int = 0) -> dict[str, NDArray[Any]]:
    rng = np.random.default_rng(seed)
    return {
        "W0": rng.standard_normal((3, 2)),
        "b0": np.array(SPECIAL, dtype=np.float64),
        "W1": rng.standard_normal((1, 3)).astype(np.float32),
        "b1": np.array(SPECIAL32, dtype=np.float32),
        "step": np.array(7, dtype=np.int64),
    }


def add_one(registry: Registry, name: str = "counter") -> int:
    """Add 1 to the model's array ``w`` as a train-step would: read, commit on the version read,
    and on a version conflict read again. Returns the number of conflicts met."""
    conflicts = 0
    while True:
        snap = registry.snapshot(name)
        try:
            registry.commit(name, {"w": snap.arrays["w"] + 1.0}, snap.version, "train-step")
            return conflicts
        except VersionConflict:
            conflicts += 1


def assert_bit_exact(actual: dict[str, NDArray[Any]], expected: dict[str, NDArray[Any]]) -> None:
    assert list(actual) == list(expected)
    for name, arr in expected.items():
        assert actual[name].dtype == arr.dtype, name
        assert actual[name].shape == arr.shape, name
        assert actual[name].tobytes() == arr.tobytes(), name


def test_create_then_get(registry: Registry) -> None:
    record = registry.create("xor", SPEC, bundle())
    assert (record.name, record.version, record.spec) == ("xor", 1, SPEC)
    assert record.created_at.utcoffset() == timedelta(0)
    assert record.updated_at == record.created_at
    assert registry.get("xor") == record
    assert registry.current_version("xor") == 1
    assert [(v.version, v.reason) for v in registry.versions("xor")] == [(1, "create")]


def test_create_with_taken_name_raises_model_exists(registry: Registry) -> None:
    registry.create("xor", SPEC, bundle(1))
    with pytest.raises(ModelExists) as info:
        registry.create("xor", {"other": True}, bundle(2))
    assert info.value.name == "xor"
    assert registry.get("xor").spec == SPEC
    assert_bit_exact(registry.snapshot("xor").arrays, bundle(1))


def test_create_reason_is_recorded(registry: Registry) -> None:
    registry.create("copy", SPEC, bundle(), reason="import")
    assert registry.versions("copy")[0].reason == "import"


def test_unknown_model_raises_model_not_found_everywhere(registry: Registry) -> None:
    registry.create("present", SPEC, bundle())
    calls: list[Callable[[], object]] = [
        lambda: registry.get("absent"),
        lambda: registry.current_version("absent"),
        lambda: registry.snapshot("absent"),
        lambda: registry.snapshot("absent", 1),
        lambda: registry.versions("absent"),
        lambda: registry.commit("absent", bundle(), 1, "put"),
        lambda: registry.delete("absent"),
        lambda: registry.delete("absent", 1),
    ]
    for call in calls:
        with pytest.raises(ModelNotFound) as info:
            call()
        assert info.value.name == "absent"
        assert str(info.value) == "model 'absent' not found"


def test_list_is_ordered_and_paginated_by_name(registry: Registry) -> None:
    for name in ["c", "a", "e", "b", "d"]:
        registry.create(name, {"name": name}, bundle())
    assert registry.count() == 5

    def names(limit: int, after: str | None = None) -> list[str]:
        return [record.name for record in registry.list(limit, after)]

    assert names(10) == ["a", "b", "c", "d", "e"]
    assert names(2) == ["a", "b"]
    assert names(2, after="b") == ["c", "d"]
    assert names(2, after="d") == ["e"]
    assert names(2, after="e") == []
    assert names(2, after="bb") == ["c", "d"]  # `after` need not be an existing name
    assert names(0) == []
    assert registry.list(1, after="a")[0].spec == {"name": "b"}


def test_empty_registry(registry: Registry) -> None:
    assert registry.count() == 0
    assert registry.list(10) == []


def test_delete_removes_model_and_all_versions(registry: Registry) -> None:
    registry.create("xor", SPEC, bundle(1))
    registry.commit("xor", bundle(2), 1, "put")
    registry.create("keep", SPEC, bundle())
    registry.delete("xor", expected_version=2)
    assert registry.count() == 1
    assert [r.name for r in registry.list(10)] == ["keep"]
    with pytest.raises(ModelNotFound):
        registry.get("xor")
    # The name is free again and its history starts over.
    registry.create("xor", SPEC, bundle(3))
    assert [v.version for v in registry.versions("xor")] == [1]
    assert_bit_exact(registry.snapshot("xor").arrays, bundle(3))


def test_delete_without_expected_version(registry: Registry) -> None:
    registry.create("xor", SPEC, bundle())
    registry.delete("xor")
    assert registry.count() == 0


def test_delete_with_stale_version_conflicts_and_keeps_model(registry: Registry) -> None:
    registry.create("xor", SPEC, bundle())
    registry.commit("xor", bundle(1), 1, "train-step")
    with pytest.raises(VersionConflict) as info:
        registry.delete("xor", expected_version=1)
    assert (info.value.name, info.value.expected, info.value.actual) == ("xor", 1, 2)
    assert registry.current_version("xor") == 2


@pytest.mark.parametrize(("dtype", "special"), [(np.float64, SPECIAL), (np.float32, SPECIAL32)])
def test_arrays_round_trip_bit_exact(
    registry: Registry, dtype: type[np.floating[Any]], special: list[float]
) -> None:
    rng = np.random.default_rng(42)
    arrays = {
        "special": np.array(special, dtype=dtype),
        "random": rng.standard_normal((17, 5)).astype(dtype),
        "column": rng.standard_normal((4, 1)).astype(dtype),
        "empty": np.zeros((0, 3), dtype=dtype),
        "scalar": np.array(2.5, dtype=dtype),
        "transposed": rng.standard_normal((3, 4)).astype(dtype).T,  # not C-contiguous
    }
    registry.create("m", SPEC, arrays)
    snap = registry.snapshot("m")
    assert snap.version == 1
    assert_bit_exact(snap.arrays, arrays)
    assert np.signbit(snap.arrays["special"][1])  # -0.0 kept its sign
    assert snap.arrays["special"][3] != 0  # the subnormal was not flushed to zero


def test_a_bundle_encoded_elsewhere_is_stored_as_given_arrays_are(registry: Registry) -> None:
    """An imported file's bundle comes encoded from a worker process, out of band (a read-only
    view of the shipped file's mapping): stored and read back as if given as arrays."""
    buffers: list[pickle.PickleBuffer] = []
    sent = pickle.dumps(Encoded(encode_arrays(bundle(3))), 5, buffer_callback=buffers.append)
    # As workers._unshipped hands them over: views of a private mapping of the shipped file.
    shipped = [mmap.mmap(-1, b.raw().nbytes) for b in buffers]
    for mapping, b in zip(shipped, buffers, strict=True):
        mapping.write(b.raw())
    received = pickle.loads(sent, buffers=[memoryview(m) for m in shipped])
    assert isinstance(received.data, memoryview) and received.data.readonly
    registry.create("imported", SPEC, received)
    registry.create("given", SPEC, bundle(3))
    imported, given = registry.snapshot("imported").arrays, registry.snapshot("given").arrays
    assert_bit_exact(imported, given)
    assert not any(a.flags.writeable for a in imported.values())


def test_commit_increments_version_and_stores_new_arrays(registry: Registry) -> None:
    created = registry.create("xor", SPEC, bundle(0))
    record = registry.commit("xor", bundle(1), expected_version=1, reason="train-step")
    assert record.version == 2
    assert record.spec == SPEC
    assert record.created_at == created.created_at
    assert record.updated_at >= created.updated_at
    assert registry.get("xor") == record
    snap = registry.snapshot("xor")
    assert (snap.version, snap.model) == (2, record)
    assert_bit_exact(snap.arrays, bundle(1))
    assert_bit_exact(registry.snapshot("xor", 1).arrays, bundle(0))
    infos = registry.versions("xor")
    assert [(v.version, v.reason) for v in infos] == [(2, "train-step"), (1, "create")]
    assert infos[0].created_at == record.updated_at


def test_commit_may_change_array_names_and_shapes(registry: Registry) -> None:
    registry.create("m", SPEC, {"a": np.zeros(3)})
    replacement = {"b": np.ones((2, 2), dtype=np.float32)}
    registry.commit("m", replacement, 1, "put")
    assert_bit_exact(registry.snapshot("m").arrays, replacement)


def test_stale_commit_raises_conflict_and_changes_nothing(registry: Registry) -> None:
    registry.create("xor", SPEC, bundle(0))
    before = registry.commit("xor", bundle(1), 1, "train-step")
    for stale in (1, 3, 0):
        with pytest.raises(VersionConflict) as info:
            registry.commit("xor", bundle(9), stale, "train-step")
        assert (info.value.expected, info.value.actual) == (stale, 2)
    assert registry.get("xor") == before
    assert [v.version for v in registry.versions("xor")] == [2, 1]
    assert_bit_exact(registry.snapshot("xor").arrays, bundle(1))


def test_keep_versions_prunes_oldest(make_registry: RegistryFactory) -> None:
    registry = make_registry(keep_versions=3)
    registry.create("m", SPEC, bundle(1))
    for version in range(1, 6):
        registry.commit("m", bundle(version + 1), version, "train-step")
    assert [v.version for v in registry.versions("m")] == [6, 5, 4]
    for version in (4, 5, 6):
        snap = registry.snapshot("m", version)
        assert snap.version == version
        assert snap.model.version == 6
        assert_bit_exact(snap.arrays, bundle(version))
    with pytest.raises(VersionNotFound) as info:
        registry.snapshot("m", 3)
    assert (info.value.name, info.value.version, info.value.kept) == ("m", 3, (4, 6))
    assert str(info.value) == "version 3 of model 'm' is not kept; kept versions are 4..6"
    for missing in (0, 1, 7):
        with pytest.raises(VersionNotFound):
            registry.snapshot("m", missing)


def test_keep_one_version(make_registry: RegistryFactory) -> None:
    registry = make_registry(keep_versions=1)
    registry.create("m", SPEC, bundle(1))
    registry.commit("m", bundle(2), 1, "put")
    assert [v.version for v in registry.versions("m")] == [2]
    assert_bit_exact(registry.snapshot("m").arrays, bundle(2))


def test_invalid_keep_versions_is_rejected(make_registry: RegistryFactory) -> None:
    with pytest.raises(ValueError):
        make_registry(keep_versions=0)


def test_returned_arrays_are_read_only(registry: Registry) -> None:
    registry.create("m", SPEC, bundle())
    arrays = registry.snapshot("m").arrays
    for arr in arrays.values():
        assert not arr.flags.writeable
    with pytest.raises(ValueError):
        arrays["W0"][0, 0] = 1.0
    with pytest.raises(ValueError):
        arrays["W0"].flags.writeable = True
    assert_bit_exact(registry.snapshot("m").arrays, bundle())


def test_mutating_inputs_after_the_call_does_not_leak_in(registry: Registry) -> None:
    arrays, spec = bundle(), {"network": {"layers": [2, 1]}}
    registry.create("m", spec, arrays)
    arrays["W0"][:] = 99.0
    arrays["extra"] = np.zeros(1)
    spec["network"]["layers"].append(5)
    assert_bit_exact(registry.snapshot("m").arrays, bundle())
    assert registry.get("m").spec == {"network": {"layers": [2, 1]}}

    update = bundle(1)
    registry.commit("m", update, 1, "train-step")
    update["b0"][0] = 42.0
    assert_bit_exact(registry.snapshot("m").arrays, bundle(1))


def test_mutating_returned_spec_does_not_leak_in(registry: Registry) -> None:
    registry.create("m", {"tags": ["a"]}, bundle())
    registry.get("m").spec["tags"].append("b")
    registry.snapshot("m").model.spec["tags"].append("c")
    assert registry.get("m").spec == {"tags": ["a"]}


def test_bad_inputs_are_rejected_without_storing(registry: Registry) -> None:
    with pytest.raises(ValueError):
        registry.create("m", SPEC, {"mask": np.array([True, False])})
    with pytest.raises(ValueError):
        registry.create("m", {"lr": float("nan")}, bundle())
    assert registry.count() == 0
    registry.create("m", SPEC, bundle())
    with pytest.raises(ValueError):
        registry.commit("m", {"w": np.array(["text"])}, 1, "put")
    assert registry.current_version("m") == 1


def test_concurrent_read_modify_commit_loses_no_update(registry: Registry) -> None:
    registry.create("counter", SPEC, {"w": np.zeros(4)})
    threads, rounds = 16, 10
    start = threading.Barrier(threads)

    def worker() -> int:
        start.wait()
        return sum(add_one(registry) for _ in range(rounds))

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(worker) for _ in range(threads)]
        for future in futures:
            future.result()
    snap = registry.snapshot("counter")
    assert snap.version == threads * rounds + 1
    assert snap.arrays["w"].tolist() == [float(threads * rounds)] * 4


def test_concurrent_creates_of_one_name_admit_exactly_one(registry: Registry) -> None:
    threads = 8
    start = threading.Barrier(threads)

    def worker(seed: int) -> bool:
        start.wait()
        try:
            registry.create("race", {"seed": seed}, bundle(seed))
        except ModelExists:
            return False
        return True

    with ThreadPoolExecutor(threads) as pool:
        won = list(pool.map(worker, range(threads)))
    assert won.count(True) == 1
    winner = won.index(True)
    assert registry.get("race").spec == {"seed": winner}
    assert_bit_exact(registry.snapshot("race").arrays, bundle(winner))


def test_a_new_registrys_storage_has_room(registry: Registry) -> None:
    assert registry.storage_state() == "ok"  # tests/reliability/test_disk_full.py fills it


def test_ping_and_close(make_registry: RegistryFactory) -> None:
    registry = make_registry()
    registry.ping()
    registry.close()
    registry.close()  # idempotent
    with pytest.raises(RegistryUnavailable):
        registry.ping()
    with pytest.raises(RegistryUnavailable):
        registry.count()


def test_current_state_tells_a_model_created_again_from_the_one_before(
    registry: Registry,
) -> None:
    first = registry.create("m", SPEC, bundle(1))
    assert registry.current_state("m") == (1, first.created_at)
    registry.commit("m", bundle(2), 1, "step", created=first.created_at)
    assert registry.current_state("m") == (2, first.created_at)
    registry.delete("m")
    with pytest.raises(ModelNotFound):
        registry.current_state("m")
    again = registry.create("m", SPEC, bundle(3))
    assert again.created_at != first.created_at
    assert registry.current_state("m") == (1, again.created_at)
    # A commit computed on the model before is refused, although version 1 is current again.
    with pytest.raises(VersionConflict):
        registry.commit("m", bundle(4), 1, "stale", created=first.created_at)
    assert_bit_exact(registry.snapshot("m").arrays, bundle(3))
    assert registry.commit("m", bundle(5), 1, "fresh", created=again.created_at).version == 2
