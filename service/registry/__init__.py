"""Model registry: stores each model's JSON spec and versioned bundles of named arrays.

Storage only; it knows nothing of HTTP or of the neural-network maths.
"""

from __future__ import annotations

from .base import Registry
from .codec import Encoded
from .errors import (
    DatasetExists,
    DatasetInUse,
    DatasetNotFound,
    InvalidRegistryURL,
    JobLost,
    JobNotFound,
    JobStateConflict,
    ModelBusy,
    ModelChanged,
    ModelExists,
    ModelNotFound,
    RegistryError,
    RegistryUnavailable,
    StorageFull,
    VersionConflict,
    VersionNotFound,
)
from .memory import MemoryRegistry
from .postgres import PostgresRegistry
from .records import (
    ACTIVE,
    ENDED,
    RESUMABLE,
    Arrays,
    Checkpoint,
    DatasetRecord,
    HistoryEntry,
    JobEvent,
    JobRecord,
    JobState,
    ModelRecord,
    NewJob,
    Snapshot,
    StorageState,
    VersionInfo,
)
from .sqlite import SqliteRegistry

__all__ = [
    "ACTIVE",
    "ENDED",
    "RESUMABLE",
    "Arrays",
    "Checkpoint",
    "DatasetExists",
    "DatasetInUse",
    "DatasetNotFound",
    "DatasetRecord",
    "Encoded",
    "HistoryEntry",
    "InvalidRegistryURL",
    "JobEvent",
    "JobLost",
    "JobNotFound",
    "JobRecord",
    "JobState",
    "JobStateConflict",
    "MemoryRegistry",
    "ModelBusy",
    "ModelChanged",
    "ModelExists",
    "ModelNotFound",
    "ModelRecord",
    "NewJob",
    "PostgresRegistry",
    "Registry",
    "RegistryError",
    "RegistryUnavailable",
    "Snapshot",
    "SqliteRegistry",
    "StorageFull",
    "StorageState",
    "VersionConflict",
    "VersionInfo",
    "VersionNotFound",
    "open_registry",
]

_EXPECTED = (
    "expected memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db or"
    " postgresql://user:password@host:port/dbname"
)


def open_registry(url: str, keep_versions: int = 20) -> Registry:
    """Open the registry a URL names, keeping `keep_versions` versions per model.

    ``memory://`` is an in-process registry. ``sqlite:///rel/path.db`` is a file relative to
    the current directory and ``sqlite:////abs/path.db`` an absolute one (SQLAlchemy's
    convention). ``postgresql://`` (or ``postgres://``) is a libpq connection URL; a schema
    is chosen with ``?options=-csearch_path%3Dname``. Raises InvalidRegistryURL for anything
    else and RegistryUnavailable if the storage cannot be opened.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise InvalidRegistryURL(url, _EXPECTED)
    if scheme == "memory":
        if rest:
            raise InvalidRegistryURL(url, "memory:// takes no path")
        return MemoryRegistry(keep_versions)
    if scheme == "sqlite":
        return SqliteRegistry(_sqlite_path(url, rest), keep_versions)
    if scheme in ("postgres", "postgresql"):
        # libpq wants the scheme in lower case.
        return PostgresRegistry(f"postgresql://{rest}", keep_versions)
    if scheme.startswith(("postgresql+", "postgres+")):
        # SQLAlchemy's "+driver" suffix: refused rather than guessed at, to keep one spelling.
        raise InvalidRegistryURL(url, "drop the '+driver' part: use postgresql://")
    raise InvalidRegistryURL(url, f"unknown scheme {scheme!r}; {_EXPECTED}")


def _sqlite_path(url: str, rest: str) -> str:
    # rest is "<host>/<path>"; the host must be empty, so rest starts with "/".
    if not rest.startswith("/"):
        raise InvalidRegistryURL(url, "sqlite URLs have no host; " + _EXPECTED)
    path = rest[1:]
    if not path or path.endswith("/"):
        raise InvalidRegistryURL(url, "no database file given; " + _EXPECTED)
    if path == ":memory:":
        raise InvalidRegistryURL(url, "use memory:// for an in-memory registry")
    if "?" in path or "#" in path:
        # Silently creating a file named "x.db?mode=ro" would be worse than refusing.
        raise InvalidRegistryURL(url, "query strings and fragments are not supported")
    return path
