"""The computations of the service, transport-free: forward, gradient, train-step and the
forward of V2 inference, on a stored model or on a network sent inline. Each is admitted by
its cost (:mod:`service.operations.cost`) before any arithmetic, then runs inline when small,
in a worker when large, and over large batches in blocks of rows.

Every transport reaches the computations here: the routes, the fast lane, V2 inference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from service.core import (
    SGD,
    FloatArray,
    GradientResult,
    Network,
    Optimizer,
    OptimizerState,
    Params,
    Trace,
    forward,
    forward_outputs,
    gradient,
    mean_gradient,
    step,
)
from service.operations.cost import Cost, Limits, Work, admit
from service.store import LoadedModel, ModelStore, StepOutcome

T = TypeVar("T")


def rows_of(data: ArrayLike | None) -> int:
    """The rows of a batch (a nested list or an array); 1 for anything else."""
    if data is None:
        return 1
    if isinstance(data, list | tuple):
        return max(len(data), 1)
    shape = np.shape(data)
    return int(shape[0]) if len(shape) >= 2 else 1


class Operations:
    """The computations, each admitted by its cost and run where its size says."""

    def __init__(self, store: ModelStore, limits: Limits) -> None:
        self.store = store
        self.limits = limits

    def admit(self, network: Network, work: Work) -> Cost:
        """The cost of ``work``, or the refusal that says which limit it passes and what to
        change (:class:`ComputeBudgetExceeded`, :class:`WorkTooLarge`)."""
        return admit(network, work, self.limits)

    async def run(self, network: Network, work: Work, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, a computation of ``work`` on ``network``, once admitted."""
        cost = self.admit(network, work)
        return await self.store.execute(cost.multiply_adds, fn, *args)

    async def outputs(
        self, network: Network, params: Params, X: ArrayLike, *, binary: bool = False
    ) -> FloatArray:
        """The outputs of a forward pass, rows x outputs, the rows in blocks when many."""
        work = Work("forward", rows_of(X), outputs=True, binary=binary)
        cost = self.admit(network, work)
        return await self.store.execute(
            cost.multiply_adds, forward_outputs, network, params, X, cost.block_rows
        )

    async def trace(
        self, network: Network, params: Params, X: ArrayLike, *, named: bool = False
    ) -> Trace:
        """Every layer's net and out for the batch (answered whole: no blocks)."""
        work = Work("forward", rows_of(X), outputs=True, trace=True, named=named)
        cost = self.admit(network, work)
        return await self.store.execute(cost.multiply_adds, forward, network, params, X)

    async def gradient(
        self,
        network: Network,
        params: Params,
        X: ArrayLike,
        T: ArrayLike,
        *,
        deltas: bool = False,
        trace: bool = False,
        named: bool = False,
        binary: bool = False,
    ) -> GradientResult:
        """The mean loss and its gradient; with ``deltas`` or ``trace`` those of every row
        (the batch whole), else accumulated over blocks of rows (``trace`` and ``deltas`` of
        the result are then empty)."""
        work = Work(
            "gradient",
            rows_of(X),
            trace=trace,
            deltas=deltas,
            parameters=True,
            named=named,
            binary=binary,
        )
        cost = self.admit(network, work)
        if not work.blocked:
            return await self.store.execute(cost.multiply_adds, gradient, network, params, X, T)
        loss, grads = await self.store.execute(
            cost.multiply_adds, mean_gradient, network, params, X, T, cost.block_rows
        )
        return GradientResult(loss, grads, (), ())

    async def step(
        self,
        network: Network,
        params: Params,
        X: ArrayLike,
        T: ArrayLike,
        optimizer: Optimizer,
        state: OptimizerState,
    ) -> tuple[float, Params, OptimizerState]:
        """One update of parameters sent inline: the loss before it, the new parameters and
        optimizer state (all answered)."""
        slots = _slots(optimizer)
        work = Work("train-step", rows_of(X), parameters=True, slots=slots)
        cost = self.admit(network, work)

        def update() -> tuple[float, Params, OptimizerState]:
            loss, grads = mean_gradient(network, params, X, T, cost.block_rows)
            return (loss, *step(optimizer, params, grads, state))

        return await self.store.execute(cost.multiply_adds, update)

    async def train_step(
        self,
        name: str,
        X: ArrayLike,
        T: ArrayLike,
        learning_rate: float | None,
        expected_version: int | None,
    ) -> StepOutcome:
        """One update of a stored model with its optimizer, committed as a new version."""
        rows = rows_of(X)

        def plan(model: LoadedModel) -> int:
            work = Work("train-step", rows, slots=_slots(model.optimizer))
            return self.admit(model.network, work).block_rows

        return await self.store.train_step(name, X, T, learning_rate, expected_version, plan=plan)


def _slots(optimizer: Optimizer) -> int:
    """How many arrays of the parameters' size the optimizer keeps (velocity; Adam's moments)."""
    if isinstance(optimizer, SGD):
        return 1 if optimizer.momentum else 0
    return 2
