"""For learners: a derivative explained, the network and its loss drawn, and the worked example
as a walkthrough, on a stored model."""

from __future__ import annotations

from dataclasses import asdict
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
from service.learn.explained import Explanation
from service.operations import learn as learning
from service.operations.history import HISTORY_POINTS

router = APIRouter(prefix="/v1/models", tags=["learn"], route_class=JSONBodies)

MARKDOWN = "text/markdown"
SVG = "image/svg+xml"


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
    X, T, parameter = body.inputs, body.targets, body.parameter
    if markdown:
        text = await learning.explanation_markdown(
            store, model, name, X, T, parameter, form=body.form
        )
        return MarkdownResponse(text, headers=etag(model.version))

    def encode(e: Explanation) -> bytes:
        return explanation_out(name, model.version, e).model_dump_json(exclude_none=True).encode()

    explained = await learning.explanation(
        store, model, X, T, parameter, form=body.form, encode=encode
    )
    if isinstance(explained, bytes):  # encoded where it was explained, off the event loop
        return Response(explained, media_type="application/json", headers=etag(model.version))
    response.headers.update(etag(model.version))
    return explanation_out(name, model.version, explained)


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
    model = learning.drawable(await store.load(name, version))
    if inputs is None and (targets is not None or gradients):
        raise query_error("inputs", "targets and gradients need inputs")
    if gradients and targets is None:
        raise query_error("targets", "gradients=true needs targets")
    X = None if inputs is None else query_sample(inputs, "inputs")
    T = None if targets is None else query_sample(targets, "targets")
    with from_query():
        drawn = await learning.diagram(store, model, name, X, T, gradients=gradients)
    return SVGResponse(drawn, headers=etag(model.version))


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
        return SVGResponse(await learning.training_plot(store, jobs, name))
    if inputs is None or targets is None:
        missing = "inputs" if inputs is None else "targets"
        raise query_error(missing, "give both inputs and targets, or neither")
    X, T = query_rows(inputs, "inputs"), query_rows(targets, "targets")
    with from_query():
        plotted, latest = await learning.loss_plot(store, name, X, T)
    return SVGResponse(plotted, headers=etag(latest) if latest is not None else {})


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
    model = learning.walkable(await store.load(name, version))
    X, T = query_sample(inputs, "inputs"), query_sample(targets, "targets")
    with from_query():
        text = await learning.walkthrough_markdown(store, model, name, X, T, learning_rate)
    return MarkdownResponse(text, headers=etag(model.version))


# -- translation ------------------------------------------------------------------------------


def explanation_out(name: str, version: int, e: Explanation) -> ExplainResponse:
    """The answer of explain for the explanation ``e`` of model ``name`` at ``version``: its
    fields as they are (the answer's schemas name them alike), its notes in one ``note``; the
    form asked for and the most paths listed (``requested``, ``max_paths``) are the request's,
    not answered."""
    fields = asdict(e)
    notes = fields.pop("notes")
    del fields["requested"], fields["max_paths"]
    return ExplainResponse.model_validate(
        {**fields, "model": name, "version": version, "note": " ".join(notes) or None}
    )
