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
from service.core.explain import (
    MAX_PATHS,
    ChainPath,
    DeltaForm,
    DeltaTerm,
    Explanation,
    Factor,
    TooManyPaths,
    UnknownParameter,
    explain,
    explain_each,
    path_count,
)
from service.core.gradient_check import (
    DEFAULT_EPSILON,
    GradientCheck,
    InvalidOption,
    ParameterCheck,
    checked_count,
    gradient_check,
)
from service.core.initializers import SCHEMES, Scheme, initialize
from service.core.input_gradients import InputGradient, input_gradient
from service.core.named import (
    Location,
    from_named,
    location_of,
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
from service.core.propagation import (
    GradientResult,
    LayerTrace,
    Trace,
    forward,
    forward_outputs,
    gradient,
    mean_gradient,
    train_step,
)

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_EPSILON",
    "DTYPES",
    "LOSSES",
    "MAX_PATHS",
    "SCHEMES",
    "SGD",
    "Activation",
    "Adam",
    "ChainPath",
    "CoreError",
    "DType",
    "DeltaForm",
    "DeltaTerm",
    "Explanation",
    "Factor",
    "FloatArray",
    "GradientCheck",
    "GradientResult",
    "InputGradient",
    "InvalidNetwork",
    "InvalidOption",
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
    "ParameterCheck",
    "Params",
    "Scheme",
    "ShapeMismatch",
    "TooManyPaths",
    "Trace",
    "UnknownParameter",
    "check_parameters",
    "checked_count",
    "explain",
    "explain_each",
    "forward",
    "forward_outputs",
    "from_named",
    "gradient",
    "gradient_check",
    "initialize",
    "input_gradient",
    "location_of",
    "locations",
    "mean_gradient",
    "node_names",
    "parameter_names",
    "path_count",
    "step",
    "to_named",
    "train_step",
]
