"""The loss of a model over its history, drawn.

Two histories: the training history that jobs keep (the loss of every epoch, with the version
it committed), and the model's kept versions, each evaluated on data given: every train-step
makes a version, so for a model trained step by step that is its training curve, as far back
as the registry keeps versions.
"""

from __future__ import annotations

from dataclasses import dataclass

from numpy.typing import ArrayLike

from service.learn.plot import Point, line_plot
from service.registry import HistoryEntry, VersionNotFound
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


def training_svg(name: str, entries: list[HistoryEntry]) -> str:
    """The line plot of the training loss of every epoch that jobs trained, oldest first."""
    points = [
        Point(i, float(e.data["loss"]), f"job {e.job}, version {e.version}")
        for i, e in enumerate(entries, start=1)
        if isinstance(e.data.get("loss"), (int, float))
    ]
    jobs = len({e.job for e in entries})
    return line_plot(
        points,
        title=f"{name}: training loss by epoch",
        subtitle=f"mean training loss of each epoch, {len(points)} epochs of {jobs} "
        f"job{'s' if jobs != 1 else ''}",
        x_label="epoch",
        y_label="loss",
        integer_x=True,
    )
