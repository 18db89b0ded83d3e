"""The training loop of a job: epochs of shuffled mini-batches, each one optimizer step.

Shuffling is ``numpy.random.Generator(PCG64(seed))``, drawn in a fixed order so that a run is
a function of the seed alone:

1. with a ``validation_split`` s, one permutation of all n rows; its first ``round(s * n)``
   rows (at least 1) are held out for validation, the others are the training rows (in their
   original order);
2. then, at the start of every epoch, a permutation of the training rows, cut into batches of
   ``batch_size`` rows (the last one may be smaller).

A :class:`Position` records everything the loop needs to continue exactly where it was: the
epoch and batch reached, the generator's state at the start of that epoch (from which the
epoch's permutation is drawn again), and the running sums behind the reported losses. Saved
with the parameters and optimizer state of the same moment, it makes a resumed run identical,
bit for bit, to one that was never interrupted.

After every epoch the loop computes the mean loss of the epoch (the mean of the batch losses
weighted by their rows) and, with a validation split, the loss on the validation rows. The
monitored loss (validation if any, else the epoch's) gives ``best_loss``, reached at the end
of epoch ``best_epoch`` (step ``best_step``); with ``patience`` p, training stops early once p
epochs in a row have not improved on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from numpy.random import PCG64, Generator
from numpy.typing import ArrayLike, NDArray

from service.core import Network, Optimizer, OptimizerState, Params, gradient, step
from service.core.errors import ShapeMismatch
from service.core.losses import check_targets_fit_loss
from service.core.parameters import check_batch, check_targets

JSON = dict[str, Any]


@dataclass(frozen=True)
class TrainConfig:
    """What a job asks for. ``optimizer`` carries the job's learning rate."""

    epochs: int
    batch_size: int
    optimizer: Optimizer
    seed: int
    validation_split: float | None = None
    patience: int | None = None


@dataclass(frozen=True)
class Position:
    """How far a run has come; JSON-able with :meth:`to_json` (Python floats round-trip)."""

    rng: JSON  # the shuffle generator's state at the start of the current epoch
    epoch: int = 0  # epochs completed
    batch: int = 0  # batches of the current epoch completed
    step: int = 0  # optimizer steps completed in all
    loss_sum: float = 0.0  # sum over the current epoch's batches of loss * rows
    rows: int = 0  # rows of the current epoch trained on
    loss: float | None = None  # mean loss of the last completed epoch
    validation_loss: float | None = None
    best_loss: float | None = None
    best_epoch: int = 0  # the epoch whose end reached best_loss (0: none yet)
    best_step: int = 0  # the step that ended it
    bad_epochs: int = 0  # completed epochs since the best one
    stopped_early: bool = False

    @property
    def latest_loss(self) -> float | None:
        """The mean loss of the current epoch so far, else of the last completed one."""
        return self.loss_sum / self.rows if self.rows else self.loss

    def to_json(self) -> JSON:
        return asdict(self)

    @classmethod
    def from_json(cls, data: JSON) -> Position:
        return cls(**data)


@dataclass(frozen=True)
class Step:
    """One optimizer step: the position after it, and the parameters and state it made."""

    position: Position
    params: Params
    state: OptimizerState
    epoch_end: bool


class Trainer:
    """Mini-batch training of `network` on ``(X, T)``; a stateless plan, run by :meth:`run`."""

    def __init__(self, network: Network, X: ArrayLike, T: ArrayLike, config: TrainConfig) -> None:
        """Check the data against the network and draw the validation split.

        Raises the core's ShapeMismatch, NonFiniteValue or InvalidTargets with pointers
        ``/inputs/...`` or ``/targets/...``.
        """
        self.network = network
        self.config = config
        self.X = check_batch(network, X)
        self.T = check_targets(network, T, self.X.shape[0])
        check_targets_fit_loss(network, self.T)
        n = self.X.shape[0]
        rng = Generator(PCG64(config.seed))
        self.validation: NDArray[np.intp] | None = None
        self.train: NDArray[np.intp] = np.arange(n)
        if config.validation_split:
            order = rng.permutation(n)
            held = max(1, round(config.validation_split * n))
            if held >= n:
                raise ShapeMismatch(
                    f"validation_split {config.validation_split} of {n} rows leaves no rows to "
                    "train on",
                    "/validation_split",
                )
            self.validation = order[:held]
            self.train = np.sort(order[held:])
        self._start_rng: JSON = dict(rng.bit_generator.state)

    @property
    def batches(self) -> int:
        """Batches (= steps) per epoch."""
        return math.ceil(len(self.train) / self.config.batch_size)

    @property
    def total_steps(self) -> int:
        return self.batches * self.config.epochs

    def start(self) -> Position:
        """The position before the first step."""
        return Position(rng=self._start_rng)

    def run(self, params: Params, state: OptimizerState, position: Position) -> Iterator[Step]:
        """Train from `position` to the last epoch (or an early stop), yielding every step."""
        bs = self.config.batch_size
        while position.epoch < self.config.epochs and not position.stopped_early:
            rng = Generator(PCG64())
            rng.bit_generator.state = position.rng
            order = self.train[rng.permutation(len(self.train))]
            next_epoch_rng: JSON = dict(rng.bit_generator.state)
            for b in range(position.batch, self.batches):
                rows = order[b * bs : (b + 1) * bs]
                result = gradient(self.network, params, self.X[rows], self.T[rows])
                params, state = step(self.config.optimizer, params, result.gradients, state)
                position = replace(
                    position,
                    batch=b + 1,
                    step=position.step + 1,
                    loss_sum=position.loss_sum + result.loss * len(rows),
                    rows=position.rows + len(rows),
                )
                last = b + 1 == self.batches
                if last:
                    position = self._end_epoch(position, params, next_epoch_rng)
                yield Step(position, params, state, last)

    def _end_epoch(self, position: Position, params: Params, next_rng: JSON) -> Position:
        loss = position.loss_sum / position.rows
        validation_loss = None
        if self.validation is not None:
            v = self.validation
            validation_loss = gradient(self.network, params, self.X[v], self.T[v]).loss
        monitored = loss if validation_loss is None else validation_loss
        improved = position.best_loss is None or monitored < position.best_loss
        epoch = position.epoch + 1
        best = (monitored, epoch, position.step) if improved else None
        bad = 0 if improved else position.bad_epochs + 1
        patience = self.config.patience
        return Position(
            rng=next_rng,
            epoch=epoch,
            step=position.step,
            loss=loss,
            validation_loss=validation_loss,
            best_loss=best[0] if best else position.best_loss,
            best_epoch=best[1] if best else position.best_epoch,
            best_step=best[2] if best else position.best_step,
            bad_epochs=bad,
            stopped_early=patience is not None and bad >= patience and epoch < self.config.epochs,
        )
