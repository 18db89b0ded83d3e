"""What the history plots show: a model's loss at each of its kept versions, and the last
entries of its training history."""

from __future__ import annotations

from collections import deque

from numpy.typing import ArrayLike

from service.jobs.store import JobStore
from service.learn.history import VersionLoss
from service.registry import HistoryEntry, VersionNotFound
from service.store import ModelStore

#: The most epochs a training plot shows (the latest), read this many entries a page.
HISTORY_POINTS = 10_000
HISTORY_PAGE = 1_000


async def loss_by_version(
    store: ModelStore, name: str, X: ArrayLike, T: ArrayLike
) -> list[VersionLoss]:
    """The loss on ``(X, T)`` of every kept version of model ``name``, oldest first.

    A version pruned by a concurrent write between listing and loading is left out.
    """
    _, versions = await store.versions(name)
    out: list[VersionLoss] = []
    for info in sorted(versions, key=lambda v: v.version):
        try:
            model = await store.load(name, info.version)
        except VersionNotFound:
            continue
        result = await store.gradient(model.network, model.params, X, T)
        out.append(VersionLoss(info.version, result.loss, info.reason))
    return out


async def training_history(jobs: JobStore, name: str) -> list[HistoryEntry]:
    """The last HISTORY_POINTS entries of the model's training history, oldest first."""
    kept: deque[HistoryEntry] = deque(maxlen=HISTORY_POINTS)
    after: int | None = None
    while True:
        page = await jobs.history(name, HISTORY_PAGE, after)
        kept.extend(page)
        if len(page) < HISTORY_PAGE:
            return list(kept)
        after = page[-1].seq
