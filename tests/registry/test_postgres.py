"""Tests specific to the PostgreSQL backend: migrations, replicas, outages and recovery.

The contract suite (test_contract, test_persistence) also runs against PostgreSQL through
conftest; these cover what only a server can show. An outage is simulated with a TCP proxy
between registry and server, and by terminating the registry's server processes, so the
shared server itself keeps running.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from service.registry import (
    InvalidRegistryURL,
    MemoryRegistry,
    PostgresRegistry,
    RegistryUnavailable,
    VersionConflict,
    VersionNotFound,
    open_registry,
)
from service.registry.migrations_pg import MIGRATIONS
from tests.postgres import PostgresSchemas, schema_url, with_query

from .test_contract import SPEC, add_one, assert_bit_exact, bundle

SECRET = "s3cret-pw"
RegistryPair = tuple[PostgresRegistry, MemoryRegistry]


@pytest.fixture
def url(postgres_schemas: PostgresSchemas) -> str:
    """The URL of a fresh, empty schema."""
    return postgres_schemas.create()


@pytest.fixture
def registries() -> Iterator[list[PostgresRegistry]]:
    """A list whose registries are closed at teardown."""
    opened: list[PostgresRegistry] = []
    yield opened
    for registry in opened:
        registry.close()


@pytest.fixture
def registry_pair(url: str) -> Iterator[RegistryPair]:
    """A PostgreSQL registry and a memory one, to compare their behaviour."""
    with PostgresRegistry(url) as postgres, MemoryRegistry() as memory:
        yield postgres, memory


def fetch_all(url: str, query: str) -> list[tuple[Any, ...]]:
    """Run one query on a connection of its own and return all rows."""
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def error_texts(exc: BaseException) -> str:
    """The messages of an exception and of everything it was raised from or during."""
    texts: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        texts.append(str(current))
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


def test_migrations_are_recorded_and_idempotent(
    url: str, registries: list[PostgresRegistry]
) -> None:
    registries.append(PostgresRegistry(url))
    assert registries[-1].migrations_applied == tuple(range(1, len(MIGRATIONS) + 1))
    registries[-1].create("m", SPEC, bundle())
    registries.append(PostgresRegistry(url))
    assert registries[-1].migrations_applied == ()
    assert registries[-1].count() == 1
    rows = fetch_all(url, "SELECT version, applied_at FROM schema_migrations ORDER BY version")
    assert [version for version, _ in rows] == list(range(1, len(MIGRATIONS) + 1))
    assert all(applied_at.utcoffset() is not None for _, applied_at in rows)


@pytest.mark.parametrize("select_by", ["url", "schema_argument"])
def test_concurrent_starts_migrate_once(
    postgres_schemas: PostgresSchemas, registries: list[PostgresRegistry], select_by: str
) -> None:
    if select_by == "url":
        target, schema = postgres_schemas.create(), None
    else:  # the schema does not exist yet: the starters race to create it too
        target, schema = postgres_schemas.base_url, postgres_schemas.new_name()
    starters = 4
    start = threading.Barrier(starters)

    def start_one() -> PostgresRegistry:
        start.wait()
        return PostgresRegistry(target, schema=schema)

    with ThreadPoolExecutor(starters) as pool:
        futures = [pool.submit(start_one) for _ in range(starters)]
        registries.extend(future.result() for future in futures)
    applied = sorted(v for registry in registries for v in registry.migrations_applied)
    assert applied == list(range(1, len(MIGRATIONS) + 1))  # each one by exactly one starter
    registries[0].create("m", SPEC, bundle())
    assert [registry.count() for registry in registries] == [1] * starters
    check_url = target if schema is None else schema_url(target, schema)
    assert fetch_all(check_url, "SELECT count(*) FROM schema_migrations") == [(len(MIGRATIONS),)]


def test_schema_newer_than_code_is_unavailable(url: str) -> None:
    PostgresRegistry(url).close()
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO schema_migrations (version) VALUES (99)")
    with pytest.raises(RegistryUnavailable, match="schema version 99"):
        PostgresRegistry(url)


def test_two_replicas_commit_concurrently_and_lose_no_update(
    url: str, registries: list[PostgresRegistry]
) -> None:
    # Small pools, so threads also queue for connections, as in a loaded replica.
    registries.extend(PostgresRegistry(url, keep_versions=5, max_size=3) for _ in range(2))
    registries[0].create("counter", SPEC, {"w": np.zeros(3)})
    threads, rounds = 8, 12
    start = threading.Barrier(threads)

    def worker(registry: PostgresRegistry) -> int:
        start.wait()
        return sum(add_one(registry) for _ in range(rounds))

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(worker, registries[i % 2]) for i in range(threads)]
        conflicts = sum(future.result() for future in futures)
    total = threads * rounds
    for registry in registries:
        snap = registry.snapshot("counter")
        assert snap.version == total + 1
        assert snap.arrays["w"].tolist() == [float(total)] * 3
        assert [v.version for v in registry.versions("counter")] == list(
            range(total + 1, total - 4, -1)
        )
    assert conflicts > 0  # the threads did race


def test_unreachable_server_fails_construction_promptly() -> None:
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable) as info:
        PostgresRegistry(
            f"postgresql://postgres:{SECRET}@127.0.0.1:1/test?password={SECRET}x",
            connect_timeout=1.0,
        )
    assert time.monotonic() - started < 4.0
    assert "127.0.0.1:1" in str(info.value)
    assert SECRET not in error_texts(info.value)


def test_unparsable_url_is_invalid_and_hides_password() -> None:
    with pytest.raises(InvalidRegistryURL) as info:
        PostgresRegistry(f"postgresql://alice:{SECRET}@db.invalid/models?nonsense=1")
    assert SECRET not in error_texts(info.value)
    assert "nonsense" in str(info.value)


def test_open_registry_accepts_both_schemes(url: str) -> None:
    rest = url.removeprefix("postgresql://")
    for variant in (url, f"postgres://{rest}", f"PostgreSQL://{rest}"):
        with open_registry(variant, keep_versions=3) as registry:
            assert isinstance(registry, PostgresRegistry)
            assert registry.keep_versions == 3
            registry.ping()
    with pytest.raises(InvalidRegistryURL, match="drop the '\\+driver' part"):
        open_registry(url.replace("postgresql://", "postgresql+psycopg://", 1))


def test_schema_argument_creates_and_uses_the_schema(
    postgres_schemas: PostgresSchemas, registries: list[PostgresRegistry]
) -> None:
    name = postgres_schemas.new_name()
    registries.append(PostgresRegistry(postgres_schemas.base_url, schema=name))
    registries[-1].create("m", SPEC, bundle())
    assert fetch_all(schema_url(postgres_schemas.base_url, name), "SELECT name FROM models") == [
        ("m",)
    ]


def test_names_sort_by_code_point_whatever_the_locale(registry_pair: RegistryPair) -> None:
    names = ["b", "B", "a", "é", "Z", "ä", "a b", "ab", "中", "_", "A"]
    for registry in registry_pair:
        for name in names:
            registry.create(name, SPEC, bundle())
    postgres, memory = registry_pair
    assert [r.name for r in postgres.list(100)] == [r.name for r in memory.list(100)]
    assert [r.name for r in postgres.list(3, after="Z")] == ["_", "a", "a b"]


def test_timestamps_are_utc_whatever_the_session_time_zone(
    postgres_schemas: PostgresSchemas, registries: list[PostgresRegistry]
) -> None:
    schema = postgres_schemas.new_name()
    target = with_query(
        postgres_schemas.base_url,
        options=f"-csearch_path%3D{schema}%20-cTimeZone%3DAsia/Tokyo",
    )
    registries.append(PostgresRegistry(target, schema=schema))
    registry = registries[-1]
    created = registry.create("m", SPEC, bundle())
    committed = registry.commit("m", bundle(1), 1, "put")
    stamps = [created.created_at, committed.updated_at, registry.versions("m")[0].created_at]
    assert all(stamp.utcoffset() is not None and not stamp.utcoffset() for stamp in stamps)
    assert abs(time.time() - created.created_at.timestamp()) < 60


def test_spec_json_round_trips_exactly(url: str, registries: list[PostgresRegistry]) -> None:
    spec: dict[str, Any] = {
        "z": 1,
        "a": [0.1, 1e-300, 2.0, -0.0, 12345678901234567890, 1 / 3],
        "m": {"b": None, "a": True, "": "\u0000 ünï \U0001f600"},
    }
    registries.append(PostgresRegistry(url))
    registries[-1].create("m", spec, bundle())
    registries.append(PostgresRegistry(url))  # a fresh instance reads what was stored
    for reader in registries:
        stored = reader.get("m").spec
        assert stored == spec
        assert list(stored) == ["z", "a", "m"]
        assert list(stored["m"]) == ["b", "a", ""]
        assert [float(x).hex() for x in stored["a"]] == [float(x).hex() for x in spec["a"]]


def test_value_postgres_cannot_store_is_a_value_error(
    url: str, registries: list[PostgresRegistry]
) -> None:
    registries.append(PostgresRegistry(url))
    with pytest.raises(ValueError):
        registries[-1].create("nul\x00name", SPEC, bundle())
    assert registries[-1].count() == 0


def test_huge_version_numbers_are_not_found_not_errors(
    url: str, registries: list[PostgresRegistry]
) -> None:
    registries.append(PostgresRegistry(url))
    registry = registries[-1]
    registry.create("m", SPEC, bundle())
    for version in (2**31, -(2**31) - 1, 2**70):
        with pytest.raises(VersionNotFound):
            registry.snapshot("m", version)
        with pytest.raises(VersionConflict):
            registry.commit("m", bundle(), version, "put")


def terminate(admin_url: str, application_name: str) -> int:
    """Kill the server processes of one application, waiting until they are gone."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000))"
            " FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND application_name = %s",
            (application_name,),
        ).fetchone()
    assert row is not None
    killed: int = row[0]
    return killed


