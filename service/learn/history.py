"""The loss of a model over its history, drawn.

Until the service keeps a training history (the jobs issue adds ``GET /v1/models/{name}/
history``), the history is that of the model's kept versions: the loss of each on the data given.
Each train-step makes a version, so for a model trained by train-steps this is its training
curve, as far back as the registry keeps versions.
"""

from __future__ import annotations

from dataclasses import dataclass

from numpy.typing import ArrayLike

from service.learn.plot import Point, line_plot
from service.registry import VersionNotFound
from service.store import ModelStore


@dataclass(frozen=True)
class VersionLoss:
    """The mean loss of ``version`` on the data; ``reason`` is what made the version."""

    version: int
    loss: float
    reason: str


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


def history_svg(name: str, losses: list[VersionLoss], rows: int) -> str:
    """The line plot of ``losses`` against the version number."""
    return line_plot(
        [Point(v.version, v.loss, v.reason) for v in losses],
        title=f"{name}: loss by version",
        subtitle=f"mean loss on {rows} sample{'s' if rows != 1 else ''} at each kept version",
        x_label="version",
        y_label="loss",
        integer_x=True,
    )
