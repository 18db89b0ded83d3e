"""What a computation costs, estimated from the network and the request's shape before any
arithmetic, and its admission against the limits: time, peak working memory, answer size.

Refusing up front is what makes the limits hold: a computation in a worker cannot be stopped
once started, and an allocation past the machine's memory ends the process, not the request.

The estimates, for ``N`` rows, ``P`` parameters, ``U`` units in all, ``w`` the widest layer
(inputs included) and ``s`` bytes per number of the network's dtype:

- time: ``N P`` multiply-adds for a forward pass, ``3 N P`` with backpropagation (the backward
  pass and the weights' gradients), at ``rate`` multiply-adds per second;
- memory of a forward pass: ``s N (inputs + 2 U + 4 w)`` (every layer's net and out, and the
  temporaries of one layer's activation); of a gradient ``s N (inputs + outputs + 3 U + 6 w)``
  (the deltas too, and the temporaries of the backward pass) plus the gradients; a train-step
  adds the new parameters and optimizer state (tests/operations/test_cost.py checks these
  against measured peaks);
- input gradients: ``2 N P`` multiply-adds (the forward pass and the backward pass to the
  inputs, without the weights' gradients) and ``N P`` more per output with the Jacobian (a
  backward pass each), in blocks of rows like a gradient, the answer's arrays (``N inputs``,
  and ``N outputs inputs`` for the Jacobian) whole beside them;
- a gradient check of ``m`` parameters: a gradient (``3 N P``) and two forward passes per
  parameter checked (``2 m N P`` at most: a perturbation of a later layer recomputes only the
  layers from it), on the whole batch; its memory that of a gradient of every row plus the
  float64 trace it restarts from and one pass (``8 N (inputs + 4 U + 4 w)``) and a float64 copy
  of the parameters; its answer ``ENTRY_NUMBERS`` a parameter;
- answer: every number it holds, 24 bytes each as JSON text (the longest float64 is 23
  characters and a separator) and its own size in a binary format. A JSON answer is also built
  as Python lists first (32 bytes a number) before it is written.

Without a trace or deltas in the answer, rows are processed in blocks of at most ``BLOCK_BYTES``
of working memory (:func:`service.core.forward_outputs`, :func:`service.core.mean_gradient`), so
a large batch on a wide network is served, not refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from service.core import Network

Kind = Literal["forward", "gradient", "train-step", "input-gradient", "gradient-check"]

BACKWARD_FACTOR = 3
JSON_NUMBER_BYTES = 24  # the text of a float64 and its separator, at most
PYTHON_NUMBER_BYTES = 32  # a float object and its slot in a list
BLOCK_BYTES = 64 << 20  # working memory of one block of rows
MIB = 1 << 20
#: What one parameter's entry of a gradient check costs in the answer, in numbers: its three
#: numbers, and its names and keys (about 60 characters).
ENTRY_NUMBERS = 6


@dataclass(frozen=True)
class Limits:
    """The limits every computation is admitted against (settings ``max_compute_seconds``,
    ``compute_rate``, ``max_request_memory_bytes``, ``max_answer_bytes``)."""

    max_seconds: float
    rate: float
    max_memory: int
    max_answer: int


# Plain slotted dataclasses: a frozen one pays object.__setattr__ per field, on every request.
@dataclass(slots=True)
class Work:
    """What one request asks of a network: ``rows`` of a ``kind`` of computation, and what its
    answer holds (the trace, the deltas, the parameters or gradients, how many optimizer
    slots) in which encoding."""

    kind: Kind
    rows: int
    trace: bool = False
    deltas: bool = False
    parameters: bool = False
    slots: int = 0
    binary: bool = False
    #: The trace and deltas are answered per node too (the named notation): twice the numbers.
    named: bool = False
    #: The outputs (rows x outputs) are part of the answer (a forward's).
    outputs: bool = False
    #: The Jacobian of the outputs with respect to the inputs (input gradients).
    jacobian: bool = False
    #: The parameters a gradient check checks.
    checked: int = 0

    @property
    def blocked(self) -> bool:
        """Whether the rows may be processed in blocks: nothing per row but the outputs (or the
        input gradients) is kept; a gradient check takes the batch whole."""
        return not (self.trace or self.deltas or self.kind == "gradient-check")


@dataclass(slots=True)
class Cost:
    """The estimates of one computation, and the rows per block it runs in."""

    multiply_adds: int
    seconds: float
    memory: int
    answer: int
    block_rows: int


class WorkTooLarge(Exception):
    """A computation would pass a limit (memory or answer size); nothing was computed."""

    def __init__(self, what: str, estimate: int, limit: int, setting: str, advice: str) -> None:
        super().__init__(
            f"this request needs an estimated {_bytes(estimate)} of {what}, above the limit of "
            f"{_bytes(limit)} ({setting}); {advice}"
        )
        self.what = what
        self.estimate = estimate
        self.limit = limit


class ComputeBudgetExceeded(Exception):
    """A computation would take longer than the budget allows."""

    def __init__(
        self,
        multiply_adds: int,
        seconds: float,
        budget: float,
        rate: float,
        advice: str = "send fewer rows per request or use a training job",
    ) -> None:
        super().__init__(
            f"this request needs about {multiply_adds:.3g} multiply-adds, an estimated "
            f"{seconds:.3g} s at {rate:.3g} per second, above the compute budget of {budget:g} s "
            f"per request (BACKPROP_MAX_COMPUTE_SECONDS); {advice}"
        )
        self.multiply_adds = multiply_adds
        self.seconds = seconds
        self.budget = budget


def estimate(network: Network, work: Work, limits: Limits) -> Cost:
    """The cost of ``work`` on ``network`` under ``limits`` (their block size)."""
    s = network.np_dtype.itemsize
    rows = max(work.rows, 1)
    units, widest = network.unit_count, network.widest
    P = network.parameter_count
    # Beside one block: the whole batch as an array (and its outputs), whatever the blocks.
    whole = s * rows * (network.inputs + network.outputs)
    if work.kind == "forward":
        per_row = s * (network.inputs + 2 * units + 4 * widest)
        fixed = 0
        factor = 1
    else:
        per_row = s * (network.inputs + network.outputs + 3 * units + 6 * widest)
        fixed = 2 * s * P  # the gradients, and their sum over blocks
        factor = BACKWARD_FACTOR
        if work.kind == "train-step":
            fixed += s * P * (2 + 2 * work.slots)  # new parameters and optimizer state
        elif work.kind == "input-gradient":
            fixed = 0  # no weights' gradients
            factor = 2 + network.outputs * work.jacobian
            whole += s * rows * network.inputs * (1 + network.outputs * work.jacobian)
        elif work.kind == "gradient-check":
            factor = BACKWARD_FACTOR + 2 * work.checked
            per_row += 8 * (network.inputs + 4 * units + 4 * widest)
            fixed += 8 * P
    block_rows = rows
    if work.blocked:
        block_rows = max(1, min(rows, min(BLOCK_BYTES, limits.max_memory // 4) // per_row))
    numbers = answer_numbers(network, work)
    per_number = s if work.binary else JSON_NUMBER_BYTES
    answer = numbers * per_number
    building = numbers * (s if work.binary else PYTHON_NUMBER_BYTES + JSON_NUMBER_BYTES)
    multiply_adds = factor * rows * P
    return Cost(
        multiply_adds=multiply_adds,
        seconds=multiply_adds / limits.rate,
        memory=fixed + block_rows * per_row + whole + building,
        answer=answer,
        block_rows=block_rows,
    )


def answer_numbers(network: Network, work: Work) -> int:
    """How many numbers the answer to ``work`` holds."""
    units = network.unit_count
    if work.kind == "input-gradient":
        # Named, every number has its key (n1, ...): counted as one number more.
        per_input = (1 + network.outputs * work.jacobian) * (1 + work.named)
        return 1 + work.rows * network.inputs * per_input
    if work.kind == "gradient-check":
        return 2 + work.checked * ENTRY_NUMBERS
    per_row = units * (work.deltas + 2 * work.trace) * (1 + work.named)
    per_row += network.outputs * work.outputs
    return work.parameters * network.parameter_count * (1 + work.slots) + work.rows * per_row


def admit(network: Network, work: Work, limits: Limits) -> Cost:
    """The cost of ``work``; :class:`ComputeBudgetExceeded` or :class:`WorkTooLarge` when it
    would pass a limit."""
    cost = estimate(network, work, limits)
    if cost.seconds > limits.max_seconds:
        raise ComputeBudgetExceeded(
            cost.multiply_adds, cost.seconds, limits.max_seconds, limits.rate, *_time_advice(work)
        )
    return _within(cost, limits, _advice(work))


def _within(cost: Cost, limits: Limits, advice: str) -> Cost:
    """``cost``, or :class:`WorkTooLarge` with ``advice`` when its answer or its memory would
    pass its limit."""
    if cost.answer > limits.max_answer:
        raise WorkTooLarge(
            "answer", cost.answer, limits.max_answer, "BACKPROP_MAX_ANSWER_BYTES", advice
        )
    if cost.memory > limits.max_memory:
        raise WorkTooLarge(
            "working memory",
            cost.memory,
            limits.max_memory,
            "BACKPROP_MAX_REQUEST_MEMORY_BYTES",
            advice,
        )
    return cost


def admit_export(network: Network, binary: bool, limits: Limits) -> Cost:
    """The cost of a model file (an export): every parameter once, as JSON text (24 bytes a
    number) or in the network's dtype (``.npz``, ONNX), and as much again while it is written
    (its pieces, then the blocks joined from them); :class:`WorkTooLarge` past a limit. No
    arithmetic: the time is the writing, linear in the answer."""
    s = network.np_dtype.itemsize
    P = network.parameter_count
    answer = P * (s if binary else JSON_NUMBER_BYTES)
    cost = Cost(multiply_adds=0, seconds=0.0, memory=2 * answer, answer=answer, block_rows=0)
    if binary:
        advice = "raise BACKPROP_MAX_ANSWER_BYTES: a binary file holds each number once"
    else:
        advice = (
            f"export as format=npz or format=onnx ({s} bytes a number in {network.dtype}, "
            f"not {JSON_NUMBER_BYTES} as JSON text)"
        )
    return _within(cost, limits, advice)


def _time_advice(work: Work) -> tuple[str, ...]:
    """What the client can change to take less time, where it is not the default's."""
    if work.kind == "gradient-check":
        return (
            f"pass sample to check fewer of the {work.checked} parameters (each costs two "
            "forward passes of the batch), or send fewer rows",
        )
    if work.kind == "input-gradient" and work.jacobian:
        return ("leave out jacobian (a backward pass per output), or send fewer rows",)
    return ()


