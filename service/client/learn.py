"""For learners: one derivative explained by the chain rule, the worked example as a
walkthrough, the network and its loss drawn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

import httpx

from service.client.call import (
    JSON,
    Call,
    Matrix,
    Vector,
    body,
    numbers,
    params,
    path,
    rows,
    schema,
    text,
)
from service.client.types import ExplainResponse

Form = Literal["auto", "paths", "delta"]
T = TypeVar("T")


def explain(
    name: str,
    inputs: Matrix,
    targets: Matrix,
    parameter: str,
    *,
    form: Form = "auto",
    version: int | None = None,
) -> Call[ExplainResponse]:
    """``POST /v1/models/{name}/explain``: dE/d``parameter`` (``"w1"``, ``"b7"``) for one
    sample (a batch of one row), path by path with every factor of the chain rule, or in the
    delta form."""
    question = body(inputs=inputs, targets=targets, parameter=parameter, form=form)
    return _explain(name, question, version, schema(ExplainResponse))


def explain_markdown(
    name: str,
    inputs: Matrix,
    targets: Matrix,
    parameter: str,
    *,
    form: Form = "auto",
    version: int | None = None,
) -> Call[str]:
    """``POST /v1/models/{name}/explain?format=markdown``: the same explanation as a Markdown
    document with LaTeX."""
    question = body(inputs=inputs, targets=targets, parameter=parameter, form=form)
    return _explain(name, question, version, text, format="markdown")


def _explain(
    name: str,
    question: dict[str, JSON],
    version: int | None,
    parse: Callable[[httpx.Response], T],
    format: str | None = None,
) -> Call[T]:
    """``POST /v1/models/{name}/explain`` of ``question``, the answer read by ``parse``."""
    where = path("/v1/models/{}/explain", name)
    return Call("POST", where, parse, params=params(version=version, format=format), json=question)


def walkthrough(
    name: str,
    inputs: Vector,
    targets: Vector,
    *,
    learning_rate: float | None = None,
    version: int | None = None,
) -> Call[str]:
    """``GET /v1/models/{name}/walkthrough``: the seed blog's worked example for this model and
    one sample, in Markdown: every net, out, delta, gradient and SGD update, every number
    exact. Nothing is stored."""
    return Call(
        "GET",
        path("/v1/models/{}/walkthrough", name),
        text,
        params=params(
            inputs=numbers(inputs),
            targets=numbers(targets),
            learning_rate=learning_rate,
            version=version,
        ),
    )


def diagram_svg(
    name: str,
    *,
    inputs: Vector | None = None,
    targets: Vector | None = None,
    gradients: bool = False,
    version: int | None = None,
) -> Call[str]:
    """``GET /v1/models/{name}/diagram.svg``: the network drawn as SVG; with ``inputs`` every
    node's net and out, with ``targets`` the loss, with ``gradients`` every dE/dw and delta."""
    return Call(
        "GET",
        path("/v1/models/{}/diagram.svg", name),
        text,
        params=params(
            inputs=None if inputs is None else numbers(inputs),
            targets=None if targets is None else numbers(targets),
            gradients=gradients or None,
            version=version,
        ),
    )


def history_svg(name: str, inputs: Matrix, targets: Matrix) -> Call[str]:
    """``GET /v1/models/{name}/history.svg``: the loss on ``inputs`` and ``targets`` of every
    kept version, plotted against the version number."""
    return Call(
        "GET",
        path("/v1/models/{}/history.svg", name),
        text,
        params=params(inputs=rows(inputs), targets=rows(targets)),
    )
