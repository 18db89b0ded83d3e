"""Stateful property tests of the registry: random sequences of create, commit (with current,
stale and future expected versions), train-step-like read-modify-commit, delete, restore (a
commit of an older kept version's arrays) and reads, on every backend in conftest.BACKENDS,
checked step by step against a plain in-test model of what the registry must hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from numpy.typing import NDArray

from service.registry import (
    ModelExists,
    ModelNotFound,
    Registry,
    VersionConflict,
    VersionNotFound,
)

if TYPE_CHECKING:
    from .conftest import RegistryFactory

Bundle = dict[str, NDArray[Any]]

KEEP = 3  # small, so that pruning happens within a few steps
NAMES = ["a", "b", "seed-2.1"]
SPECS: list[dict[str, Any]] = [
    {"network": {"inputs": 2, "layers": [{"units": 1, "activation": "sigmoid"}]}},
    {"network": {"inputs": 1}, "description": "ünïcode — 模型", "tags": ["x", "y"]},
    {"optimizer": {"kind": "adam", "learning_rate": 1e-3}, "init": None, "nested": [[1, 2], {}]},
]

names = st.sampled_from(NAMES)
specs = st.sampled_from(SPECS)
# Any value a dtype can hold, NaN payloads, infinities, -0.0 and subnormals included: the
# registry stores bits, not numbers.
DTYPES: list[np.dtype[Any]] = [np.dtype("<f8"), np.dtype("<f4"), np.dtype("<i8")]
arrays = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
)
bundles = st.dictionaries(
    st.sampled_from(["W0", "b0", "W1", "opt.step", "opt.m.W0"]), arrays, min_size=1, max_size=4
)


@dataclass
class Expected:
    """What the registry must hold for one model."""

    spec: dict[str, Any]
    created_at: datetime
    version: int = 1
    # version -> (reason, arrays), oldest first; at most KEEP entries.
    kept: dict[int, tuple[str, Bundle]] = field(default_factory=dict)

    def append(self, reason: str, arrays: Bundle) -> None:
        self.version += 1
        self.kept[self.version] = (reason, arrays)
        for old in [v for v in self.kept if v <= self.version - KEEP]:
            del self.kept[old]


def copied(arrays: Bundle) -> Bundle:
    return {key: np.array(value, copy=True) for key, value in arrays.items()}


def assert_bit_exact(actual: Bundle, expected: Bundle) -> None:
    assert list(actual) == list(expected)
    for key, value in expected.items():
        assert actual[key].dtype == value.dtype, key
        assert actual[key].shape == value.shape, key
        assert actual[key].tobytes() == value.tobytes(), key


def stepped(arrays: Bundle) -> Bundle:
    """A deterministic update of every array, keeping dtype and shape (a train-step's shape)."""
    out: Bundle = {}
    with np.errstate(all="ignore"):
        for key, value in arrays.items():
            if value.dtype.kind == "f":
                out[key] = np.asarray(value * 0.5 - 1, dtype=value.dtype)
            else:
                out[key] = np.asarray(value ^ 1, dtype=value.dtype)  # no overflow to wrap
    return out


class RegistryMachine(RuleBasedStateMachine):
    """Drives one registry and the model side by side; every answer is compared at once."""

    def __init__(self) -> None:
        super().__init__()
        self.registry = self.open_registry()
        self.models: dict[str, Expected] = {}

    def open_registry(self) -> Registry:
        raise NotImplementedError

    def teardown(self) -> None:
        self.registry.close()

    # -- writes ---------------------------------------------------------------------------------

    @rule(name=names, spec=specs, arrays=bundles)
    def create(self, name: str, spec: dict[str, Any], arrays: Bundle) -> None:
        if name in self.models:
            with pytest.raises(ModelExists):
                self.registry.create(name, spec, arrays)
            return
        record = self.registry.create(name, spec, arrays)
        assert (record.name, record.version, record.spec) == (name, 1, spec)
        assert record.updated_at == record.created_at
        model = Expected(spec, record.created_at)
        model.kept[1] = ("create", copied(arrays))
        self.models[name] = model

    @rule(name=names, arrays=bundles, offset=st.sampled_from([0, 0, 0, -1, 1, -KEEP]))
    def commit(self, name: str, arrays: Bundle, offset: int) -> None:
        model = self.models.get(name)
        if model is None:
            with pytest.raises(ModelNotFound):
                self.registry.commit(name, arrays, 1 + offset, "put")
            return
        expected = model.version + offset
        if offset != 0:
            with pytest.raises(VersionConflict) as info:
                self.registry.commit(name, arrays, expected, "put")
            assert (info.value.expected, info.value.actual) == (expected, model.version)
            return
        record = self.registry.commit(name, arrays, expected, "put")
        model.append("put", copied(arrays))
        self.check_record(name, record.version, record.spec, record.created_at)

    @rule(name=names)
    def train_step(self, name: str) -> None:
        """Read the current version, compute from it, commit with that version expected."""
        model = self.models.get(name)
        if model is None:
            with pytest.raises(ModelNotFound):
                self.registry.snapshot(name)
            return
        snapshot = self.registry.snapshot(name)
        assert snapshot.version == model.version
        new = stepped(snapshot.arrays)
        record = self.registry.commit(name, new, snapshot.version, "train-step")
        model.append("train-step", copied(new))
        assert record.version == snapshot.version + 1

    @rule(name=names, back=st.integers(min_value=0, max_value=KEEP + 1))
    def restore(self, name: str, back: int) -> None:
        """Rollback: commit the arrays of an older version, if it is still kept."""
        model = self.models.get(name)
        if model is None:
            with pytest.raises(ModelNotFound):
                self.registry.snapshot(name, 1)
            return
        target = model.version - back
        if target not in model.kept:
            with pytest.raises(VersionNotFound):
                self.registry.snapshot(name, target)
            return
        old = self.registry.snapshot(name, target)
        assert old.version == target
        assert old.model.version == model.version
        assert_bit_exact(old.arrays, model.kept[target][1])
        reason = f"rollback to {target}"
        self.registry.commit(name, old.arrays, model.version, reason)
        model.append(reason, copied(old.arrays))

    @rule(name=names, offset=st.sampled_from([None, None, 0, -1, 1]))
    def delete(self, name: str, offset: int | None) -> None:
        model = self.models.get(name)
        if model is None:
            with pytest.raises(ModelNotFound):
                self.registry.delete(name, offset)
            return
        expected = None if offset is None else model.version + offset
        if offset:
            with pytest.raises(VersionConflict):
                self.registry.delete(name, expected)
            return
        self.registry.delete(name, expected)
        del self.models[name]

    # -- reads ----------------------------------------------------------------------------------

    @rule(name=names)
    def read(self, name: str) -> None:
        model = self.models.get(name)
        if model is None:
            for call in (
                self.registry.get,
                self.registry.current_version,
                self.registry.snapshot,
                self.registry.versions,
            ):
                with pytest.raises(ModelNotFound):
                    call(name)
            return
        record = self.registry.get(name)
        self.check_record(name, record.version, record.spec, record.created_at)
        assert record.updated_at >= record.created_at
        assert self.registry.current_version(name) == model.version
        snapshot = self.registry.snapshot(name)
        assert snapshot.version == model.version
        assert snapshot.model == record
        assert_bit_exact(snapshot.arrays, model.kept[model.version][1])
        versions = self.registry.versions(name)
        expected = [(v, reason) for v, (reason, _) in reversed(model.kept.items())]
        assert [(v.version, v.reason) for v in versions] == expected

    @rule(name=names, version=st.sampled_from([0, -1, 2**31, 2**63, 2**64 + 1, -(2**70)]))
    def read_a_version_that_never_existed(self, name: str, version: int) -> None:
        model = self.models.get(name)
        if model is None:
            with pytest.raises(ModelNotFound):
                self.registry.snapshot(name, version)
            return
        with pytest.raises(VersionNotFound):
            self.registry.snapshot(name, version)

    @rule(limit=st.integers(min_value=0, max_value=4), after=st.sampled_from([None, "", *NAMES]))
    def list_page(self, limit: int, after: str | None) -> None:
        page = self.registry.list(limit, after)
        expected = sorted(n for n in self.models if after is None or n > after)[:limit]
        assert [r.name for r in page] == expected
        for record in page:
            self.check_record(record.name, record.version, record.spec, record.created_at)

    @invariant()
    def count_matches(self) -> None:
        assert self.registry.count() == len(self.models)

    def check_record(
        self, name: str, version: int, spec: dict[str, Any], created_at: datetime
    ) -> None:
        model = self.models[name]
        assert (version, spec, created_at) == (model.version, model.spec, model.created_at)


def test_registry_matches_a_model_under_random_operation_sequences(
    make_registry: RegistryFactory,
) -> None:
    class Machine(RegistryMachine):
        def open_registry(self) -> Registry:
            return make_registry(keep_versions=KEEP)

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
