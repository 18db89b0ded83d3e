"""PostgreSQL for tests: the server's URL and fresh schemas, dropped afterwards.

The server is the one BACKPROP_TEST_POSTGRES_URL names (default: the machine's local one). If it
cannot be reached, tests that need it are skipped with the reason, or fail when CI=true.
"""

from __future__ import annotations

import uuid

import psycopg
from psycopg import sql

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA_PREFIX = "bp_test_"


def with_query(url: str, **params: str) -> str:
    """Append query parameters, already URL-encoded, to a connection URL."""
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


def schema_url(base_url: str, schema: str) -> str:
    """The URL of `base_url` with `schema` as the only schema on the search path."""
    return with_query(base_url, options=f"-csearch_path%3D{schema}")


class PostgresSchemas:
    """Creates uniquely named schemas in the test database and drops them all at teardown."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._names: list[str] = []

    def new_name(self) -> str:
        """Reserve a fresh schema name, not yet created, that `drop_all` will drop."""
        self._names.append(f"{SCHEMA_PREFIX}{uuid.uuid4().hex}")
        return self._names[-1]

    def create(self) -> str:
        """Create a fresh, empty schema and return the URL that selects it."""
        name = self.new_name()
        self.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        return schema_url(self.base_url, name)

    def execute(self, statement: sql.Composed) -> None:
        """Run one statement in autocommit mode on a short-lived connection."""
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(statement)

    def drop_all(self) -> None:
        """Drop every schema this object named, if it exists."""
        for name in self._names:
            self.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        self._names.clear()