def test_current_state_reads_again_on_a_connection_killed_while_idle(
    postgres_schemas: PostgresSchemas, registries: list[PostgresRegistry]
) -> None:
    """current_state, read on every request, runs without the pool's check per checkout: a
    connection killed while idle (a restart, a failover) fails its read, which is made once
    more on a new connection, so the request is answered, not refused."""
    application = f"bp_test_{uuid.uuid4().hex}"
    target = with_query(postgres_schemas.create(), application_name=application)
    registries.append(PostgresRegistry(target, timeout=2.0))
    registry = registries[-1]
    created = registry.create("m", SPEC, bundle(1))
    for version in (1, 2, 3):
        assert registry.current_state("m") == (version, created.created_at)
        assert terminate(postgres_schemas.base_url, application) >= 1
        registry.commit("m", bundle(version + 1), version, "put", created=created.created_at)
        # (The commit above ran on a connection the main pool checked and replaced.)
    assert registry.current_state("m") == (4, created.created_at)


def retry(operation: Callable[[], Any], seconds: float = 15.0) -> Any:
    """Call `operation` until it does not raise RegistryUnavailable; return its result."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return operation()
        except RegistryUnavailable as exc:
            assert SECRET not in error_texts(exc)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_terminated_connections_are_replaced(
    postgres_schemas: PostgresSchemas, registries: list[PostgresRegistry]
) -> None:
    application = f"bp_test_{uuid.uuid4().hex}"
    target = with_query(postgres_schemas.create(), application_name=application)
    registries.append(PostgresRegistry(target, min_size=2, timeout=2.0))
    registry = registries[-1]
    registry.create("m", SPEC, bundle(1))
    registry.commit("m", bundle(2), 1, "put")

    for round_ in range(3):
        assert terminate(postgres_schemas.base_url, application) >= 1
        # Each call may fail (its connection died under it) or succeed (the pool's check
        # replaced the dead connection first); either way the registry comes back by itself.
        try:
            registry.ping()
        except RegistryUnavailable as exc:
            assert SECRET not in error_texts(exc)
        version = retry(lambda: registry.current_version("m"))
        assert version == 2 + round_
        retry(functools.partial(registry.commit, "m", bundle(version + 1), version, "put"))

    snap = registry.snapshot("m")
    assert snap.version == 5
    assert_bit_exact(snap.arrays, bundle(5))
    assert [v.version for v in registry.versions("m")] == [5, 4, 3, 2, 1]
    for version in range(1, 6):
        assert_bit_exact(registry.snapshot("m", version).arrays, bundle(version))


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; stopping it is an outage, restarting ends it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None

    def start(self) -> None:
        """Listen (on the same port as before, after a restart) and forward connections."""
        self._stopping.clear()
        self._listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR set
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._spawn(self._accept, self._listener)

    def stop(self) -> None:
        """Close the listener and cut every forwarded connection."""
        self._stopping.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
            threads, self._threads = self._threads, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the threads blocked in recv
        for thread in threads:
            thread.join(timeout=10)
        for sock in sockets:
            sock.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    """A started proxy to the test server's TCP address; stopped at teardown."""
    params = conninfo_to_dict(postgres_url)
    host = str(params.get("host") or "127.0.0.1")
    if host.startswith("/"):
        pytest.skip("the outage test needs PostgreSQL over TCP, not a Unix socket")
    tcp_proxy = TcpProxy((host, int(params.get("port") or 5432)))
    tcp_proxy.start()
    yield tcp_proxy
    tcp_proxy.stop()


