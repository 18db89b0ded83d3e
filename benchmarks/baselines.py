"""The baseline servers the suite measures the service against, on the same uvicorn settings.

- ``bare``: a FastAPI app with one ``POST /v1/models/{name}/forward`` that validates the very
  Pydantic body the service takes (:class:`ForwardRequest`) and returns a constant: the cost of
  FastAPI's request path with nothing behind it;
- ``plain``: a FastAPI app whose forward endpoint takes ``inputs: list[list[float]]`` as its
  Pydantic body, the textbook way, computes the same forward with the service's core, and returns
  the outputs through FastAPI's default response path.

    python -m uvicorn benchmarks.baselines:bare --port 8001 --no-access-log
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

from service.api.schemas.compute import ForwardRequest
from service.core import Layer, Network, forward, initialize

MNIST = Network(
    784,
    (Layer(256, "relu"), Layer(256, "relu"), Layer(10, "softmax")),
    "cross_entropy",
)
MNIST_PARAMS = initialize(MNIST, "he_uniform", 0)

bare = FastAPI()


@bare.post("/v1/models/{name}/forward")
async def bare_forward(name: str, body: ForwardRequest) -> dict[str, Any]:
    return {"model": name, "version": 1, "outputs": [[0.8034818811389179]]}


class PlainForward(BaseModel):
    inputs: list[list[float]]


plain = FastAPI()


@plain.post("/v1/models/{name}/forward")
async def plain_forward(name: str, body: PlainForward) -> dict[str, Any]:
    X = np.asarray(body.inputs, dtype=np.float64)
    outputs = forward(MNIST, MNIST_PARAMS, X)[-1].out
    return {"model": name, "version": 1, "outputs": outputs.tolist()}
