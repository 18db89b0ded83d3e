"""Domain errors of the numeric core. They know nothing of HTTP.

Hierarchy::

    CoreError (ValueError)
    ├── InvalidNetwork      the description is wrong (zero units, softmax in a hidden layer)
    ├── ShapeMismatch       parameters, inputs or targets of the wrong shape
    ├── NonFiniteValue      NaN or infinity in given numbers
    ├── InvalidTargets      targets outside the range the loss accepts
    └── NumericOverflow     a computation whose result would not be finite

Every error carries ``pointer``, a JSON pointer (RFC 6901) to the offending value relative to
the object that was checked (``/layers/1/activation`` of a network, ``/3/0`` of an inputs
batch, ...), so that the edge can prefix it with where that object sat in a request.
"""

from __future__ import annotations


class CoreError(ValueError):
    """Base of every error the numeric core raises."""

    def __init__(self, message: str, pointer: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer

    def __reduce__(self) -> tuple[type[CoreError], tuple[str, str]]:
        # Raised in a worker process, it crosses back pickled: with its pointer.
        return (type(self), (self.message, self.pointer))


class InvalidNetwork(CoreError):
    """The network description is not a valid feed-forward network."""


class ShapeMismatch(CoreError):
    """An array does not have the shape the network requires."""


class NonFiniteValue(CoreError):
    """A given number is NaN or infinite."""


class InvalidTargets(CoreError):
    """Targets that the loss cannot take (negative probabilities, rows not summing to 1, ...)."""


class NumericOverflow(CoreError):
    """The computation would produce NaN or infinity."""
