"""Operations: the service's computations, transport-free, each admitted by its cost (time,
peak memory, answer size) and run inline, in blocks of rows or in a worker."""

from service.operations.compute import Operations, rows_of
from service.operations.cost import ComputeBudgetExceeded, Cost, Limits, Work, WorkTooLarge, admit

__all__ = [
    "ComputeBudgetExceeded",
    "Cost",
    "Limits",
    "Operations",
    "Work",
    "WorkTooLarge",
    "admit",
    "rows_of",
]