def _advice(work: Work) -> str:
    """What the client can change, the most effective first."""
    if work.kind == "gradient-check":
        return (
            f"pass sample to check fewer of the {work.checked} parameters (the answer holds one "
            "entry each), or send fewer rows"
        )
    steps: list[str] = []
    if work.jacobian:
        steps.append(
            "send fewer rows for the Jacobian (it holds outputs x inputs numbers a row), or "
            "leave out jacobian"
        )
    if work.trace or work.deltas:
        steps.append(
            "leave out "
            + " and ".join(n for n, on in (("trace", work.trace), ("deltas", work.deltas)) if on)
            + " (rows are then processed in blocks)"
        )
    if not work.binary and (work.outputs or work.parameters):
        steps.append(
            "ask for a binary answer (Accept: application/x-npy for outputs, application/x-npz "
            "for gradients, binary_data_output in V2)"
        )
    if not work.binary and work.kind == "input-gradient":
        steps.append("ask for a binary answer (Accept: application/x-npz)")
    steps.append("send fewer rows per request")
    if work.kind in ("gradient", "train-step"):
        steps.append("or train with a job over a stored dataset")
    return "; ".join(steps)


def _bytes(n: int) -> str:
    return f"{n / MIB:,.1f} MiB" if n >= MIB else f"{n:,} bytes"
