"""A model's loss at each of its kept versions, for the history plot."""

from __future__ import annotations

from numpy.typing import ArrayLike

from service.learn.history import VersionLoss
from service.registry import VersionNotFound
from service.store import ModelStore


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
