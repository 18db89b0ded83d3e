"""Every bad input raises the right domain error, whose message names what is wrong and whose
``pointer`` says where."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pytest

from service.core import (
    CoreError,
    InvalidNetwork,
    InvalidTargets,
    Layer,
    Loss,
    Network,
    NonFiniteValue,
    NumericOverflow,
    Params,
    ShapeMismatch,
    check_parameters,
    forward,
    from_named,
    gradient,
    initialize,
    parameter_names,
)

HSE: Loss = "half_squared_error"
SEED = Network(2, (Layer(3, "relu"), Layer(3, "relu"), Layer(1, "sigmoid")), HSE)
BCE = Network(2, (Layer(3, "tanh"), Layer(2, "sigmoid")), "binary_cross_entropy")
CE = Network(2, (Layer(3, "tanh"), Layer(3, "softmax")), "cross_entropy")


def _any(value: object) -> Any:
    """A value of the wrong type, past the type checker, as a JSON body could bring it."""
    return cast(Any, value)


def assert_raises(
    action: Callable[[], object], error: type[CoreError], pointer: str, *words: str
) -> CoreError:
    """``action`` raises ``error`` (a ``CoreError`` and a ``ValueError``) at ``pointer``, with a
    message containing each of ``words``."""
    with pytest.raises(error) as info:
        action()
    exc = info.value
    assert isinstance(exc, CoreError) and isinstance(exc, ValueError)
    assert exc.pointer == pointer, f"pointer {exc.pointer!r}, message {exc.message!r}"
    assert str(exc) == exc.message
    for word in words:
        assert word in exc.message, f"{word!r} not in {exc.message!r}"
    return exc


def _seed_params() -> list[tuple[Any, Any]]:
    return [
        (np.full((2, 3), 0.1), np.zeros(3)),
        (np.full((3, 3), 0.1), np.zeros(3)),
        (np.full((3, 1), 0.1), np.zeros(1)),
    ]


def _with(layers: list[tuple[Any, Any]], l: int, W: Any = None, b: Any = None) -> list[Any]:
    out = list(layers)
    out[l] = (layers[l][0] if W is None else W, layers[l][1] if b is None else b)
    return out


@pytest.fixture
def seed_params() -> Params:
    return check_parameters(SEED, _seed_params())


# -- the hierarchy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error", [InvalidNetwork, ShapeMismatch, NonFiniteValue, InvalidTargets, NumericOverflow]
)
def test_every_domain_error_is_a_core_error_and_a_value_error(error: type[CoreError]) -> None:
    assert issubclass(error, CoreError)
    assert issubclass(error, ValueError)
    exc = error("what went wrong", "/somewhere/0")
    assert exc.message == "what went wrong" and exc.pointer == "/somewhere/0"


# -- networks ------------------------------------------------------------------------------

NETWORK_CASES: list[tuple[str, Callable[[], object], str, tuple[str, ...]]] = [
    ("zero units", lambda: Network(2, (Layer(0, "relu"), Layer(1, "sigmoid")), HSE),
     "/layers/0/units", ("layer 0", "units", "0")),
    ("negative units in layer 1", lambda: Network(2, (Layer(2, "relu"), Layer(-1, "relu")), HSE),
     "/layers/1/units", ("layer 1", "units", "-1")),
    ("non-integer units", lambda: Network(2, (Layer(_any(2.5), "relu"),), HSE),
     "/layers/0/units", ("units", "2.5")),
    ("string units", lambda: Network(2, (Layer(_any("3"), "relu"),), HSE),
     "/layers/0/units", ("units", "'3'")),
    ("boolean units", lambda: Network(2, (Layer(_any(True), "relu"),), HSE),
     "/layers/0/units", ("units",)),
    ("unknown activation", lambda: Network(2, (Layer(2, "relu"), Layer(1, _any("swish"))), HSE),
     "/layers/1/activation", ("layer 1", "swish", "relu")),
    ("softmax in a hidden layer",
     lambda: Network(2, (Layer(3, "softmax"), Layer(2, "softmax")), "cross_entropy"),
     "/layers/0/activation", ("layer 0", "softmax", "last layer")),
    ("non-finite negative slope", lambda: Network(2, (Layer(2, "leaky_relu", math.nan),), HSE),
     "/layers/0/negative_slope", ("negative_slope",)),
    ("cross entropy without softmax",
     lambda: Network(2, (Layer(3, "tanh"), Layer(3, "sigmoid")), "cross_entropy"),
     "/layers/1/activation", ("cross_entropy", "softmax", "sigmoid")),
    ("binary cross entropy without sigmoid",
     lambda: Network(2, (Layer(3, "softmax"),), "binary_cross_entropy"),
     "/layers/0/activation", ("binary_cross_entropy", "sigmoid", "softmax")),
    ("unknown loss", lambda: Network(2, (Layer(1, "sigmoid"),), _any("hinge")),
     "/loss", ("hinge", "half_squared_error")),
    ("unknown dtype", lambda: Network(2, (Layer(1, "sigmoid"),), HSE, _any("float16")),
     "/dtype", ("float16", "float32")),
    ("zero inputs", lambda: Network(0, (Layer(1, "sigmoid"),), HSE),
     "/inputs", ("inputs", "0")),
    ("non-integer inputs", lambda: Network(_any(2.0), (Layer(1, "sigmoid"),), HSE),
     "/inputs", ("inputs", "2.0")),
    ("zero layers", lambda: Network(2, (), HSE), "/layers", ("layer",)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("action", "pointer", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in NETWORK_CASES],
)
def test_network_rejects_an_invalid_description(
    action: Callable[[], object], pointer: str, words: tuple[str, ...]
) -> None:
    assert_raises(action, InvalidNetwork, pointer, *words)


def test_network_rejects_softmax_with_one_unit() -> None:
    exc = assert_raises(
        lambda: Network(2, (Layer(1, "softmax"),), HSE),
        InvalidNetwork,
        "/layers/0/activation",
        "softmax",
        "2 units",
    )
    assert exc.pointer.startswith("/layers/0/")


# -- parameters ----------------------------------------------------------------------------

PARAMETER_CASES: list[tuple[str, list[Any], type[CoreError], str, tuple[str, ...]]] = [
    ("too few layers", _seed_params()[:2], ShapeMismatch, "/layers", ("3 layers", "2")),
    ("too many layers", [*_seed_params(), (np.zeros((1, 1)), np.zeros(1))], ShapeMismatch,
     "/layers", ("3 layers", "4")),
    ("transposed weights", _with(_seed_params(), 0, W=np.zeros((3, 2))), ShapeMismatch,
     "/layers/0/weights", ("layer 0 weights", "[2, 3]", "[3, 2]")),
    ("weights of the wrong width", _with(_seed_params(), 1, W=np.zeros((3, 2))), ShapeMismatch,
     "/layers/1/weights", ("layer 1 weights", "[3, 3]", "[3, 2]")),
    ("one-dimensional weights", _with(_seed_params(), 2, W=[0.1, 0.2, 0.3]), ShapeMismatch,
     "/layers/2/weights", ("layer 2 weights", "[3, 1]", "[3]")),
    ("biases of the wrong length", _with(_seed_params(), 1, b=np.zeros(2)), ShapeMismatch,
     "/layers/1/biases", ("layer 1 biases", "[3]", "[2]")),
    ("biases as a matrix", _with(_seed_params(), 2, b=[[0.0]]), ShapeMismatch,
     "/layers/2/biases", ("layer 2 biases", "[1]", "[1, 1]")),
    ("ragged weights", _with(_seed_params(), 0, W=[[0.1, 0.2, 0.3], [0.4, 0.5]]),
     ShapeMismatch, "/layers/0/weights", ("layer 0 weights", "rectangular")),
    ("NaN in weights", _with(_seed_params(), 1, W=[[0.1] * 3, [0.1] * 3, [math.nan, 0.1, 0.1]]),
     NonFiniteValue, "/layers/1/weights/2/0", ("layer 1 weights", "finite")),
    ("infinity in biases", _with(_seed_params(), 0, b=[0.0, math.inf, 0.0]), NonFiniteValue,
     "/layers/0/biases/1", ("layer 0 biases", "finite")),
    ("minus infinity in weights", _with(_seed_params(), 2, W=[[0.1], [-math.inf], [0.1]]),
     NonFiniteValue, "/layers/2/weights/1/0", ("layer 2 weights", "finite")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("layers", "error", "pointer", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in PARAMETER_CASES],
)
def test_check_parameters_rejects_bad_parameters(
    layers: list[Any], error: type[CoreError], pointer: str, words: tuple[str, ...]
) -> None:
    assert_raises(lambda: check_parameters(SEED, layers), error, pointer, *words)


def test_check_parameters_rejects_values_beyond_float32() -> None:
    network = Network(2, SEED.layers, HSE, "float32")
    layers = _with(_seed_params(), 1, b=[0.0, 1e39, 0.0])  # finite in float64, not in float32
    assert_raises(
        lambda: check_parameters(network, layers),
        NonFiniteValue,
        "/layers/1/biases/1",
        "float32",
    )


def test_check_parameters_accepts_nested_lists_and_returns_arrays_of_the_dtype() -> None:
    params = check_parameters(SEED, [(W.tolist(), b.tolist()) for W, b in _seed_params()])
    assert [p.W.shape for p in params] == [(2, 3), (3, 3), (3, 1)]
    assert all(p.W.dtype == p.b.dtype == np.float64 for p in params)


# -- inputs --------------------------------------------------------------------------------

INPUT_CASES: list[tuple[str, Any, type[CoreError], str, tuple[str, ...]]] = [
    ("a row too wide", [[0.1, 0.2, 0.3]], ShapeMismatch, "/inputs/0", ("2 values", "3")),
    ("an array too wide", np.zeros((2, 3)), ShapeMismatch, "/inputs/0", ("2 values", "3")),
    ("a row too narrow", [[0.1, 0.2], [0.3]], ShapeMismatch, "/inputs/1", ("2 values", "1")),
    ("a flat list", [0.1, 0.2], ShapeMismatch, "/inputs/0", ("2 values", "scalar")),
    ("a one-dimensional array", np.array([0.1, 0.2]), ShapeMismatch, "/inputs",
     ("2-D", "[2]")),
    ("a scalar", 0.5, ShapeMismatch, "/inputs", ("2-D",)),
    ("no rows", [], ShapeMismatch, "/inputs", ("at least one row",)),
    ("an array of no rows", np.zeros((0, 2)), ShapeMismatch, "/inputs",
     ("at least one row", "[0, 2]")),
    ("ragged rows", [[0.1, 0.2], [0.3, 0.4, 0.5], [0.6, 0.7]], ShapeMismatch, "/inputs/1",
     ("inputs[1]", "3")),
    ("NaN", [[0.1, 0.2], [math.nan, 0.4]], NonFiniteValue, "/inputs/1/0", ("inputs", "finite")),
    ("infinity in an array", np.array([[0.1, np.inf]]), NonFiniteValue, "/inputs/0/1",
     ("inputs", "finite")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("X", "error", "pointer", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in INPUT_CASES],
)
def test_forward_rejects_bad_inputs(
    seed_params: Params, X: Any, error: type[CoreError], pointer: str, words: tuple[str, ...]
) -> None:
    assert_raises(lambda: forward(SEED, seed_params, X), error, pointer, *words)


@pytest.mark.parametrize(
    ("X", "error", "pointer", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in INPUT_CASES],
)
def test_gradient_rejects_bad_inputs(
    seed_params: Params, X: Any, error: type[CoreError], pointer: str, words: tuple[str, ...]
) -> None:
    rows = len(X) if isinstance(X, list) else X.shape[0] if np.ndim(X) == 2 else 1
    T = [[0.5]] * rows  # targets that fit, so that the inputs are what is wrong
    assert_raises(lambda: gradient(SEED, seed_params, X, T), error, pointer, *words)


# -- targets -------------------------------------------------------------------------------

X2 = [[0.1, 0.2], [0.3, 0.4]]


@pytest.mark.parametrize(
    ("network", "T", "error", "pointer", "words"),
    [
        pytest.param(
            SEED, [[0.5]], ShapeMismatch, "/targets", ("has 1 row but", "has 2 rows"),
            id="too few rows",
        ),
        pytest.param(
            SEED, [[0.5]] * 3, ShapeMismatch, "/targets", ("3 rows", "2"), id="too many rows"
        ),
        pytest.param(
            SEED, [[0.5, 0.5], [0.5, 0.5]], ShapeMismatch, "/targets/0", ("1 value each",),
            id="rows too wide",
        ),
        pytest.param(
            SEED, np.zeros((2, 2)), ShapeMismatch, "/targets/0", ("1 value each",),
            id="array too wide",
        ),
        pytest.param(
            SEED, [0.5, 0.5], ShapeMismatch, "/targets/0", ("targets",), id="flat list"
        ),
        pytest.param(
            SEED, [[0.5], [math.nan]], NonFiniteValue, "/targets/1/0", ("targets", "finite"),
            id="NaN",
        ),
        pytest.param(
            BCE, [[0.0, 1.0], [0.5, 1.5]], InvalidTargets, "/targets/1/1",
            ("binary_cross_entropy", "[0, 1]", "targets[1][1]"), id="BCE above 1",
        ),
        pytest.param(
            BCE, [[-0.1, 1.0], [0.5, 0.5]], InvalidTargets, "/targets/0/0",
            ("binary_cross_entropy", "[0, 1]", "targets[0][0]"), id="BCE below 0",
        ),
        pytest.param(
            CE, [[0.0, 1.0, 0.0], [1.2, -0.2, 0.0]], InvalidTargets, "/targets/1/1",
            ("cross_entropy", ">= 0", "targets[1][1]"), id="CE negative",
        ),
        pytest.param(
            CE, [[0.0, 1.0, 0.0], [0.5, 0.5, 0.3]], InvalidTargets, "/targets/1",
            ("cross_entropy", "sum to 1", "row 1"), id="CE row summing to 1.3",
        ),
        pytest.param(
            CE, [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]], InvalidTargets, "/targets/0",
            ("cross_entropy", "sum to 1", "row 0"), id="CE row of zeros",
        ),
    ],
)  # fmt: skip
def test_gradient_rejects_bad_targets(
    network: Network,
    T: Any,
    error: type[CoreError],
    pointer: str,
    words: tuple[str, ...],
) -> None:
    params = initialize(network, "xavier_uniform", seed=0)
    assert_raises(lambda: gradient(network, params, X2, T), error, pointer, *words)


def test_gradient_accepts_targets_at_the_edges_of_what_the_loss_takes() -> None:
    bce = gradient(BCE, initialize(BCE, "xavier_uniform", 0), X2, [[0.0, 1.0], [1.0, 0.0]])
    row = [0.7, 0.2, 0.1]
    assert sum(row) != 1.0  # 0.9999999999999999 in floating point: still a probability row
    ce = gradient(CE, initialize(CE, "xavier_uniform", 0), X2, [row, [0.0, 0.0, 1.0]])
    assert math.isfinite(bce.loss) and math.isfinite(ce.loss)


# -- named parameters ----------------------------------------------------------------------


def _named() -> dict[str, float]:
    return {name: 0.1 for name in parameter_names(SEED)}


def test_from_named_rejects_a_missing_name() -> None:
    named = _named()
    del named["w18"]
    assert_raises(lambda: from_named(SEED, named), ShapeMismatch, "/w18", "w18", "w1..w18")


def test_from_named_rejects_missing_biases() -> None:
    named = {k: v for k, v in _named().items() if k not in ("b2", "b5")}
    assert_raises(lambda: from_named(SEED, named), ShapeMismatch, "/b2", "b2", "b5")


def test_from_named_rejects_an_unknown_name() -> None:
    named = {**_named(), "w19": 0.5}
    assert_raises(lambda: from_named(SEED, named), ShapeMismatch, "/w19", "'w19'", "w1..w18")


def test_from_named_rejects_a_name_of_no_kind() -> None:
    named = {**_named(), "x1": 0.5}
    assert_raises(lambda: from_named(SEED, named), ShapeMismatch, "/x1", "'x1'")


@pytest.mark.parametrize(("name", "value"), [("w5", math.nan), ("b7", math.inf)])
def test_from_named_rejects_a_non_finite_value(name: str, value: float) -> None:
    named = {**_named(), name: value}
    assert_raises(lambda: from_named(SEED, named), NonFiniteValue, f"/{name}", name, "finite")


def test_batches_given_as_lists_of_numpy_rows_are_accepted(seed_params: Params) -> None:
    """``forward`` and ``gradient`` take any ``ArrayLike`` batch; a list of 1-D NumPy rows is
    as rectangular as a list of lists.

    CORE BUG (fails today): ``service/core/parameters.py`` ``check_rows`` walks list and tuple
    batches row by row and accepts only list or tuple rows, so ``[np.array([0.23, 0.55])]``
    raises ``ShapeMismatch("inputs rows must have 2 values each ...; inputs[0] has a scalar",
    "/inputs/0")`` instead of being read as the 1 x 2 batch it is. Targets go through the same
    check.
    """
    as_array = forward(SEED, seed_params, np.array([[0.23, 0.55]]))[-1].out
    try:
        as_rows = forward(SEED, seed_params, [np.array([0.23, 0.55])])[-1].out
    except ShapeMismatch as exc:
        raise AssertionError(
            f"forward rejected a list of NumPy rows: {exc.message} (pointer {exc.pointer})"
        ) from exc
    assert np.array_equal(as_rows, as_array)
    result = gradient(SEED, seed_params, [np.array([0.23, 0.55])], [np.array([0.01])])
    assert np.array_equal(result.outputs, as_array)
