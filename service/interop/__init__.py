"""Interchange formats: NumPy's .npy and .npz, ONNX graphs, and the model's JSON export.

Pure functions from bytes to the core's arrays and back; nothing here knows HTTP.
"""

from service.interop.errors import (
    InteropError,
    MalformedContent,
    MalformedHeader,
    NotAcceptable,
    UnsupportedContent,
)

__all__ = [
    "InteropError",
    "MalformedContent",
    "MalformedHeader",
    "NotAcceptable",
    "UnsupportedContent",
]
