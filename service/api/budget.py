"""The compute budget of a request: refuse, before any arithmetic, a computation whose
estimated time exceeds ``BACKPROP_MAX_COMPUTE_SECONDS``.

The estimate is the work of dense layers, rows x parameters multiply-adds for a forward pass
and three times that for a gradient or a train-step (forward, backward, and the products for
the weights' gradients), divided by ``BACKPROP_COMPUTE_RATE`` multiply-adds per second (1e9
by default: NumPy on one core does 1e9 to 1e10 on large layers; tiny networks are far below
any budget). Refusing up front is what makes the budget hold: a computation in a worker thread
cannot be stopped once started, so a timeout would answer the client and keep the core busy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from service.core import Network, forward
from service.registry import Registry
from service.store import ModelStore

T = TypeVar("T")

BACKWARD_FACTOR = 3


class ComputeBudgetExceeded(Exception):
    """A computation would take longer than the budget allows."""

    def __init__(self, multiply_adds: int, seconds: float, budget: float, rate: float) -> None:
        super().__init__(
            f"this request needs about {multiply_adds:.3g} multiply-adds, an estimated "
            f"{seconds:.3g} s at {rate:.3g} per second, above the compute budget of {budget:g} s "
            "per request (BACKPROP_MAX_COMPUTE_SECONDS); send fewer rows per request or use a "
            "training job"
        )
        self.multiply_adds = multiply_adds
        self.seconds = seconds
        self.budget = budget


def rows_of(data: ArrayLike | None) -> int:
    """The rows of a batch (a nested list or an array); 1 for anything else."""
    if data is None:
        return 1
    if isinstance(data, list | tuple):
        return max(len(data), 1)
    shape = np.shape(data)
    return int(shape[0]) if len(shape) >= 2 else 1


def multiply_adds(network: Network, fn: Callable[..., Any], data: ArrayLike | None) -> int:
    """The estimated work of ``fn`` on a batch: rows x parameters, x3 unless a forward pass."""
    work = rows_of(data) * network.parameter_count
    return work if fn is forward else BACKWARD_FACTOR * work


class BudgetedStore(ModelStore):
    """A model store that checks every computation against the budget before running it."""

    def __init__(
        self,
        registry: Registry,
        *,
        max_seconds: float,
        rate: float,
        **options: Any,  # the store's own options
    ) -> None:
        super().__init__(registry, **options)
        self.max_seconds = max_seconds
        self.rate = rate

    def check(self, network: Network, fn: Callable[..., Any], data: ArrayLike | None) -> None:
        """ComputeBudgetExceeded if the estimate is above the budget."""
        work = multiply_adds(network, fn, data)
        seconds = work / self.rate
        if seconds > self.max_seconds:
            raise ComputeBudgetExceeded(work, seconds, self.max_seconds, self.rate)

    async def compute(
        self, network: Network, fn: Callable[..., T], *args: Any, data: ArrayLike | None = None
    ) -> T:
        self.check(network, fn, data)
        return await super().compute(network, fn, *args, data=data)
