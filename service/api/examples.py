"""OpenAPI examples: the seed blog's worked example (a 2-3-3-1 network, one sample)."""

from __future__ import annotations

from typing import Any

from fastapi.openapi.models import Example

SEED_NETWORK: dict[str, Any] = {
    "inputs": 2,
    "layers": [
        {"units": 3, "activation": "relu"},
        {"units": 3, "activation": "relu"},
        {"units": 1, "activation": "sigmoid"},
    ],
    "loss": "half_squared_error",
}
SEED_PARAMETERS: dict[str, Any] = {
    "layers": [
        {"weights": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], "biases": [0.1, -0.4, 0.3]},
        {
            "weights": [[0.7, 0.8, 0.9], [0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],
            "biases": [-0.5, 0.5, 0.6],
        },
        {"weights": [[0.7], [0.8], [0.9]], "biases": [-0.7]},
    ]
}
SEED_INPUTS = [[0.23, 0.55]]
SEED_TARGETS = [[0.01]]
# The blog's numbering: w1..w18 row-major layer after layer, b1..b7 unit after unit.
SEED_NAMED: dict[str, float] = {
    **{f"w{i + 1}": w for i, w in enumerate([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] * 2)},
    **{f"b{i + 1}": b for i, b in enumerate([0.1, -0.4, 0.3, -0.5, 0.5, 0.6, -0.7])},
}


def path_example(value: str | int, summary: str) -> dict[str, Example]:
    """The example of a path parameter, for the parameter itself (``openapi_examples``)."""
    return {str(value): Example(summary=summary, value=value)}


def _one(summary: str, value: dict[str, Any]) -> dict[str, Example]:
    return {"worked-example": Example(summary=summary, value=value)}


# Keys in the order shown, sorted or not (the committed spec sorts them): Swagger UI preselects
# the first, the README's body, which makes the model every other example works on.
CREATE = {
    "seed": Example(
        summary="The seed blog's 2-3-3-1 network, its parameters in the blog's names",
        value={"name": "seed", "network": SEED_NETWORK, "parameters": SEED_NAMED},
    ),
    "seed-layered": Example(
        summary="The same model, its parameters layered",
        value={"name": "seed", "network": SEED_NETWORK, "parameters": SEED_PARAMETERS},
    ),
    "xor": Example(
        summary="A 2-4-1 XOR network drawn by He initialisation with a seed, trained by Adam",
        value={
            "name": "xor",
            "network": {
                "inputs": 2,
                "layers": [
                    {"units": 4, "activation": "tanh"},
                    {"units": 1, "activation": "sigmoid"},
                ],
                "loss": "binary_cross_entropy",
            },
            "init": {"scheme": "he_uniform", "seed": 42},
            "optimizer": {"kind": "adam", "learning_rate": 0.05},
            "tags": ["xor"],
        },
    ),
}
PUT_PARAMETERS = {
    **_one("The seed's parameters, layered", {"parameters": SEED_PARAMETERS}),
    "named": Example(summary="The seed's parameters, named", value={"parameters": SEED_NAMED}),
}
FORWARD = _one("The seed's input, with the trace", {"inputs": SEED_INPUTS, "trace": True})
GRADIENT = _one(
    "The seed's input and target, with deltas",
    {"inputs": SEED_INPUTS, "targets": SEED_TARGETS, "deltas": True},
)
INPUT_GRADIENT = _one(
    "The seed's input and target, with the Jacobian",
    {"inputs": SEED_INPUTS, "targets": SEED_TARGETS, "jacobian": True},
)
GRADIENT_CHECK = _one(
    "Every parameter of the seed, at the default epsilon",
    {"inputs": SEED_INPUTS, "targets": SEED_TARGETS},
)
TRAIN_STEP = _one(
    "The seed's SGD step with learning rate 0.01",
    {"inputs": SEED_INPUTS, "targets": SEED_TARGETS, "learning_rate": 0.01},
)
ROLLBACK = _one("Back to version 1 (after a train-step made version 2)", {"version": 1})
STATELESS_FORWARD = _one(
    "The seed's forward pass",
    {"network": SEED_NETWORK, "parameters": SEED_PARAMETERS, "inputs": SEED_INPUTS, "trace": True},
)
STATELESS_GRADIENT = _one(
    "The seed's backpropagation",
    {
        "network": SEED_NETWORK,
        "parameters": SEED_PARAMETERS,
        "inputs": SEED_INPUTS,
        "targets": SEED_TARGETS,
        "deltas": True,
    },
)
STATELESS_TRAIN_STEP = _one(
    "The seed's SGD step with learning rate 0.01",
    {
        "network": SEED_NETWORK,
        "parameters": SEED_PARAMETERS,
        "inputs": SEED_INPUTS,
        "targets": SEED_TARGETS,
        "learning_rate": 0.01,
    },
)
STATELESS_INPUT_GRADIENT = _one(
    "The seed's input gradient and Jacobian",
    {
        "network": SEED_NETWORK,
        "parameters": SEED_PARAMETERS,
        "inputs": SEED_INPUTS,
        "targets": SEED_TARGETS,
        "jacobian": True,
    },
)
