"""The learners' operations, transport-free: a derivative explained (as its values or as
Markdown), the network drawn, the worked example written, and the loss over the model's history
plotted. Each checks the network against the learners' limits, then runs where its size says:
inline when quicker than a hop to a thread, else in a worker thread or a worker process.

The transports parse the request before and encode the result after; where the work runs is
decided here only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import NewType

from numpy.typing import ArrayLike

from service.core import MAX_PATHS, Network, forward, path_count
from service.core.explain import FormChoice
from service.jobs.store import JobStore
from service.learn import chainrule
from service.learn.diagram import Sample, network_svg
from service.learn.explained import Explanation, explain
from service.learn.history import history_svg, training_svg
from service.learn.limits import check_drawable, check_walkable
from service.learn.walkthrough import walkthrough
from service.operations.history import loss_by_version, training_history
from service.store import LoadedModel, ModelStore

# Drawings, walkthroughs, explanations and plots are Python loops over every node, edge, path
# factor or point: milliseconds for the seed (a drawing 4-7 ms, its walkthrough 8 ms), up to a
# second or more at the limits. They run off the event loop, so that it keeps serving other
# requests meanwhile (a 32-31-1 drawing on the loop held up /healthz for seconds): an
# explanation in a low-priority worker thread, a drawing, a walkthrough or a large plot in a
# worker process (it holds the interpreter lock throughout). Only what takes under a millisecond
# stays inline, where a hop (100-300 µs, and a wait when the workers are busy) would cost
# about as much: an explanation of a network of at most this many parameters and path factors
# (the seed's: 25 and 21, about 0.5 ms), and a plot of at most this many points (0.6 ms, then
# 25 µs a point).
INLINE_EXPLAIN_PARAMETERS = 100
INLINE_EXPLAIN_FACTORS = 64
INLINE_PLOT_POINTS = 16

#: A model whose network is small enough to draw (:func:`drawable`), or to walk through
#: (:func:`walkable`). The check is its own step so that a transport refuses a network too
#: large before it reads the sample, whatever is wrong with the sample.
Drawable = NewType("Drawable", LoadedModel)
Walkable = NewType("Walkable", LoadedModel)

#: A batch of samples as rows of numbers, however the transport carried them.
Rows = Sequence[Sequence[float]]


def drawable(model: LoadedModel) -> Drawable:
    """``model``, once its network is known small enough to draw (else :class:`TooLarge`)."""
    check_drawable(model.network)
    return Drawable(model)


def walkable(model: LoadedModel) -> Walkable:
    """``model``, once its network is known small enough to walk through (else
    :class:`TooLarge`)."""
    check_walkable(model.network)
    return Walkable(model)


async def explanation(
    store: ModelStore,
    model: LoadedModel,
    X: ArrayLike,
    T: ArrayLike,
    parameter: str,
    *,
    form: FormChoice,
    encode: Callable[[Explanation], bytes],
) -> Explanation | bytes:
    """dE/d``parameter`` for the one sample ``(X, T)``, explained: inline when small, and then
    as it is, for the transport to answer as any other; else explained and ``encode``-d, both in
    a worker thread, since validating and serialising a large answer would hold up the event
    loop as long as explaining it."""
    run = partial(explain, model.network, model.params, X, T, parameter, form=form)
    if _small_explanation(model.network):
        return run()
    return await store.offload(lambda: encode(run()))


async def explanation_markdown(
    store: ModelStore,
    model: LoadedModel,
    name: str,
    X: ArrayLike,
    T: ArrayLike,
    parameter: str,
    *,
    form: FormChoice,
) -> str | bytes:
    """:func:`explanation` as the Markdown document with LaTeX, written where it is worked out
    (encoded too when in a worker thread)."""
    write = partial(chainrule.explanation_markdown, model=name, version=model.version)
    explained = await explanation(
        store, model, X, T, parameter, form=form, encode=lambda e: write(e).encode()
    )
    return explained if isinstance(explained, bytes) else write(explained)


def _small_explanation(network: Network) -> bool:
    """Whether explaining any parameter of ``network`` costs less than a hop to a thread: few
    parameters (explain reads them all by name) and few factors on the paths from the first
    layer, the most of any parameter (each path has two factors a later layer and one more)."""
    layers = len(network.layers)
    factors = min(path_count(network, 0), MAX_PATHS) * (2 * layers + 1)
    return network.parameter_count <= INLINE_EXPLAIN_PARAMETERS and (
        factors <= INLINE_EXPLAIN_FACTORS
    )


async def diagram(
    store: ModelStore,
    model: Drawable,
    name: str,
    X: Rows | None = None,
    T: Rows | None = None,
    *,
    gradients: bool = False,
) -> bytes:
    """The SVG drawing of the model, encoded; with the sample ``X`` every node's net and out,
    with ``T`` too the loss, and with ``gradients`` (which needs both) every dE/dw and delta.
    The sample's pass runs where its size says, the drawing off the event loop
    (:func:`_isolated`)."""
    sample: Sample | None = None
    if X is not None:
        if T is None:
            trace = await store.compute(
                model.network, forward, model.network, model.params, X, data=X
            )
            sample = Sample(X[0], trace)
        else:
            r = await store.gradient(model.network, model.params, X, T)
            shown = (r.gradients, r.deltas) if gradients else (None, None)
            sample = Sample(X[0], r.trace, r.loss, *shown)
    title = f"{name}, version {model.version}"
    return await _isolated(store, partial(network_svg, model.network, model.params, title, sample))


async def walkthrough_markdown(
    store: ModelStore,
    model: Walkable,
    name: str,
    X: ArrayLike,
    T: ArrayLike,
    learning_rate: float | None = None,
) -> bytes:
    """The worked example's Markdown for the one sample ``(X, T)`` and one plain SGD step at
    ``learning_rate`` (the model optimizer's by default), written and encoded off the event
    loop (:func:`_isolated`)."""
    rate = learning_rate if learning_rate is not None else model.optimizer.learning_rate
    written = partial(
        walkthrough, model.network, model.params, X, T, rate, model=name, version=model.version
    )
    return await _isolated(store, written)


async def training_plot(store: ModelStore, jobs: JobStore, name: str) -> bytes | str:
    """The SVG plot of the mean training loss of every epoch that jobs kept (the latest
    ``HISTORY_POINTS``), oldest first."""
    entries = await training_history(jobs, name)
    return await _plotted(store, len(entries), partial(training_svg, name, entries))


async def loss_plot(
    store: ModelStore, name: str, X: Rows, T: Rows
) -> tuple[bytes | str, int | None]:
    """The SVG plot of the mean loss on the samples ``(X, T)`` of every kept version of the
    model, and the latest version plotted (``None`` when none is left), for its ETag."""
    losses = await loss_by_version(store, name, X, T)
    latest = losses[-1].version if losses else None
    plot = partial(history_svg, name, losses, len(X))
    return await _plotted(store, len(losses), plot), latest


async def _isolated(store: ModelStore, render: Callable[[], str]) -> bytes:
    """``render()`` (a partial of a drawing or writing function) encoded, both in a worker
    process (:meth:`ModelStore.isolate`)."""
    return await store.isolate(_encoded, render)


def _encoded(render: Callable[[], str]) -> bytes:
    return render().encode()


async def _plotted(store: ModelStore, points: int, plot: Callable[[], str]) -> bytes | str:
    """``plot()`` of ``points`` points: inline when it is quick, else in a worker process."""
    return plot() if points <= INLINE_PLOT_POINTS else await _isolated(store, plot)
