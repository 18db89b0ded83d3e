"""The training loop alone: a run resumed from any saved step equals the uninterrupted run, bit
for bit; the shuffle follows the documented draws; the runner's threads yield the CPU."""

from __future__ import annotations

import json
import os
import sys
import threading

import numpy as np
import pytest
from numpy.random import PCG64, Generator

from service import specs
from service.core import SGD, Adam, Layer, Network, OptimizerState, Params, gradient, initialize
from service.jobs.training import Position, Step, TrainConfig, Trainer
from service.registry.codec import decode_arrays, encode_arrays
from service.threads import lower_priority

NET = Network(3, (Layer(5, "tanh"), Layer(2, "softmax")), "cross_entropy")
RNG = np.random.default_rng(1)
X = RNG.standard_normal((23, 3))
T = np.eye(2)[RNG.integers(0, 2, 23)]


def run(
    trainer: Trainer,
    position: Position | None = None,
    params: Params | None = None,
    state: OptimizerState | None = None,
) -> list[Step]:
    """Every step from `position` (the start: the initial parameters, a fresh state)."""
    return list(
        trainer.run(
            params or initialize(NET, "xavier_uniform", 3),
            state or OptimizerState(),
            position or trainer.start(),
        )
    )


@pytest.mark.parametrize("optimizer", [SGD(0.1, momentum=0.9), Adam(0.01)])
def test_resuming_from_any_saved_step_gives_the_same_parameters(
    optimizer: SGD | Adam,
) -> None:
    config = TrainConfig(
        epochs=4, batch_size=5, optimizer=optimizer, seed=7, validation_split=0.2, patience=10
    )
    trainer = Trainer(NET, X, T, config)
    straight = run(trainer)
    final = encode_arrays(specs.pack(straight[-1].params, straight[-1].state))
    for saved in straight[:-1]:
        # What a checkpoint stores: the bundle through the codec, the position through JSON.
        arrays = decode_arrays(encode_arrays(specs.pack(saved.params, saved.state)))
        params, state = specs.unpack(NET, arrays)
        position = Position.from_json(json.loads(json.dumps(saved.position.to_json())))
        rest = run(Trainer(NET, X, T, config), position, params=params, state=state)
        assert encode_arrays(specs.pack(rest[-1].params, rest[-1].state)) == final
        assert rest[-1].position == straight[-1].position


def test_batches_follow_the_documented_draws() -> None:
    config = TrainConfig(epochs=2, batch_size=4, optimizer=SGD(0.1), seed=11, validation_split=0.25)
    trainer = Trainer(NET, X, T, config)
    rng = Generator(PCG64(11))
    order = rng.permutation(23)
    assert trainer.validation is not None
    assert trainer.validation.tolist() == order[:6].tolist()
    assert trainer.train.tolist() == sorted(order[6:].tolist())
    epoch_rng = Generator(PCG64())
    epoch_rng.bit_generator.state = trainer.start().rng
    assert epoch_rng.permutation(17).tolist() == rng.permutation(17).tolist()
    assert (trainer.batches, trainer.total_steps) == (5, 10)  # 17 rows: 4 + 4 + 4 + 4 + 1


def test_an_epoch_reports_the_row_weighted_mean_of_its_batch_losses() -> None:
    trainer = Trainer(NET, X, T, TrainConfig(epochs=1, batch_size=10, optimizer=SGD(0.0), seed=0))
    steps = run(trainer)
    # With a learning rate of 0 every batch sees the initial parameters: the epoch's loss
    # is then the loss of the whole dataset.
    whole = gradient(NET, initialize(NET, "xavier_uniform", 3), X, T).loss
    loss = steps[-1].position.loss
    assert steps[-1].epoch_end and loss is not None and abs(loss - whole) < 1e-15


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_job_threads_run_at_a_lower_priority() -> None:
    seen: list[int] = []

    def worker() -> None:
        lower_priority(5)
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen == [min(19, mine + 5)]


def test_job_threads_can_run_in_the_idle_class() -> None:
    seen: list[int] = []

    def worker() -> None:
        lower_priority(10, idle=True)
        seen.append(os.sched_getscheduler(0))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [os.SCHED_IDLE]
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller's own class is untouched
