"""The loss of a model over its history, drawn.

Two histories: the training history that jobs keep (the loss of every epoch, with the version
it committed), and the model's kept versions, each evaluated on data given: every train-step
makes a version, so for a model trained step by step that is its training curve, as far back
as the registry keeps versions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from service.learn.plot import Point, line_plot


@dataclass(frozen=True)
class VersionLoss:
    """The mean loss of ``version`` on the data; ``reason`` is what made the version."""

    version: int
    loss: float
    reason: str


class Epoch(Protocol):
    """One epoch of a job's training (a registry's history entry): its ``data`` has ``loss``."""

    @property
    def job(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def data(self) -> Mapping[str, Any]: ...


def history_svg(name: str, losses: Sequence[VersionLoss], rows: int) -> str:
    """The line plot of ``losses`` against the version number."""
    return line_plot(
        [Point(v.version, v.loss, v.reason) for v in losses],
        title=f"{name}: loss by version",
        subtitle=f"mean loss on {rows} sample{'s' if rows != 1 else ''} at each kept version",
        x_label="version",
        y_label="loss",
        integer_x=True,
    )


def training_svg(name: str, entries: Sequence[Epoch]) -> str:
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
