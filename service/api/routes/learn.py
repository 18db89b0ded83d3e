"""For learners: a derivative explained, the network and its loss drawn, and the worked example
as a walkthrough, on a stored model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response
from fastapi.openapi.models import Example

from service.api import binary, examples
from service.api.bodies import JSONBodies
from service.api.deps import (
    BatchInputs,
    BatchTargets,
    FormatQuery,
    InputsQuery,
    JobsDep,
    NamePath,
    SampleInputs,
    SampleTargets,
    StoreDep,
    TargetsQuery,
    VersionQuery,
    etag,
    from_query,
    query_error,
    query_rows,
    query_sample,
)
from service.api.problems import problem_responses
from service.api.schemas.learn import (
    ExplainRequest,
    ExplainResponse,
)
from service.core import MAX_PATHS, Network, forward, path_count
from service.learn.chainrule import explanation_markdown
from service.learn.diagram import Sample, network_svg
from service.learn.explained import Explanation, explain
from service.learn.history import history_svg, training_svg
from service.learn.limits import check_drawable, check_walkable
from service.learn.walkthrough import walkthrough
from service.operations.history import HISTORY_POINTS, loss_by_version, training_history
from service.store import ModelStore

router = APIRouter(prefix="/v1/models", tags=["learn"], route_class=JSONBodies)

MARKDOWN = "text/markdown"
SVG = "image/svg+xml"

# Drawings, walkthroughs, explanations and plots are Python loops over every node, edge, path
# factor or point: milliseconds for the seed (a drawing 4-7 ms, its walkthrough 8 ms), up to a
# second or more at the limits. They run in the store's low-priority worker threads, so that the
# event loop keeps serving other requests meanwhile (a 32-31-1 drawing on the loop held up
# /healthz for seconds). Only what takes under a millisecond stays inline, where a hop to a
# thread (100-300 µs, and a wait when the workers are busy) would cost about as much: an
# explanation of a network of at most this many parameters and path factors (the seed's: 25 and
# 21, about 0.5 ms), and a plot of at most this many points (0.6 ms, then 25 µs a point).
INLINE_EXPLAIN_PARAMETERS = 100
INLINE_EXPLAIN_FACTORS = 64
INLINE_PLOT_POINTS = 16


class MarkdownResponse(Response):
    media_type = MARKDOWN


class SVGResponse(Response):
    media_type = SVG


def _text(media_type: str, what: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": what, "content": {media_type: {"schema": {"type": "string"}}}}}


_SEED = {"inputs": examples.SEED_INPUTS, "targets": examples.SEED_TARGETS}
EXPLAIN_EXAMPLES = {
    "worked-example": Example(
        summary="dE/dw7 of the seed: one path, n6 -> n9",
        value={**_SEED, "parameter": "w7"},
    ),
    "three-paths": Example(
        summary="dE/dw1 of the seed: three paths, through n6, n7 and n8",
        value={**_SEED, "parameter": "w1"},
    ),
    "delta-form": Example(
        summary="dE/dw1 of the seed in the delta form",
        value={**_SEED, "parameter": "w1", "form": "delta"},
    ),
}


@router.post(
    "/{name}/explain",
    summary="Explain one derivative by the chain rule",
    description="dE/dparameter for one sample, as the seed blog derives dE/dw16, dE/db7, "
    "dE/dw7 and dE/dw1: for every path from the node the parameter feeds to an output node, "
    "the local derivatives along it (`dE/dout_n9 * dout_n9/dnet_n9 * dnet_n9/dout_n6 * "
    "dout_n6/dnet_n6 * dnet_n6/dw7`), each with its symbol, formula (also in LaTeX) and value, "
    "and their product; the products sum to `gradient` to rounding (the last digit may "
    "differ). Above 256 paths the answer takes the delta form (dE/dw = delta_j * out_i "
    "with delta_j = f'(net_j) * sum_k w_jk * delta_k) and "
    "says so in `note`. Output layers whose loss and activation are differentiated together "
    "(softmax; sigmoid with binary_cross_entropy) get one fused factor dE/dnet_k, as `note` "
    "explains. With `Accept: text/markdown` or `?format=markdown` the answer is a Markdown "
    "document with LaTeX. 422 for more than one row, or an unknown parameter (pointer "
    "`/parameter`).",
    response_model=ExplainResponse,
    response_model_exclude_none=True,
    responses={
        **problem_responses(400, 404, 413, 422),
        **_text(MARKDOWN, "The explanation (as JSON, or as Markdown on request)"),
    },
)
async def explain_model(
    name: NamePath,
    body: Annotated[ExplainRequest, Body(openapi_examples=EXPLAIN_EXAMPLES)],
    store: StoreDep,
    response: Response,
    version: VersionQuery = None,
    format: FormatQuery = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> ExplainResponse | Response:
    model = await store.load(name, version)
    markdown = format == "markdown" or (format is None and binary.prefers(accept or "", MARKDOWN))
    run = partial(
        explain,
        model.network,
        model.params,
        body.inputs,
        body.targets,
        body.parameter,
        form=body.form,
    )
    if not _small_explanation(model.network):
        # Explained, written and serialised in a worker thread: FastAPI would validate and
        # serialise a large answer model on the event loop.
        def render() -> bytes:
            result = run()
            if markdown:
                return explanation_markdown(result, name, model.version).encode()
            answer = explanation_out(name, model.version, result)
            return answer.model_dump_json(exclude_none=True).encode()

        content = await store.offload(render)
        media_type = MARKDOWN if markdown else "application/json"
        return Response(content, media_type=media_type, headers=etag(model.version))
    result = run()
    if markdown:
        text = explanation_markdown(result, name, model.version)
        return MarkdownResponse(text, headers=etag(model.version))
    response.headers.update(etag(model.version))
    return explanation_out(name, model.version, result)


def _small_explanation(network: Network) -> bool:
    """Whether explaining any parameter of ``network`` costs less than a hop to a thread: few
    parameters (explain reads them all by name) and few factors on the paths from the first
    layer, the most of any parameter (each path has two factors a later layer and one more)."""
    layers = len(network.layers)
    factors = min(path_count(network, 0), MAX_PATHS) * (2 * layers + 1)
    return network.parameter_count <= INLINE_EXPLAIN_PARAMETERS and (
        factors <= INLINE_EXPLAIN_FACTORS
    )


@router.get(
    "/{name}/diagram.svg",
    summary="The network drawn as SVG",
    description="Nodes n1..nK by layer, left to right, and an edge per weight labelled w1..wN, "
    "coloured by the sign of the weight and as wide as its size; biases under their nodes. "
    "With `inputs` every node shows its net and out; with `targets` too the title shows the "
    "loss, and with `gradients=true` every edge its dE/dw and every node its delta. Each node "
    'is a `<g class="node" id="n3">`, each edge a `<g class="edge" id="w7">` with the exact '
    "values in its `<title>`. Networks with more than 32 units in a layer or 1024 weights are "
    "too large to draw (422).",
    response_class=SVGResponse,
    responses={**problem_responses(404, 422), **_text(SVG, "The drawing")},
)
async def diagram_svg(
    name: NamePath,
    store: StoreDep,
    inputs: InputsQuery = None,
    targets: TargetsQuery = None,
    gradients: Annotated[
        bool, Query(description="Show dE/dw on every edge and delta on every node.")
    ] = False,
    version: VersionQuery = None,
) -> SVGResponse:
    model = await store.load(name, version)
    check_drawable(model.network)
    sample: Sample | None = None
    if inputs is None and (targets is not None or gradients):
        raise query_error("inputs", "targets and gradients need inputs")
    if gradients and targets is None:
        raise query_error("targets", "gradients=true needs targets")
    if inputs is not None:
        X = query_sample(inputs, "inputs")
        with from_query():
            if targets is None:
                trace = await store.compute(
                    model.network, forward, model.network, model.params, X, data=X
                )
                sample = Sample(X[0], trace)
            else:
                T = query_sample(targets, "targets")
                r = await store.gradient(model.network, model.params, X, T)
                shown = (r.gradients, r.deltas) if gradients else (None, None)
                sample = Sample(X[0], r.trace, r.loss, *shown)
    title = f"{name}, version {model.version}"
    drawn = partial(network_svg, model.network, model.params, title, sample)
    return SVGResponse(await _offloaded(store, drawn), headers=etag(model.version))


@router.get(
    "/{name}/history.svg",
    summary="The loss over the model's history, plotted as SVG",
    description="Without `inputs` and `targets`: the training history that jobs keep (see "
    "`GET /v1/models/{name}/history`), the mean training loss of every epoch, oldest first "
    f"(the last {HISTORY_POINTS}). With them: the mean loss on those samples of every version "
    "the registry still keeps (BACKPROP_KEEP_VERSIONS), against the version number; every "
    "train-step makes a version, so for a model trained step by step this is its training "
    "curve.",
    response_class=SVGResponse,
    responses={**problem_responses(404, 422), **_text(SVG, "The plot")},
)
async def history_plot(
    name: NamePath,
    store: StoreDep,
    jobs: JobsDep,
    inputs: BatchInputs = None,
    targets: BatchTargets = None,
) -> SVGResponse:
    if inputs is None and targets is None:
        entries = await training_history(jobs, name)
        plot = partial(training_svg, name, entries)
        return SVGResponse(await _plotted(store, len(entries), plot))
    if inputs is None or targets is None:
        missing = "inputs" if inputs is None else "targets"
        raise query_error(missing, "give both inputs and targets, or neither")
    X, T = query_rows(inputs, "inputs"), query_rows(targets, "targets")
    with from_query():
        losses = await loss_by_version(store, name, X, T)
    headers = etag(losses[-1].version) if losses else {}
    plot = partial(history_svg, name, losses, len(X))
    return SVGResponse(await _plotted(store, len(losses), plot), headers=headers)


async def _offloaded(store: ModelStore, render: Callable[[], str]) -> bytes:
    """``render()`` (a partial of a drawing or writing function) encoded, both in a worker
    process (:meth:`ModelStore.isolate`)."""
    return await store.isolate(_encoded, render)


def _encoded(render: Callable[[], str]) -> bytes:
    return render().encode()


async def _plotted(store: ModelStore, points: int, plot: Callable[[], str]) -> bytes | str:
    """``plot()`` of ``points`` points: inline when it is quick, else in a worker thread."""
    return plot() if points <= INLINE_PLOT_POINTS else await _offloaded(store, plot)


@router.get(
    "/{name}/walkthrough",
    summary="The worked example, for this model",
    description="A Markdown document (with LaTeX) that follows the seed blog for this model "
    "and one sample: the initial values, every node's net and out with the numbers filled in, "
    "the total error, every delta, every gradient by the chain rule, every update "
    "w_new = w_old - learning_rate * dE/dw, and the error after the step, every number in "
    "full (Python's repr of the float64). The step is plain SGD whatever the model's "
    "optimizer, and it is not stored. `learning_rate` defaults to that of the model's "
    "optimizer. For networks of at most 16 units per layer and 100 parameters (422 above).",
    response_class=MarkdownResponse,
    responses={**problem_responses(404, 422), **_text(MARKDOWN, "The walkthrough")},
)
async def walkthrough_markdown(
    name: NamePath,
    store: StoreDep,
    inputs: SampleInputs,
    targets: SampleTargets,
    learning_rate: Annotated[
        float | None,
        Query(
            gt=0,
            allow_inf_nan=False,
            description="The SGD step's learning rate; the model optimizer's by default.",
            openapi_examples={"worked-example": Example(summary="The seed's", value=0.01)},
        ),
    ] = None,
    version: VersionQuery = None,
) -> MarkdownResponse:
    model = await store.load(name, version)
    check_walkable(model.network)
    X, T = query_sample(inputs, "inputs"), query_sample(targets, "targets")
    rate = learning_rate if learning_rate is not None else model.optimizer.learning_rate
    written = partial(
        walkthrough, model.network, model.params, X, T, rate, model=name, version=model.version
    )
    with from_query():
        text = await _offloaded(store, written)
    return MarkdownResponse(text, headers=etag(model.version))


# -- translation ------------------------------------------------------------------------------


def explanation_out(name: str, version: int, e: Explanation) -> ExplainResponse:
    """The answer of explain for the explanation ``e`` of model ``name`` at ``version``: its
    fields as they are (the answer's schemas name them alike), its notes in one ``note``."""
    fields = asdict(e)
    notes = fields.pop("notes")
    return ExplainResponse.model_validate(
        {**fields, "model": name, "version": version, "note": " ".join(notes) or None}
    )
