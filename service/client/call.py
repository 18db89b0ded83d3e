"""One request of the API, built once: :class:`Call` says what to send and how to read the
answer, and the sync and async clients only execute it.

Arguments arrive as plain Python or NumPy and leave as JSON: arrays by ``.tolist()``, NumPy
scalars by ``.item()``, Pydantic models (an answer's ``network`` or ``parameters`` sent back)
by ``model_dump``. Nothing of the server is imported: requests are plain JSON, answers are read
as the client's own types (:mod:`service.client.types`).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote

import httpx
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from service import __version__
from service.client.errors import UnexpectedAnswer, error_for

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
M = TypeVar("M", bound=BaseModel)
I_co = TypeVar("I_co", covariant=True)
C_co = TypeVar("C_co", covariant=True)
Cursor = TypeVar("Cursor")

JSON = Any
Params = dict[str, str | int | float | bool]
#: A batch, rows x columns: nested sequences of numbers or a 2-D array.
Matrix = Sequence[Sequence[float]] | NDArray[Any]
#: One sample: a sequence of numbers or a 1-D array.
Vector = Sequence[float] | NDArray[Any]
#: A JSON object as a mapping, or a Pydantic model (an answer's ``network``, ``parameters``).
Obj = Mapping[str, Any] | BaseModel

#: What reading a body may raise when it is not what the operation answers with: pydantic's
#: ValidationError and json's JSONDecodeError are ValueErrors, as is NumPy's refusal of pickled
#: data; a truncated ``.npy`` or ``.npz`` raises EOFError, OSError or BadZipFile, a missing
#: array KeyError.
UNREADABLE = (ValueError, KeyError, EOFError, OSError, zipfile.BadZipFile)

NPY = "application/x-npy"
NPZ = "application/x-npz"
ONNX = "application/onnx"


@dataclass(frozen=True)
class Call(Generic[T_co]):
    """A request (method, path with its names quoted, query, body, headers) and the reading of
    its successful answer; any other answer raises the :class:`~service.client.ApiError` of
    its status, a success that does not read :class:`~service.client.UnexpectedAnswer`."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T_co]
    params: Params = field(default_factory=dict)
    json: JSON = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The request, on ``http``'s base URL with its headers and timeout."""
        return http.build_request(
            self.method,
            self.path,
            params=self.params,
            json=self.json,
            content=self.content,
            headers=self.headers,
        )

    def result(self, response: httpx.Response) -> T_co:
        """The parsed answer; raises for an error status (the body must have been read)."""
        if not response.is_success:
            raise error_for(response)
        try:
            return self.parse(response)
        except UNREADABLE as error:
            raise UnexpectedAnswer.of(response, error) from error


def path(template: str, *names: str) -> str:
    """``path("/v1/models/{}/forward", name)`` with every name percent-encoded, ``/`` too."""
    return template.format(*(quote(name, safe="") for name in names))


def params(**values: str | int | float | bool | None) -> Params:
    """Query parameters without the ones left out (``None``)."""
    return {key: value for key, value in values.items() if value is not None}


def upload(
    where: str,
    parse: Callable[[httpx.Response], T],
    data: bytes,
    media: str,
    query: Params | None = None,
    *,
    accept: str | None = None,
) -> Call[T]:
    """``POST where`` with the file ``data`` of type ``media`` as the body (and the answer
    asked for as ``accept``)."""
    headers = {"Content-Type": media}
    if accept is not None:
        headers["Accept"] = accept
    return Call("POST", where, parse, params=query or {}, content=data, headers=headers)


def precondition(version: int | None) -> dict[str, str]:
    """The ``If-Match`` header for a version (an ETag is the version in quotes)."""
    return {} if version is None else {"If-Match": f'"{version}"'}


def plain(value: Any) -> JSON:
    """``value`` as JSON-ready Python: arrays and NumPy numbers to lists and floats, models to
    their JSON form, mappings and sequences recursively."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def body(**fields: Any) -> dict[str, JSON]:
    """A JSON body of the fields that are not ``None``."""
    return {key: plain(value) for key, value in fields.items() if value is not None}


def numbers(row: Vector) -> str:
    """One sample for a query parameter: ``0.23,0.55`` (each float exactly, by ``repr``)."""
    return ",".join(repr(float(v)) for v in np.asarray(row, dtype=np.float64).ravel())


def rows(batch: Matrix) -> str:
    """A batch for a query parameter: ``0.23,0.55;0.1,0.9``."""
    return ";".join(numbers(row) for row in np.atleast_2d(np.asarray(batch, dtype=np.float64)))


def npy(array: NDArray[Any]) -> bytes:
    """``array`` as an ``.npy`` file."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def npz(inputs: NDArray[Any], targets: NDArray[Any]) -> bytes:
    """A batch as an ``.npz`` file of the arrays ``inputs`` and ``targets``."""
    buffer = io.BytesIO()
    np.savez(buffer, inputs=np.ascontiguousarray(inputs), targets=np.ascontiguousarray(targets))
    return buffer.getvalue()


# -- reading answers --------------------------------------------------------------------------


def schema(cls: type[M]) -> Callable[[httpx.Response], M]:
    """Read a JSON answer as ``cls``, one of the client's types."""

    def parse(response: httpx.Response) -> M:
        return cls.model_validate_json(response.content)

    return parse


def nothing(response: httpx.Response) -> None:
    """A 204 answer."""


def text(response: httpx.Response) -> str:
    """A Markdown or SVG answer."""
    return response.text


def content(response: httpx.Response) -> bytes:
    """A file (ONNX, ``.npz``, JSON export) as it was sent."""
    return response.content


def array(response: httpx.Response) -> NDArray[Any]:
    """An ``.npy`` answer, read without pickle."""
    loaded: NDArray[Any] = np.load(io.BytesIO(response.content), allow_pickle=False)
    return loaded


def arrays(*names: str) -> Callable[[httpx.Response], tuple[NDArray[Any], ...]]:
    """Read an ``.npz`` answer's arrays ``names``, without pickle."""

    def parse(response: httpx.Response) -> tuple[NDArray[Any], ...]:
        with np.load(io.BytesIO(response.content), allow_pickle=False) as archive:
            return tuple(archive[name] for name in names)

    return parse


# -- what both clients share --------------------------------------------------------------------

DEFAULT_URL = "http://127.0.0.1:8000"
Timeout = float | httpx.Timeout | None


def client_headers(api_key: str | None) -> dict[str, str]:
    """The headers of every request: the API key as a bearer token, when there is one."""
    headers = {"User-Agent": f"backprop-service-client/{__version__}"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def stream_timeout(timeout: httpx.Timeout, read: float) -> httpx.Timeout:
    """``timeout`` with a read timeout of at least ``read`` (None stays None: no timeout)."""
    longer = None if timeout.read is None else max(timeout.read, read)
    return httpx.Timeout(
        connect=timeout.connect, read=longer, write=timeout.write, pool=timeout.pool
    )


class Page(Protocol[I_co, C_co]):
    """A page of a listing: its ``items`` and the cursor of the next page (None on the last)."""

    @property
    def items(self) -> Sequence[I_co]: ...
    @property
    def next_cursor(self) -> C_co | None: ...


class Pages(Protocol[I_co, Cursor]):
    """A listing read page by page: the call of the page after ``cursor`` (None: the first)."""

    def __call__(self, cursor: Cursor | None, /) -> Call[Page[I_co, Cursor]]: ...
