"""The seed network served by KServe's Python ``ModelServer`` (Open Inference Protocol V2).

Runs in a virtual environment of its own with kserve installed (``benchmarks/peers/install``):

    .peers/kserve/bin/python benchmarks/peers/kserve_seed.py --http_port 8081 --enable_grpc false \
        --enable_latency_logging false --log_config_file benchmarks/peers/kserve_logging.json

The model is the same NumPy forward as the service's (relu, relu, sigmoid), so the comparison
measures the servers, not the arithmetic. Access and latency logs are off.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import kserve
import numpy as np
from kserve import InferOutput, InferRequest, InferResponse

SEED = json.loads(
    (Path(__file__).resolve().parents[2] / "tests" / "data" / "worked-example.json").read_text()
)
LAYERS = [
    (np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64))
    for W, b in zip(SEED["parameters"]["weights"], SEED["parameters"]["biases"], strict=True)
]


class Seed(kserve.Model):  # type: ignore[misc]
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.ready = True

    def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> Any:
        out = payload.inputs[0].as_numpy().astype(np.float64)
        for i, (W, b) in enumerate(LAYERS):
            net = out @ W + b
            out = 1.0 / (1.0 + np.exp(-net)) if i == len(LAYERS) - 1 else np.maximum(net, 0.0)
        result = InferOutput(name="output", shape=list(out.shape), datatype="FP64")
        result.set_data_from_numpy(out, binary_data=False)
        return InferResponse(
            model_name=self.name,
            infer_outputs=[result],
            response_id=payload.id or str(uuid.uuid4()),
        )


if __name__ == "__main__":
    kserve.ModelServer().start([Seed("seed")])
