"""Explanations for learners: the chain rule of one derivative."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from service.api.schemas.common import Batch, Body, Out
from service.core import MAX_PATHS


class ExplainRequest(Body):
    inputs: Batch = Field(description="One sample: a batch of exactly one row.")
    targets: Batch = Field(description="Its targets: one row.")
    parameter: str = Field(
        min_length=1,
        max_length=32,
        description="A weight w1..wN or a bias b1..bM in the seed's numbering (see the named "
        "notation).",
        examples=["w7"],
    )
    form: Literal["auto", "paths", "delta"] = Field(
        "auto",
        description=f"`paths` lists every path (422 above {MAX_PATHS}); `delta` gives "
        f"dE/dp = delta_j * dnet_j/dp with the backpropagation recursion; `auto` lists the "
        f"paths when there are at most {MAX_PATHS}, else the delta form.",
    )


class FactorOut(Out):
    """One local derivative along a path."""

    symbol: str = Field(examples=["dout_n9/dnet_n9"])
    formula: str = Field(examples=["sigmoid(net_n9) * (1 - sigmoid(net_n9))"])
    value: float
    symbol_latex: str = Field(examples=[r"\frac{\partial out_{n_{9}}}{\partial net_{n_{9}}}"])
    formula_latex: str


class PathOut(Out):
    """One path from the node the parameter feeds to an output node, its factors from the loss
    backwards (as the seed blog writes them), and their product."""

    nodes: list[str] = Field(examples=[["n6", "n9"]])
    factors: list[FactorOut]
    product: float


class DeltaTermOut(Out):
    """One term ``w_jk * delta_k`` of the recursion."""

    weight: str
    weight_value: float
    node: str
    delta: float


class DeltaFormOut(Out):
    """``dE/dp = delta_j * dnet_j/dp``: ``delta`` (backpropagated) times ``input`` (``out_i``,
    ``x_i`` or 1); for a hidden node ``delta_j = derivative * sum of terms``."""

    node: str
    delta: FactorOut
    input: FactorOut
    derivative: FactorOut | None = None
    terms: list[DeltaTermOut]
    product: float
    recursion: str
    recursion_latex: str


class ExplainResponse(Out):
    """``dE/dparameter`` by the chain rule. In the paths form the path products sum to
    ``gradient`` (``sum``, up to rounding); in the delta form ``sum`` is ``delta.product``."""

    model: str
    version: int
    parameter: str
    kind: Literal["weight", "bias"]
    value: float = Field(description="The parameter's value.")
    source: str | None = Field(None, description="The node a weight comes from.")
    node: str = Field(description="The node the parameter feeds.")
    loss: float = Field(description="The loss of the sample.")
    gradient: float = Field(description="dE/dparameter by backpropagation.")
    form: Literal["paths", "delta"]
    path_count: int = Field(description="How many paths lead from `node` to the outputs.")
    paths: list[PathOut]
    sum: float = Field(description="The sum of the path products (or the delta form's product).")
    delta: DeltaFormOut | None = None
    note: str | None = Field(
        None, description="Why the delta form was used, or how the output layer was fused."
    )
