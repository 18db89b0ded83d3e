"""The operations tests use the apps of the operations (ops) tests: settings chosen per test."""

from tests.ops.conftest import anyio_backend, make_app

__all__ = ["anyio_backend", "make_app"]
