"""Errors of training data and jobs. They know nothing of HTTP."""

from __future__ import annotations


class InvalidDataset(ValueError):
    """Training data that cannot be used: not parseable, ragged, non-finite, the wrong shape.

    ``pointer`` locates the bad value: a JSON pointer into the request body, or for an upload
    ``/{row}/{column}`` of the CSV table (counting from 0, the header row not counted).
    """

    def __init__(self, message: str, pointer: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer


class DatasetTooLarge(ValueError):
    """The dataset's arrays would take more than the configured number of bytes."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the dataset's arrays would take {size} bytes; the limit is {limit} bytes "
            "(BACKPROP_MAX_DATASET_BYTES)"
        )
        self.size = size
        self.limit = limit


class UnsupportedMediaType(ValueError):
    """A dataset upload of a content type the service does not read."""

    def __init__(self, content_type: str, supported: tuple[str, ...]) -> None:
        super().__init__(
            f"cannot read a dataset of content type {content_type or '(none)'!r}; send one of "
            + ", ".join(supported)
        )
        self.content_type = content_type
        self.supported = supported
