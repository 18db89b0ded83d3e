"""The contract of dataset and job storage, run against every backend in conftest.BACKENDS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from numpy.typing import NDArray

from service.registry import (
    Checkpoint,
    DatasetExists,
    DatasetInUse,
    DatasetNotFound,
    JobLost,
    JobNotFound,
    JobStateConflict,
    ModelBusy,
    ModelChanged,
    ModelNotFound,
    NewJob,
    Registry,
)

from .test_contract import SPEC, assert_bit_exact, bundle

if TYPE_CHECKING:
    from .conftest import RegistryFactory

ME, OTHER = "replica-a", "replica-b"
CONFIG: dict[str, Any] = {"epochs": 3, "batch_size": 2, "learning_rate": 0.1, "seed": 7}


def data(seed: int = 0) -> dict[str, NDArray[Any]]:
    rng = np.random.default_rng(seed)
    return {
        "inputs": np.array([[0.1, -0.0], [5e-324, 1.7976931348623157e308], [1 / 3, 2.0]]),
        "targets": rng.standard_normal((3, 1)).astype(np.float32),
    }


def running_job(registry: Registry, job_id: str = "j1", model: str = "m") -> None:
    registry.create(model, SPEC, bundle())
    registry.jobs.create_job(NewJob(job_id, model, None, CONFIG, ME, {"epoch": 0}))
    registry.jobs.start_job(job_id, ME)


# -- datasets ---------------------------------------------------------------------------------


def test_dataset_arrays_come_back_bit_exact(registry: Registry) -> None:
    info = {"rows": 3, "source": "json"}
    record = registry.jobs.create_dataset("d", info, data())
    assert (record.name, record.info) == ("d", info)
    assert record.size_bytes > 0 and len(record.digest) == 64
    assert record.created_at.utcoffset() == timedelta(0)
    got, arrays = registry.jobs.dataset_arrays("d")
    assert got == record == registry.jobs.get_dataset("d")
    assert_bit_exact(arrays, data())
    assert not arrays["inputs"].flags.writeable


def test_dataset_with_taken_name_raises_dataset_exists(registry: Registry) -> None:
    registry.jobs.create_dataset("d", {}, data(1))
    with pytest.raises(DatasetExists):
        registry.jobs.create_dataset("d", {}, data(2))
    assert_bit_exact(registry.jobs.dataset_arrays("d")[1], data(1))


def test_datasets_are_listed_by_name_a_page_at_a_time(registry: Registry) -> None:
    for name in ("b", "a", "c"):
        registry.jobs.create_dataset(name, {}, data())
    assert [d.name for d in registry.jobs.list_datasets(2)] == ["a", "b"]
    assert [d.name for d in registry.jobs.list_datasets(2, after="b")] == ["c"]
    assert registry.jobs.count_datasets() == 3


def test_deleted_dataset_is_gone(registry: Registry) -> None:
    registry.jobs.create_dataset("d", {}, data())
    registry.jobs.delete_dataset("d")
    for call in (
        registry.jobs.get_dataset,
        registry.jobs.dataset_arrays,
        registry.jobs.delete_dataset,
    ):
        with pytest.raises(DatasetNotFound):
            call("d")
    assert registry.jobs.count_datasets() == 0


def test_dataset_of_an_active_job_cannot_be_deleted(registry: Registry) -> None:
    registry.create("m", SPEC, bundle())
    registry.jobs.create_dataset("d", {}, data())
    registry.jobs.create_job(NewJob("j1", "m", "d", CONFIG, ME, {}))
    with pytest.raises(DatasetInUse) as info:
        registry.jobs.delete_dataset("d")
    assert info.value.job == "j1"
    registry.jobs.cancel_job("j1")
    registry.jobs.delete_dataset("d")


# -- jobs: creation and the model lock --------------------------------------------------------


def test_new_job_is_queued_at_the_models_version(registry: Registry) -> None:
    registry.create("m", SPEC, bundle())
    registry.commit("m", bundle(1), 1, "train-step")
    job = registry.jobs.create_job(NewJob("j1", "m", None, CONFIG, ME, {"epoch": 0}, data()))
    assert (job.id, job.model, job.state, job.version, job.owner) == ("j1", "m", "queued", 2, ME)
    assert (job.config, job.progress, job.checkpoint) == (CONFIG, {"epoch": 0}, None)
    assert job.last_event == 1 and job.started_at is None and job.heartbeat_at is not None
    assert registry.jobs.get_job("j1") == job
    assert_bit_exact(registry.jobs.job_data("j1") or {}, data())
    [event] = registry.jobs.job_events("j1")
    assert (event.seq, event.kind, event.data["state"], event.data["version"]) == (
        1,
        "state",
        "queued",
        2,
    )


def test_job_on_a_missing_model_raises_model_not_found(registry: Registry) -> None:
    with pytest.raises(ModelNotFound):
        registry.jobs.create_job(NewJob("j1", "nope", None, CONFIG, ME, {}))


def test_unknown_job_raises_job_not_found(registry: Registry) -> None:
    for call in (
        registry.jobs.get_job,
        registry.jobs.job_data,
        registry.jobs.job_events,
        registry.jobs.cancel_job,
    ):
        with pytest.raises(JobNotFound):
            call("nope")


def test_a_model_has_at_most_one_active_job(registry: Registry) -> None:
    registry.create("m", SPEC, bundle())
    registry.jobs.create_job(NewJob("j1", "m", None, CONFIG, ME, {}))
    with pytest.raises(ModelBusy) as info:
        registry.jobs.create_job(NewJob("j2", "m", None, CONFIG, ME, {}))
    assert info.value.job == "j1"


def test_writes_to_a_model_under_training_raise_model_busy(registry: Registry) -> None:
    running_job(registry)
    with pytest.raises(ModelBusy, match="j1"):
        registry.commit("m", bundle(1), 1, "train-step")
    with pytest.raises(ModelBusy):
        registry.delete("m")
    assert registry.current_version("m") == 1


def test_model_busy_comes_before_a_stale_version(registry: Registry) -> None:
    """A writer that read the model before the job's last checkpoint learns of the job, not of
    a version conflict it would retry forever."""
    running_job(registry)
    registry.jobs.checkpoint("j1", ME, Checkpoint(bundle(5), "x", {}, {}))
    with pytest.raises(ModelBusy):
        registry.commit("m", bundle(1), 1, "train-step")
    with pytest.raises(ModelBusy):
        registry.delete("m", expected_version=1)


def test_active_job_names_the_queued_or_running_job(registry: Registry) -> None:
    registry.create("m", SPEC, bundle())
    assert registry.jobs.active_job("m") is None
    registry.jobs.create_job(NewJob("j1", "m", None, CONFIG, ME, {}))
    assert registry.jobs.active_job("m") == "j1"
    registry.jobs.start_job("j1", ME)
    assert registry.jobs.active_job("m") == "j1"
    registry.jobs.finish_job("j1", ME, "succeeded", {}, None)
    assert registry.jobs.active_job("m") is None


def test_ended_job_frees_the_model(registry: Registry) -> None:
    running_job(registry)
    registry.jobs.finish_job("j1", ME, "succeeded", {"epoch": 3}, None)
    assert registry.commit("m", bundle(1), 1, "train-step").version == 2
    registry.jobs.create_job(NewJob("j2", "m", None, CONFIG, ME, {}))


# -- jobs: state machine ----------------------------------------------------------------------


def test_start_moves_a_queued_job_to_running_for_its_owner_only(registry: Registry) -> None:
    registry.create("m", SPEC, bundle())
    registry.jobs.create_job(NewJob("j1", "m", None, CONFIG, ME, {}))
    with pytest.raises(JobLost):
        registry.jobs.start_job("j1", OTHER)
    job = registry.jobs.start_job("j1", ME)
    assert job.state == "running" and job.started_at is not None
    with pytest.raises(JobStateConflict):
        registry.jobs.start_job("j1", ME)


def test_checkpoint_commits_a_version_with_the_jobs_position(registry: Registry) -> None:
    running_job(registry)
    position = {"epoch": 1, "rng": {"state": 2**127 + 1}}
    job, model = registry.jobs.checkpoint(
        "j1", ME, Checkpoint(bundle(5), "job j1 epoch 1", {"loss": 0.5}, position, {"loss": 0.5})
    )
    assert model.version == 2 == job.version == registry.current_version("m")
    assert (job.checkpoint, job.progress) == (position, {"loss": 0.5})
    assert_bit_exact(registry.snapshot("m").arrays, bundle(5))
    assert registry.versions("m")[0].reason == "job j1 epoch 1"
    [entry] = registry.jobs.history("m", 10)
    assert (entry.seq, entry.job, entry.version, entry.data) == (1, "j1", 2, {"loss": 0.5})
    event = registry.jobs.job_events("j1")[-1]
    assert (event.kind, event.data["version"], event.data["loss"]) == ("progress", 2, 0.5)
    job, _ = registry.jobs.checkpoint(
        "j1", ME, Checkpoint(bundle(6), "job j1 step 9", {}, {"epoch": 1})
    )
    assert job.version == 3 and len(registry.jobs.history("m", 10)) == 1


def test_only_the_owner_of_a_running_job_can_checkpoint_or_finish_it(registry: Registry) -> None:
    running_job(registry)
    with pytest.raises(JobLost):
        registry.jobs.checkpoint("j1", OTHER, Checkpoint(bundle(5), "x", {}, {}))
    with pytest.raises(JobLost):
        registry.jobs.finish_job("j1", OTHER, "succeeded", {}, None)
    registry.jobs.interrupt_jobs(owner=ME)
    with pytest.raises(JobLost):
        registry.jobs.checkpoint("j1", ME, Checkpoint(bundle(5), "x", {}, {}))
    assert registry.current_version("m") == 1


def test_finish_records_the_final_state_and_an_end_event(registry: Registry) -> None:
    running_job(registry)
    job = registry.jobs.finish_job("j1", ME, "failed", {"epoch": 1}, "the loss overflowed")
    assert (job.state, job.error, job.progress) == ("failed", "the loss overflowed", {"epoch": 1})
    assert job.finished_at is not None
    end = registry.jobs.job_events("j1")[-1]
    assert (end.kind, end.data["state"], end.data["error"]) == ("end", "failed", job.error)


def test_cancel_ends_a_queued_job_at_once(registry: Registry) -> None:
    registry.create("m", SPEC, bundle())
    registry.jobs.create_job(NewJob("j1", "m", None, CONFIG, ME, {}))
    job = registry.jobs.cancel_job("j1")
    assert job.state == "cancelled" and job.finished_at is not None
    assert registry.jobs.cancel_job("j1") == job  # cancelling again changes nothing
    with pytest.raises(JobStateConflict):
        registry.jobs.start_job("j1", ME)


def test_cancel_asks_a_running_job_to_stop(registry: Registry) -> None:
    running_job(registry)
    job = registry.jobs.cancel_job("j1")
    assert (job.state, job.cancel_requested) == ("running", True)
    assert registry.jobs.finish_job("j1", ME, "cancelled", {}, None).state == "cancelled"


def test_ended_jobs_cannot_be_cancelled(registry: Registry) -> None:
    running_job(registry)
    registry.jobs.finish_job("j1", ME, "succeeded", {}, None)
    with pytest.raises(JobStateConflict, match="succeeded"):
        registry.jobs.cancel_job("j1")


def test_jobs_with_a_stale_heartbeat_are_interrupted(registry: Registry) -> None:
    running_job(registry)
    assert registry.jobs.interrupt_jobs(stale_before=datetime.now(UTC) - timedelta(hours=1)) == []
    [job] = registry.jobs.interrupt_jobs(stale_before=datetime.now(UTC) + timedelta(seconds=1))
    assert (job.id, job.state) == ("j1", "interrupted")
    assert registry.jobs.job_events("j1")[-1].data["state"] == "interrupted"
    assert registry.commit("m", bundle(1), 1, "train-step").version == 2  # the model is free


def test_interrupting_a_job_asked_to_cancel_cancels_it(registry: Registry) -> None:
    running_job(registry)
    registry.jobs.cancel_job("j1")
    [job] = registry.jobs.interrupt_jobs(owner=ME)
    assert job.state == "cancelled"


def test_an_interrupted_job_reports_the_progress_of_its_last_checkpoint(
    registry: Registry,
) -> None:
    running_job(registry, "j1", "m1")
    registry.jobs.checkpoint("j1", ME, Checkpoint(bundle(5), "x", {"step": 8}, {"step": 8}))
    registry.jobs.heartbeat(ME, {"j1": {"step": 13}})
    assert registry.jobs.get_job("j1").progress == {"step": 13}  # live while it runs
    [job] = registry.jobs.interrupt_jobs(stale_before=datetime.now(UTC) + timedelta(seconds=1))
    assert (job.state, job.progress) == ("interrupted", {"step": 8})
    assert registry.jobs.job_events("j1")[-1].data["step"] == 8
    running_job(registry, "j2", "m2")  # no checkpoint: back at the progress it was created with
    registry.jobs.heartbeat(ME, {"j2": {"step": 3}})
    registry.jobs.cancel_job("j2")
    [job] = registry.jobs.interrupt_jobs(owner=ME)
    assert (job.state, job.progress) == ("cancelled", {"epoch": 0})


def test_its_owner_can_stop_a_job_short_as_interrupted(registry: Registry) -> None:
    running_job(registry)
    job = registry.jobs.finish_job("j1", ME, "interrupted", {"epoch": 0}, "storage full")
    assert (job.state, job.error) == ("interrupted", "storage full")
    assert registry.jobs.resume_job("j1", OTHER).state == "queued"


def test_heartbeat_refreshes_the_owners_active_jobs(registry: Registry) -> None:
    running_job(registry, "j1", "m1")
    running_job(registry, "j2", "m2")
    registry.jobs.finish_job("j2", ME, "succeeded", {}, None)
    before = registry.jobs.get_job("j1").heartbeat_at
    [job] = registry.jobs.heartbeat(ME, {"j1": {"step": 5}})
    assert job.id == "j1" and job.progress == {"step": 5}
    assert job.heartbeat_at is not None and before is not None and job.heartbeat_at >= before
    assert registry.jobs.heartbeat(OTHER, {}) == []
    assert job.last_event == registry.jobs.get_job("j1").last_event == 2  # no event


def test_resume_requeues_an_interrupted_job_for_a_new_owner(registry: Registry) -> None:
    running_job(registry)
    registry.jobs.checkpoint("j1", ME, Checkpoint(bundle(5), "x", {}, {"epoch": 1}))
    registry.jobs.interrupt_jobs(owner=ME)
    job = registry.jobs.resume_job("j1", OTHER)
    assert (job.state, job.owner, job.version, job.finished_at) == ("queued", OTHER, 2, None)
    assert job.checkpoint == {"epoch": 1}
    assert registry.jobs.start_job("j1", OTHER).state == "running"
    kinds = [(e.kind, e.data["state"]) for e in registry.jobs.job_events("j1")]
    assert kinds == [
        ("state", "queued"),
        ("state", "running"),
        ("progress", "running"),
        ("end", "interrupted"),
        ("state", "queued"),
        ("state", "running"),
    ]


def test_resume_refuses_a_model_changed_since_the_checkpoint(registry: Registry) -> None:
    running_job(registry)
    registry.jobs.interrupt_jobs(owner=ME)
    registry.commit("m", bundle(1), 1, "train-step")
    with pytest.raises(ModelChanged) as info:
        registry.jobs.resume_job("j1", ME)
    assert (info.value.expected, info.value.actual) == (1, 2)


def test_resume_refuses_while_another_job_trains_the_model(registry: Registry) -> None:
    running_job(registry)
    registry.jobs.interrupt_jobs(owner=ME)
    registry.jobs.create_job(NewJob("j2", "m", None, CONFIG, ME, {}))
    with pytest.raises(ModelBusy):
        registry.jobs.resume_job("j1", ME)


def test_only_interrupted_or_cancelled_jobs_resume(registry: Registry) -> None:
    running_job(registry)
    with pytest.raises(JobStateConflict, match="running"):
        registry.jobs.resume_job("j1", ME)
    registry.jobs.finish_job("j1", ME, "succeeded", {}, None)
    with pytest.raises(JobStateConflict, match="succeeded"):
        registry.jobs.resume_job("j1", ME)


def test_events_after_a_number_are_the_later_ones(registry: Registry) -> None:
    running_job(registry)
    registry.jobs.finish_job("j1", ME, "succeeded", {}, None)
    assert [e.seq for e in registry.jobs.job_events("j1")] == [1, 2, 3]
    assert [e.seq for e in registry.jobs.job_events("j1", after=2)] == [3]
    assert registry.jobs.job_events("j1", after=3) == []


def test_jobs_are_listed_newest_first(registry: Registry) -> None:
    registry.create("a", SPEC, bundle())
    registry.create("b", SPEC, bundle())
    for job_id, model in (("j1", "a"), ("j2", "b"), ("j3", "a")):
        registry.jobs.create_job(NewJob(job_id, model, None, CONFIG, ME, {}))
        registry.jobs.cancel_job(job_id)
    assert [j.id for j in registry.jobs.list_jobs(2)] == ["j3", "j2"]
    assert [j.id for j in registry.jobs.list_jobs(2, before="j2")] == ["j1"]
    assert [j.id for j in registry.jobs.list_jobs(10, model="a")] == ["j3", "j1"]
    assert (registry.jobs.count_jobs(), registry.jobs.count_jobs("a")) == (3, 2)


def test_jobs_are_counted_by_state(registry: Registry) -> None:
    assert registry.jobs.count_jobs_by_state() == {}
    for job_id, model in (("j1", "a"), ("j2", "b"), ("j3", "c")):
        registry.create(model, SPEC, bundle())
        registry.jobs.create_job(NewJob(job_id, model, None, CONFIG, ME, {}))
    registry.jobs.cancel_job("j1")
    assert registry.jobs.count_jobs_by_state() == {"cancelled": 1, "queued": 2}


def test_history_is_paginated_and_deleted_with_its_model(registry: Registry) -> None:
    running_job(registry)
    for epoch in range(1, 4):
        registry.jobs.checkpoint("j1", ME, Checkpoint(bundle(epoch), "x", {}, {}, {"epoch": epoch}))
    assert [e.data["epoch"] for e in registry.jobs.history("m", 2)] == [1, 2]
    assert [e.seq for e in registry.jobs.history("m", 2, after=2)] == [3]
    registry.jobs.finish_job("j1", ME, "succeeded", {}, None)
    registry.delete("m")
    with pytest.raises(ModelNotFound):
        registry.jobs.history("m", 10)
    registry.create("m", SPEC, bundle())
    assert registry.jobs.history("m", 10) == []
    assert registry.jobs.get_job("j1").state == "succeeded"  # jobs outlive their model


def test_jobs_and_datasets_survive_a_reopen(reopen_registry: RegistryFactory) -> None:
    first = reopen_registry()
    first.jobs.create_dataset("d", {"rows": 3}, data())
    running_job(first)
    first.jobs.checkpoint(
        "j1", ME, Checkpoint(bundle(5), "x", {"loss": 1.0}, {"epoch": 1}, {"epoch": 1})
    )
    first.close()
    second = reopen_registry()
    assert_bit_exact(second.jobs.dataset_arrays("d")[1], data())
    job = second.jobs.get_job("j1")
    assert (job.state, job.version, job.checkpoint) == ("running", 2, {"epoch": 1})
    assert [e.kind for e in second.jobs.job_events("j1")] == ["state", "state", "progress"]
    assert len(second.jobs.history("m", 10)) == 1


def test_a_job_that_cannot_resume_says_so_whatever_became_of_its_model(
    registry: Registry,
) -> None:
    """Every backend checks the job before its model: an ended job is a JobStateConflict
    (409), not a ModelNotFound (404), once its model is gone (jobs outlive their models)."""
    running_job(registry)
    registry.jobs.finish_job("j1", ME, "succeeded", {}, None)
    registry.delete("m")
    assert registry.jobs.get_job("j1").state == "succeeded"
    with pytest.raises(JobStateConflict, match="succeeded"):
        registry.jobs.resume_job("j1", ME)


# -- the state machine, action by action, the same on every backend ----------------------------

_ACTIONS: dict[str, Any] = {
    "start": lambda r, j: r.jobs.start_job(j, ME),
    "start by another": lambda r, j: r.jobs.start_job(j, OTHER),
    "checkpoint": lambda r, j: r.jobs.checkpoint(
        j, ME, Checkpoint(bundle(1), "x", {"e": 1}, {"e": 1})
    ),
    "checkpoint by another": lambda r, j: r.jobs.checkpoint(
        j, OTHER, Checkpoint(bundle(1), "x", {}, {})
    ),
    "finish": lambda r, j: r.jobs.finish_job(j, ME, "succeeded", {}, None),
    "finish by another": lambda r, j: r.jobs.finish_job(j, OTHER, "succeeded", {}, None),
    "cancel": lambda r, j: r.jobs.cancel_job(j),
    "resume": lambda r, j: r.jobs.resume_job(j, OTHER),
}


def _job_in(registry: Registry, state: str, job_id: str, model: str) -> None:
    registry.create(model, SPEC, bundle())
    registry.jobs.create_job(NewJob(job_id, model, None, CONFIG, ME, {"epoch": 0}))
    if state == "cancelled":
        registry.jobs.cancel_job(job_id)
    elif state != "queued":
        registry.jobs.start_job(job_id, ME)
    if state in ("succeeded", "failed"):
        registry.jobs.finish_job(job_id, ME, state, {}, None)  # type: ignore[arg-type]
    elif state == "interrupted":
        registry.jobs.interrupt_jobs(owner=ME)


def _outcome(registry: Registry, action: str, job_id: str) -> str:
    before = registry.jobs.get_job(job_id).last_event
    try:
        _ACTIONS[action](registry, job_id)
    except Exception as exc:
        assert registry.jobs.get_job(job_id).last_event == before  # a refusal changes nothing
        return type(exc).__name__
    job = registry.jobs.get_job(job_id)
    flag = " cancel_requested" if job.cancel_requested else ""
    return f"{job.state}{flag} +{job.last_event - before}"


_C, _L = "JobStateConflict", "JobLost"
# state: start, start by another, checkpoint, checkpoint by another, finish, finish by another,
# cancel, resume
_TABLE: dict[str, tuple[str, ...]] = {
    "queued": ("running +1", _L, _L, _L, _L, _L, "cancelled +1", _C),
    "running": (_C, _C, "running +1", _L, "succeeded +1", _L, "running cancel_requested +0", _C),
    "succeeded": (_C, _C, _L, _L, _L, _L, _C, _C),
    "failed": (_C, _C, _L, _L, _L, _L, _C, _C),
    "cancelled": (_C, _C, _L, _L, _L, _L, "cancelled +0", "queued +1"),
    "interrupted": (_C, _C, _L, _L, _L, _L, "cancelled +1", "queued +1"),
}


def test_every_action_from_every_state_gets_one_answer(registry: Registry) -> None:
    """The transitions are one set of pure functions: every backend moves a job, or refuses
    to, alike (and appends the same events)."""
    got: dict[str, tuple[str, ...]] = {}
    for state in _TABLE:
        outcomes = []
        for number, action in enumerate(_ACTIONS):
            job_id, model = f"{state}-{number}", f"m-{state}-{number}"
            _job_in(registry, state, job_id, model)
            outcomes.append(_outcome(registry, action, job_id))
        got[state] = tuple(outcomes)
    assert got == _TABLE


def test_a_job_whose_model_is_gone_gets_the_same_answers(registry: Registry) -> None:
    """Jobs outlive their models: each backend checks the job before the model, so an ended
    job is refused as it would be with its model, and only a resumable one misses it."""
    got: dict[str, tuple[str, ...]] = {}
    for state in ("succeeded", "failed", "cancelled", "interrupted"):
        outcomes = []
        for number, action in enumerate(_ACTIONS):
            job_id, model = f"{state}-{number}", f"m-{state}-{number}"
            _job_in(registry, state, job_id, model)
            registry.delete(model)
            outcomes.append(_outcome(registry, action, job_id))
        got[state] = tuple(outcomes)
    gone = "ModelNotFound"
    assert got == {
        "succeeded": _TABLE["succeeded"],
        "failed": _TABLE["failed"],
        "cancelled": (*_TABLE["cancelled"][:7], gone),
        "interrupted": (*_TABLE["interrupted"][:7], gone),
    }


def test_a_taken_job_id_is_refused_alike(registry: Registry) -> None:
    running_job(registry)
    registry.jobs.finish_job("j1", ME, "succeeded", {}, None)
    with pytest.raises(ValueError, match="taken"):
        registry.jobs.create_job(NewJob("j1", "m", None, CONFIG, ME, {}))
    assert registry.jobs.get_job("j1").state == "succeeded"
    assert registry.jobs.count_jobs() == 1


def test_a_heartbeat_updates_the_job_on_every_backend(registry: Registry) -> None:
    running_job(registry)
    [job] = registry.jobs.heartbeat(ME, {"j1": {"epoch": 1}})
    assert job.updated_at == job.heartbeat_at
    assert registry.jobs.get_job("j1") == job
