"""A full disk under the SQLite and PostgreSQL registries: every write gets 507 storage-full,
reads keep working, /readyz says ``"storage": "full"``, nothing stored is harmed, and writes
work again once space has been freed; a training job that meets it is interrupted, and resumes.

The storage fills in one of two ways. Fault injection runs everywhere: SQLite's
``max_page_count`` (the engine's own SQLITE_FULL, "database or disk is full") and PostgreSQL
triggers raising SQLSTATE 53100 ``disk_full``. Where the tests run as root beside their
PostgreSQL server, the disk also fills for real: the SQLite file, or a PostgreSQL tablespace,
on a small tmpfs that another file fills up.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg import sql

from service.registry import SqliteRegistry
from tests.api.support import assert_problem
from tests.jobs.conftest import Apps
from tests.jobs.support import (
    WIDE,
    Pause,
    create,
    job_of,
    model,
    noisy,
    parameters_text,
    train,
    wait_for,
)
from tests.ops.test_metrics import scrape, value
from tests.postgres import PostgresSchemas, schema_url

pytestmark = pytest.mark.anyio

JSON = Any
REGISTRY_TABLES = ("models", "versions", "datasets", "jobs", "job_events", "history")


class Storage:
    """A registry's storage that the test can fill and free."""

    url: str

    def attach(self, app: FastAPI) -> None:
        """Hook into the app's registry, if the way of filling needs to."""

    def fill(self) -> None:
        raise NotImplementedError

    def free(self) -> None:
        raise NotImplementedError


