"""The numeric core: feed-forward networks in NumPy. It knows no HTTP, no schemas, no storage.

Typical use::

    net = Network(inputs=2, layers=(Layer(3, "relu"), Layer(1, "sigmoid")),
                  loss="half_squared_error")
    params = initialize(net, "xavier_uniform", seed=7)      # or check_parameters(net, [(W, b)])
    trace = forward(net, params, X)                          # trace[-1].out are the outputs
    result = gradient(net, params, X, T)                     # loss, gradients, deltas, trace
    params, state = step(SGD(learning_rate=0.01), params, result.gradients)
"""

from service.core.errors import (
    CoreError,
    InvalidNetwork,
    InvalidTargets,
    NonFiniteValue,
    NumericOverflow,
    ShapeMismatch,
)
from service.core.initializers import SCHEMES, Scheme, initialize
from service.core.named import (
    Location,
    from_named,
    locations,
    node_names,
    parameter_names,
    to_named,
)
from service.core.network import (
    ACTIVATIONS,
    DTYPES,
    LOSSES,
    Activation,
    DType,
    Layer,
    Loss,
    Network,
)
from service.core.optimizers import SGD, Adam, Optimizer, OptimizerState, step
from service.core.parameters import FloatArray, LayerParams, Params, check_parameters
from service.core.propagation import GradientResult, LayerTrace, Trace, forward, gradient

__all__ = [
    "ACTIVATIONS",
    "DTYPES",
    "LOSSES",
    "SCHEMES",
    "SGD",
    "Activation",
    "Adam",
    "CoreError",
    "DType",
    "FloatArray",
    "GradientResult",
    "InvalidNetwork",
    "InvalidTargets",
    "Layer",
    "LayerParams",
    "LayerTrace",
    "Location",
    "Loss",
    "Network",
    "NonFiniteValue",
    "NumericOverflow",
    "Optimizer",
    "OptimizerState",
    "Params",
    "Scheme",
    "ShapeMismatch",
    "Trace",
    "check_parameters",
    "forward",
    "from_named",
    "gradient",
    "initialize",
    "locations",
    "node_names",
    "parameter_names",
    "step",
    "to_named",
]
