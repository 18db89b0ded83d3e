"""The computations of the service, transport-free: forward, gradient, train-step, input
gradients, the gradient check and the forward of V2 inference, on a stored model or on a
network sent inline. Each is admitted by
its cost (:mod:`service.operations.cost`) before any arithmetic, then placed by that cost
(:meth:`Operations.place`): inline when tiny, in a worker thread when small, in a worker
process (:mod:`service.workers`) when large; over large batches in blocks of rows.

Every transport reaches the computations here: the routes, the fast lane, V2 inference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from service.core import (
    SGD,
    FloatArray,
    GradientCheck,
    GradientResult,
    InputGradient,
    Network,
    Optimizer,
    OptimizerState,
    Params,
    Trace,
    checked_count,
    forward,
    forward_outputs,
    gradient,
    gradient_check,
    input_gradient,
    mean_gradient,
    train_step,
)
from service.operations.cost import Cost, Limits, Work, admit, admit_export
from service.store import INLINE_COMPUTE_LIMIT, LoadedModel, ModelStore, StepOutcome
from service.workers import WorkerPool

T = TypeVar("T")


def rows_of(data: ArrayLike | None) -> int:
    """The rows of a batch (a nested list or an array); 1 for anything else."""
    if data is None:
        return 1
    if isinstance(data, list | tuple):
        return max(len(data), 1)
    shape = np.shape(data)
    return int(shape[0]) if len(shape) >= 2 else 1


# What a computation's answer holds, for its admission here and for the routes that write it.


def forward_work(
    X: ArrayLike, *, trace: bool = False, named: bool = False, binary: bool = False
) -> Work:
    """A forward pass of the batch ``X``: its outputs, and with ``trace`` every layer's."""
    return Work("forward", rows_of(X), outputs=True, trace=trace, named=named, binary=binary)


def gradient_work(
    X: ArrayLike, *, deltas: bool, trace: bool, named: bool = False, binary: bool = False
) -> Work:
    """The loss and gradient of the batch ``X``, with its ``deltas`` and ``trace`` if asked."""
    return Work(
        "gradient",
        rows_of(X),
        trace=trace,
        deltas=deltas,
        parameters=True,
        named=named,
        binary=binary,
    )


def input_gradient_work(X: ArrayLike, *, jacobian: bool, named: bool, binary: bool = False) -> Work:
    """The input gradients of the batch ``X``, with the ``jacobian`` if asked."""
    return Work("input-gradient", rows_of(X), jacobian=jacobian, named=named, binary=binary)


def gradient_check_work(network: Network, X: ArrayLike, sample: int | None) -> Work:
    """The gradient check of the batch ``X``: every parameter, or ``sample`` of them."""
    return Work("gradient-check", rows_of(X), checked=checked_count(network, sample))


def step_work(X: ArrayLike, optimizer: Optimizer, *, answered: bool) -> Work:
    """One update with ``optimizer`` on the batch ``X``; ``answered``: the new parameters and
    optimizer state are the answer (a stateless step), not stored."""
    return Work("train-step", rows_of(X), parameters=answered, slots=_slots(optimizer))


