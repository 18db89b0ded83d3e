"""The store the app uses: every computation reached through it (the learners' operations,
exports) is admitted by its cost first, as those of :mod:`service.operations` are.

Refusing up front is what makes the limits hold: a computation in a worker thread cannot be
stopped once started, so a timeout would answer the client and keep the core busy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from numpy.typing import ArrayLike

from service.core import Network, forward
from service.operations.compute import rows_of
from service.operations.cost import Kind, Limits, Work, admit
from service.registry import Registry
from service.store import ModelStore

T = TypeVar("T")


class BudgetedStore(ModelStore):
    """A model store that admits every computation by its estimated cost before running it."""

    def __init__(
        self,
        registry: Registry,
        *,
        limits: Limits,
        **options: Any,  # the store's own options
    ) -> None:
        super().__init__(registry, **options)
        self.limits = limits

    def check(self, network: Network, fn: Callable[..., Any], data: ArrayLike | None) -> None:
        """ComputeBudgetExceeded or WorkTooLarge if the estimate passes a limit."""
        kind: Kind = "forward" if fn is forward else "gradient"
        admit(network, Work(kind, rows_of(data)), self.limits)

    async def compute(
        self, network: Network, fn: Callable[..., T], *args: Any, data: ArrayLike | None = None
    ) -> T:
        self.check(network, fn, data)
        return await super().compute(network, fn, *args, data=data)
