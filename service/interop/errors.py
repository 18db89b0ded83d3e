"""Errors of the interchange formats (.npy/.npz, ONNX, the Open Inference Protocol). They know
nothing of HTTP; ``service.api.binary`` maps them to problem responses.

Hierarchy::

    InteropError (ValueError)
    ├── MalformedContent    bytes that cannot be decoded at all (not an .npy file, a V2 body
    │   │                   shorter than its binary_data_size says, an unknown datatype) -> 400
    │   └── MalformedHeader a header such as Inference-Header-Content-Length is wrong    -> 400
    ├── UnsupportedContent  well-formed, but outside what the service computes (an ONNX
    │                       operator it has no layer for, an .npy of strings)            -> 422
    └── NotAcceptable       no representation the client accepts (a trace as .npy)        -> 406

Like the core's errors, each carries ``pointer``, a JSON pointer to the offending value when
there is one (``/inputs/0/datatype`` of a V2 request).
"""

from __future__ import annotations


class InteropError(ValueError):
    """Base of the errors of the interchange formats."""

    def __init__(self, message: str, pointer: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer


class MalformedContent(InteropError):
    """The content cannot be decoded."""


class MalformedHeader(MalformedContent):
    """A header that frames the content is missing or wrong."""


class UnsupportedContent(InteropError):
    """The content is well-formed but describes something the service does not compute."""


class NotAcceptable(InteropError):
    """None of the representations the client accepts can carry the answer."""