class Operations:
    """The computations, each admitted by its cost and run where its size says."""

    def __init__(
        self,
        store: ModelStore,
        limits: Limits,
        process_seconds: float = 0.0,
    ) -> None:
        self.store = store
        self.limits = limits
        #: The store's worker processes, if it has any.
        self.workers: WorkerPool | None = store.workers
        #: Computations estimated at this many seconds or more run in a worker process.
        self.process_seconds = process_seconds

    def admit(self, network: Network, work: Work) -> Cost:
        """The cost of ``work``, or the refusal that says which limit it passes and what to
        change (:class:`ComputeBudgetExceeded`, :class:`WorkTooLarge`)."""
        return admit(network, work, self.limits)

    def admit_export(self, network: Network, *, binary: bool) -> Cost:
        """The cost of a model file of ``network`` (JSON text, or ``binary``: ``.npz``, ONNX),
        or the refusal that says which limit it passes and which format to ask for."""
        return admit_export(network, binary, self.limits)

    async def run(self, network: Network, work: Work, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, a computation of ``work`` on ``network``, once admitted."""
        cost = self.admit(network, work)
        return await self.place(cost, fn, *args)

    async def place(self, cost: Cost, fn: Callable[..., T], network: Network, *args: Any) -> T:
        """``fn(network, *args)``, admitted at ``cost``, run where its size says: inline below
        a thread hop's cost, in a worker process from ``process_seconds`` (the parameters
        shared rather than copied), in a worker thread in between."""
        if cost.multiply_adds <= INLINE_COMPUTE_LIMIT:
            return fn(network, *args)
        if self.workers is not None and cost.seconds >= self.process_seconds:
            return await self.workers.run(fn, network, *args)
        return await self.store.execute(cost.multiply_adds, fn, network, *args)

    async def outputs(
        self, network: Network, params: Params, X: ArrayLike, *, binary: bool = False
    ) -> FloatArray:
        """The outputs of a forward pass, rows x outputs, the rows in blocks when many."""
        cost = self.admit(network, forward_work(X, binary=binary))
        return await self.place(cost, forward_outputs, network, params, X, cost.block_rows)

    async def trace(
        self, network: Network, params: Params, X: ArrayLike, *, named: bool = False
    ) -> Trace:
        """Every layer's net and out for the batch (answered whole: no blocks)."""
        cost = self.admit(network, forward_work(X, trace=True, named=named))
        return await self.place(cost, forward, network, params, X)

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
        work = gradient_work(X, deltas=deltas, trace=trace, named=named, binary=binary)
        cost = self.admit(network, work)
        if not work.blocked:
            return await self.place(cost, gradient, network, params, X, T)
        loss, grads = await self.place(cost, mean_gradient, network, params, X, T, cost.block_rows)
        return GradientResult(loss, grads, (), ())

    async def input_gradient(
        self,
        network: Network,
        params: Params,
        X: ArrayLike,
        T: ArrayLike,
        *,
        jacobian: bool = False,
        named: bool = False,
        binary: bool = False,
    ) -> InputGradient:
        """The mean loss and its gradient with respect to every input of every row; with
        ``jacobian`` the outputs' too. The rows in blocks when many."""
        work = input_gradient_work(X, jacobian=jacobian, named=named, binary=binary)
        cost = self.admit(network, work)
        return await self.place(
            cost, input_gradient, network, params, X, T, cost.block_rows, jacobian
        )

    async def gradient_check(
        self,
        network: Network,
        params: Params,
        X: ArrayLike,
        T: ArrayLike,
        epsilon: float,
        sample: int | None,
    ) -> GradientCheck:
        """Backpropagation against central differences for every parameter, or ``sample`` of
        them (the batch whole)."""
        cost = self.admit(network, gradient_check_work(network, X, sample))
        return await self.place(cost, gradient_check, network, params, X, T, epsilon, sample)

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
        cost = self.admit(network, step_work(X, optimizer, answered=True))
        return await self.place(
            cost, train_step, network, params, X, T, optimizer, state, cost.block_rows
        )

    async def train_step(
        self,
        name: str,
        X: ArrayLike,
        T: ArrayLike,
        learning_rate: float | None,
        expected_version: int | None,
    ) -> StepOutcome:
        """One update of a stored model with its optimizer, committed as a new version."""

        async def update(model: LoadedModel) -> tuple[float, Params, OptimizerState]:
            cost = self.admit(model.network, step_work(X, model.optimizer, answered=False))
            optimizer = model.optimizer
            if learning_rate is not None:
                optimizer = replace(optimizer, learning_rate=learning_rate)
            return await self.place(
                cost,
                train_step,
                model.network,
                model.params,
                X,
                T,
                optimizer,
                model.state,
                cost.block_rows,
            )

        return await self.store.train_step(name, expected_version, update)


def _slots(optimizer: Optimizer) -> int:
    """How many arrays of the parameters' size the optimizer keeps (velocity; Adam's moments)."""
    if isinstance(optimizer, SGD):
        return 1 if optimizer.momentum else 0
    return 2