class SqlitePages(Storage):
    """SQLite whose every connection gets ``max_page_count``: filled, no page may be added."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "registry.db"
        self.url = f"sqlite:///{self.path}"
        self.limit: int | None = None

    def attach(self, app: FastAPI) -> None:
        registry = app.state.store.registry
        assert isinstance(registry, SqliteRegistry)
        lend = registry._connection

        @contextlib.contextmanager
        def connection() -> Iterator[sqlite3.Connection]:
            with lend() as conn:
                conn.execute(f"PRAGMA max_page_count = {self.limit or 2**32 - 2}")
                yield conn

        registry._connection = connection  # type: ignore[method-assign]

    def fill(self) -> None:
        with contextlib.closing(sqlite3.connect(self.path)) as conn:
            (self.limit,) = conn.execute("PRAGMA page_count").fetchone()

    def free(self) -> None:
        self.limit = None


class PostgresTriggers(Storage):
    """A PostgreSQL schema whose tables, filled, refuse every row written with SQLSTATE 53100
    (as PostgreSQL does when it cannot extend a file)."""

    def __init__(self, schemas: PostgresSchemas) -> None:
        self.schemas = schemas
        self.schema = schemas.new_name()  # dropped by the fixture
        schemas.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
        self.url = schema_url(schemas.base_url, self.schema)

    def fill(self) -> None:
        schema = sql.Identifier(self.schema)
        self.schemas.execute(
            sql.SQL(
                "CREATE OR REPLACE FUNCTION {}.disk_full() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' "
                "USING ERRCODE = 'disk_full'; END $$"
            ).format(schema)
        )
        for table in REGISTRY_TABLES:
            self.schemas.execute(
                sql.SQL(
                    "CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE ON {}.{} "
                    "FOR EACH ROW EXECUTE FUNCTION {}.disk_full()"
                ).format(schema, sql.Identifier(table), schema)
            )

    def free(self) -> None:
        for table in REGISTRY_TABLES:
            self.schemas.execute(
                sql.SQL("DROP TRIGGER disk_full ON {}.{}").format(
                    sql.Identifier(self.schema), sql.Identifier(table)
                )
            )


class Tmpfs:
    """A small tmpfs mounted at `where` (root only), filled up by a file of its own."""

    def __init__(self, where: Path, size: str, undo: contextlib.ExitStack) -> None:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
        undo.callback(subprocess.run, ["umount", str(where)], check=True)
        self.where = where
        self.filler = where / "filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for chunk in (1 << 16, 1 << 12, 1):
                with contextlib.suppress(OSError):  # ENOSPC
                    while True:
                        os.write(fd, b"\0" * chunk)
        finally:
            os.close(fd)
        assert os.statvfs(self.where).f_bavail == 0

    def free(self) -> None:
        self.filler.unlink()


class SqliteTmpfs(Storage):
    """The SQLite file on a tmpfs of 4 MB."""

    def __init__(self, tmp_path: Path, undo: contextlib.ExitStack) -> None:
        (tmp_path / "fs").mkdir()
        self.fs = Tmpfs(tmp_path / "fs", "4m", undo)
        self.url = f"sqlite:///{self.fs.where}/registry.db"

    def fill(self) -> None:
        self.fs.fill()

    def free(self) -> None:
        self.fs.free()


class PostgresTmpfs(Storage):
    """A PostgreSQL schema whose tables and indexes are in a tablespace on a tmpfs of 8 MB."""

    def __init__(self, schemas: PostgresSchemas, undo: contextlib.ExitStack) -> None:
        with psycopg.connect(schemas.base_url, autocommit=True) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("no postgres user here: the PostgreSQL server runs elsewhere")
        if row is None or not Path(row[0]).is_dir():
            pytest.skip("the PostgreSQL server runs on another machine")
        # Not under tmp_path, which the server's user cannot reach into.
        where = Path(tempfile.mkdtemp(prefix="backprop-tablespace-"))
        undo.callback(where.rmdir)
        self.fs = Tmpfs(where, "8m", undo)
        os.chown(where, user.pw_uid, user.pw_gid)
        tablespace = f"bp_full_{uuid.uuid4().hex[:12]}"
        schemas.execute(
            sql.SQL("CREATE TABLESPACE {} LOCATION {}").format(
                sql.Identifier(tablespace), sql.Literal(str(where))
            )
        )
        undo.callback(
            schemas.execute, sql.SQL("DROP TABLESPACE {}").format(sql.Identifier(tablespace))
        )
        schema = schemas.new_name()
        schemas.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        undo.callback(
            schemas.execute, sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema))
        )
        url = schema_url(schemas.base_url, schema)
        self.url = url.replace(
            "search_path%3D", f"default_tablespace%3D{tablespace}%20-csearch_path%3D"
        )
        assert self.url != url

    def fill(self) -> None:
        self.fs.fill()

    def free(self) -> None:
        self.fs.free()


STORAGES = ["sqlite-pages", "postgres-53100", "sqlite-tmpfs", "postgres-tmpfs"]


@pytest.fixture(params=STORAGES)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    kind: str = request.param
    if kind.endswith("tmpfs") and os.geteuid() != 0:
        pytest.skip("only root mounts a tmpfs; the fault-injected cases cover the rest")
    with contextlib.ExitStack() as undo:  # after the apps on the storage have stopped
        if kind == "sqlite-pages":
            yield SqlitePages(tmp_path)
        elif kind == "sqlite-tmpfs":
            yield SqliteTmpfs(tmp_path, undo)
        else:
            schemas: PostgresSchemas = request.getfixturevalue("postgres_schemas")
            yield (
                PostgresTriggers(schemas)
                if kind == "postgres-53100"
                else PostgresTmpfs(schemas, undo)
            )


@pytest.fixture
async def started(storage: Storage) -> AsyncIterator[tuple[Apps, httpx.AsyncClient, FastAPI]]:
    """An app on the storage (its lifespan running), stopped before the storage is removed."""
    apps = Apps(storage.url)
    try:
        client = await apps()
        app = apps.apps[id(client)]
        storage.attach(app)
        yield apps, client, app
    finally:
        await apps.close()


async def refused(response: httpx.Response) -> None:
    problem = assert_problem(response, 507, type_suffix="storage-full")
    assert problem["title"] == "Storage full"
    assert "storage is full" in problem["detail"] and "nothing was written" in problem["detail"]


async def test_a_full_disk_refuses_writes_with_507_and_keeps_what_is_stored(
    storage: Storage, started: tuple[Apps, httpx.AsyncClient, FastAPI]
) -> None:
    _, client, _ = started
    await create(client, model("kept", WIDE))
    rows = noisy(64)
    assert (await client.post("/v1/datasets", json={"name": "rows", **rows})).status_code == 201
    before = await parameters_text(client, "kept")
    parameters = (await client.get("/v1/models/kept/parameters")).json()["parameters"]
    step = {"inputs": rows["inputs"][:8], "targets": rows["targets"][:8]}
    more = noisy(200, seed=1)
    writes = [
        ("POST", "/v1/models", model("new", WIDE)),
        ("PUT", "/v1/models/kept/parameters", {"parameters": parameters}),
        ("POST", "/v1/models/kept/train-step", step),
        ("POST", "/v1/datasets", {"name": "more", **more}),
        ("POST", "/v1/models/kept/train", {"dataset": more, "epochs": 1, "batch_size": 50,
                                            "learning_rate": 0.1, "seed": 1}),
    ]  # fmt: skip
    ready = await client.get("/readyz")
    assert ready.json() == {"status": "ready", "storage": "ok"}

    storage.fill()
    for method, path, body in writes:
        await refused(await client.request(method, path, json=body))
    # Reads go on, and find everything as it was.
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "storage": "full"}
    assert value(await scrape(client), "backprop_registry_storage_full") == 1
    assert (await client.get("/v1/models/kept")).json()["version"] == 1
    assert await parameters_text(client, "kept") == before
    forward = await client.post("/v1/models/kept/forward", json={"inputs": [[0.1, 0.2]]})
    assert forward.status_code == 200, forward.text
    assert [m["name"] for m in (await client.get("/v1/models")).json()["items"]] == ["kept"]
    assert [d["name"] for d in (await client.get("/v1/datasets")).json()["items"]] == ["rows"]
    assert (await client.get("/v1/jobs")).json()["total"] == 0

    storage.free()
    statuses = [(await client.request(m, p, json=b)).status_code for m, p, b in writes]
    assert statuses == [201, 200, 200, 201, 202]
    assert (await client.get("/readyz")).json() == {"status": "ready", "storage": "ok"}
    assert value(await scrape(client), "backprop_registry_storage_full") == 0
    (job,) = (await client.get("/v1/jobs")).json()["items"]
    assert (await wait_for(client, job["id"]))["state"] == "succeeded"
    assert (await client.get("/v1/models/kept")).json()["version"] == 4


async def test_a_job_that_meets_a_full_disk_is_interrupted_and_resumes(
    storage: Storage, started: tuple[Apps, httpx.AsyncClient, FastAPI]
) -> None:
    """Held after step 12, the disk fills: the checkpoint of epoch 2 (step 16) is refused, and
    the job is marked interrupted at epoch 1's (once the registry takes the write)."""
    _, client, app = started
    await create(client, model("long", WIDE))
    pause = Pause(app.state.jobs.runner, 12)
    job = await train(
        client, "long", dataset=noisy(64), epochs=100_000, batch_size=8, learning_rate=0.01,
        seed=3,
    )  # fmt: skip
    await pause.wait()
    storage.fill()
    pause.release()
    registry = app.state.store.registry
    with anyio.fail_after(30):
        while (
            registry.storage_state() == "ok"
            and (await job_of(client, job["id"]))["state"] == "running"
        ):
            await anyio.sleep(0.02)
    storage.free()
    stopped = await wait_for(client, job["id"], ["interrupted"], timeout=30)
    assert "storage is full" in stopped["error"], stopped
    assert stopped["checkpoint"] == {"epoch": 1, "step": 8, "version": 2}
    assert (stopped["epoch"], stopped["step"]) == (1, 8)
    assert (await client.get("/v1/models/long")).json()["version"] == 2
    assert (await client.post(f"/v1/jobs/{job['id']}/resume")).status_code == 202
    await wait_for(client, job["id"], ["running"], step=16)
    await client.post(f"/v1/jobs/{job['id']}/cancel")
    done = await wait_for(client, job["id"])
    assert done["state"] == "cancelled" and done["error"] is None
