"""Exceptions raised by the model registry.

They carry no HTTP meaning: the web layer maps them to status codes.
"""

from __future__ import annotations

import re

# userinfo in "scheme://user:password@host"; the password must never reach logs or responses.
_PASSWORD_RE = re.compile(r"(//[^/@:]*):[^/@]*@")


class RegistryError(Exception):
    """Base class of every error the registry raises."""


class ModelNotFound(RegistryError):
    """No model with this name exists."""

    def __init__(self, name: str) -> None:
        super().__init__(f"model {name!r} not found")
        self.name = name


class ModelExists(RegistryError):
    """The name is already taken by another model."""

    def __init__(self, name: str) -> None:
        super().__init__(f"model {name!r} already exists")
        self.name = name


class VersionConflict(RegistryError):
    """A compare-and-swap failed: the model is not at the version the caller expected."""

    def __init__(self, name: str, expected: int, actual: int) -> None:
        super().__init__(
            f"model {name!r} is at version {actual}, not at the expected version {expected}"
        )
        self.name = name
        self.expected = expected
        self.actual = actual


class VersionNotFound(RegistryError):
    """The requested version never existed or has been pruned.

    ``kept`` is the inclusive range ``(oldest, newest)`` of versions still stored.
    """

    def __init__(self, name: str, version: int, kept: tuple[int, int] | None = None) -> None:
        if kept is not None and 1 <= version < kept[0]:
            message = f"version {version} of model {name!r} is not kept"
        else:
            message = f"version {version} of model {name!r} does not exist"
        if kept is not None:
            message += f"; kept versions are {kept[0]}..{kept[1]}"
        super().__init__(message)
        self.name = name
        self.version = version
        self.kept = kept


class RegistryUnavailable(RegistryError):
    """The storage cannot be opened or reached, or the registry is closed."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


class StorageFull(RegistryError):
    """A write was refused because the storage is full (SQLite's SQLITE_FULL, PostgreSQL's
    SQLSTATE 53100 disk_full). Nothing of it was written; what was stored is intact, reads go
    on, and writes succeed again once space has been freed."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


class InvalidRegistryURL(RegistryError):
    """The registry URL is malformed or names a backend that is not available.

    ``url`` has any password replaced by ``***``.
    """

    def __init__(self, url: str, reason: str = "unsupported registry URL") -> None:
        self.url = _PASSWORD_RE.sub(r"\1:***@", url)
        self.reason = reason
        super().__init__(f"invalid registry URL {self.url!r}: {reason}")


class ModelBusy(RegistryError):
    """A training job is training the model, so no other write may change it."""

    def __init__(self, name: str, job: str) -> None:
        super().__init__(
            f"model {name!r} is being trained by job {job!r}; cancel the job or wait for it to end"
        )
        self.name = name
        self.job = job


class ModelChanged(RegistryError):
    """A job cannot resume: its model is no longer at the version of the job's checkpoint."""

    def __init__(self, name: str, job: str, expected: int, actual: int) -> None:
        super().__init__(
            f"job {job!r} cannot resume: model {name!r} is at version {actual}, not at the "
            f"version {expected} of the job's last checkpoint"
        )
        self.name = name
        self.job = job
        self.expected = expected
        self.actual = actual


class DatasetNotFound(RegistryError):
    """No dataset with this name exists."""

    def __init__(self, name: str) -> None:
        super().__init__(f"dataset {name!r} not found")
        self.name = name


class DatasetExists(RegistryError):
    """The name is already taken by another dataset."""

    def __init__(self, name: str) -> None:
        super().__init__(f"dataset {name!r} already exists")
        self.name = name


class DatasetInUse(RegistryError):
    """A queued or running job trains on the dataset, so it cannot be deleted."""

    def __init__(self, name: str, job: str) -> None:
        super().__init__(f"dataset {name!r} is used by job {job!r}, which has not ended")
        self.name = name
        self.job = job


class JobNotFound(RegistryError):
    """No job with this id exists."""

    def __init__(self, job: str) -> None:
        super().__init__(f"job {job!r} not found")
        self.job = job


class JobStateConflict(RegistryError):
    """The job is in a state from which the requested transition is not possible."""

    def __init__(self, job: str, state: str, action: str) -> None:
        super().__init__(f"job {job!r} is {state}: it cannot {action}")
        self.job = job
        self.state = state
        self.action = action


class JobLost(RegistryError):
    """The caller no longer runs the job: another replica declared it interrupted, or it ended."""

    def __init__(self, job: str, owner: str) -> None:
        super().__init__(f"job {job!r} is no longer run by {owner!r}")
        self.job = job
        self.owner = owner
