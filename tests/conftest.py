"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import psycopg
import pytest

from tests.postgres import DEFAULT_POSTGRES_URL, PostgresSchemas


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The base URL of the test PostgreSQL database; skips (fails under CI) if unreachable."""
    url = os.environ.get("BACKPROP_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        shown = re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", url)  # hide a password
        reason = (
            f"PostgreSQL not reachable at {shown} (set BACKPROP_TEST_POSTGRES_URL to change): "
            + " ".join(str(exc).split())
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the postgres tests", pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture
def postgres_schemas(postgres_url: str) -> Iterator[PostgresSchemas]:
    """Fresh schemas in the test database, dropped at teardown."""
    schemas = PostgresSchemas(postgres_url)
    yield schemas
    schemas.drop_all()
