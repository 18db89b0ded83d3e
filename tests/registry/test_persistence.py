"""Durability and multi-instance tests, run against every backend in PERSISTENT_BACKENDS."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from service.registry import Registry

from .test_contract import SPEC, add_one, assert_bit_exact, bundle

if TYPE_CHECKING:
    from .conftest import RegistryFactory


def test_everything_survives_a_reopen(reopen_registry: RegistryFactory) -> None:
    first = reopen_registry(keep_versions=3)
    created = first.create("xor", SPEC, bundle(1))
    for version in range(1, 5):
        first.commit("xor", bundle(version + 1), version, f"step {version}")
    first.create("other", {"k": [1, 2]}, bundle(9))
    before = (first.get("xor"), first.versions("xor"), first.list(10))
    first.close()

    second = reopen_registry(keep_versions=3)
    assert (second.get("xor"), second.versions("xor"), second.list(10)) == before
    assert second.get("xor").created_at == created.created_at
    assert second.count() == 2
    for version in (3, 4, 5):
        assert_bit_exact(second.snapshot("xor", version).arrays, bundle(version))
    assert_bit_exact(second.snapshot("other").arrays, bundle(9))


def test_commit_is_visible_to_another_instance_at_once(reopen_registry: RegistryFactory) -> None:
    writer, reader = reopen_registry(), reopen_registry()
    writer.create("m", SPEC, bundle(1))
    writer.commit("m", bundle(2), 1, "put")
    assert reader.current_version("m") == 2
    assert_bit_exact(reader.snapshot("m").arrays, bundle(2))


def test_two_instances_lose_no_update(reopen_registry: RegistryFactory) -> None:
    # Two instances on one storage stand in for two server processes.
    instances = [reopen_registry(), reopen_registry()]
    instances[0].create("counter", SPEC, {"w": np.zeros(3)})
    threads_per_instance, rounds = 4, 10
    start = threading.Barrier(2 * threads_per_instance)

    def worker(registry: Registry) -> None:
        start.wait()
        for _ in range(rounds):
            add_one(registry)

    with ThreadPoolExecutor(2 * threads_per_instance) as pool:
        futures = [
            pool.submit(worker, registry)
            for registry in instances
            for _ in range(threads_per_instance)
        ]
        for future in futures:
            future.result()
    total = 2 * threads_per_instance * rounds
    for registry in instances:
        snap = registry.snapshot("counter")
        assert snap.version == total + 1
        assert snap.arrays["w"].tolist() == [float(total)] * 3