def test_outage_then_recovery_without_restart(
    postgres_schemas: PostgresSchemas, proxy: TcpProxy, registries: list[PostgresRegistry]
) -> None:
    # Keyword form with a password, which trust authentication ignores; it must never show.
    target = make_conninfo(
        postgres_schemas.create(), host="127.0.0.1", port=str(proxy.port), password=SECRET
    )
    registries.append(PostgresRegistry(target, min_size=2, timeout=1.0, connect_timeout=3.0))
    registry = registries[-1]
    registry.create("m", SPEC, bundle(1))
    registry.commit("m", bundle(2), 1, "put")

    proxy.stop()
    operations: list[Callable[[], object]] = [
        registry.ping,
        lambda: registry.get("m"),
        lambda: registry.snapshot("m"),
        lambda: registry.commit("m", bundle(3), 2, "put"),
        registry.count,
    ]
    for operation in operations:
        started = time.monotonic()
        with pytest.raises(RegistryUnavailable) as info:
            operation()
        assert time.monotonic() - started < 5.0  # bounded by the pool timeout
        assert SECRET not in error_texts(info.value)
        assert "127.0.0.1" in str(info.value)

    proxy.start()
    snap = retry(lambda: registry.snapshot("m"))
    assert snap.version == 2
    assert_bit_exact(snap.arrays, bundle(2))
    assert registry.commit("m", bundle(3), 2, "put").version == 3
    assert [v.version for v in registry.versions("m")] == [3, 2, 1]


def test_fixture_schemas_are_dropped(postgres_url: str) -> None:
    schemas = PostgresSchemas(postgres_url)
    target = schemas.create()
    PostgresRegistry(target).close()
    name = target.rsplit("%3D", 1)[1]
    schemas.drop_all()
    with psycopg.connect(postgres_url) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,))
        assert found.fetchone() is None
