"""The model operations, transport-free: a new model's parameters drawn or converted and the
model stored, a model file (JSON, ONNX, ``.npz``) written for export, and one read for import.
Each runs where its size says: inline when small, else in a worker thread or a worker process,
and a large file is handed back in blocks to send one at a time.

The transports parse the request before and encode the result after; where the work runs is
decided here only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from secrets import randbits
from typing import Any, Literal, TypeVar

from numpy.typing import ArrayLike

from service import specs
from service.core import Network, Optimizer, Params, Scheme, check_parameters, initialize
from service.interop import archive, onnx_io
from service.operations import files, sizes
from service.operations.compute import Operations
from service.registry import Encoded, ModelRecord
from service.store import ModelStore

T = TypeVar("T")

ExportFormat = Literal["json", "onnx", "npz"]


# -- creating a model ---------------------------------------------------------------------------


async def drawn(
    store: ModelStore, network: Network, scheme: Scheme, seed: int | None
) -> tuple[Params, int]:
    """Initial parameters of ``network`` drawn by ``scheme`` from ``seed`` (a random one when
    ``None``), and the seed; many of them drawn in a worker thread."""
    if seed is None:
        seed = randbits(63)
    draw = partial(initialize, network, scheme, seed)
    params = draw() if network.parameter_count <= sizes.LARGE else await store.offload(draw)
    return params, seed


async def converted(store: ModelStore, network: Network, convert: Callable[[], Params]) -> Params:
    """The core's parameters of ``network`` that ``convert()`` makes of those a transport was
    given; many of them converted in a worker thread."""
    return convert() if network.parameter_count <= sizes.LARGE else await store.offload(convert)


async def create(
    store: ModelStore,
    name: str,
    network: Network,
    optimizer: Optimizer,
    params: Params | Encoded,
    *,
    init: dict[str, Any] | None,
    description: str | None,
    tags: list[str],
) -> ModelRecord:
    """Store a new model ``name`` of ``network`` with ``params`` at version 1; ``init`` the
    scheme and seed they were drawn by, if they were."""
    spec = {
        "network": specs.network_to_dict(network),
        "optimizer": specs.optimizer_to_dict(optimizer),
        "init": init,
        "description": description,
        "tags": tags,
    }
    return await store.create(name, spec, params)


# -- importing a model file ---------------------------------------------------------------------


Pairs = Sequence[tuple[ArrayLike, ArrayLike]]


def read_file(
    content: bytes, *, onnx: bool, loss: str | None, max_bytes: int
) -> tuple[dict[str, Any], Pairs]:
    """An ONNX or ``.npz`` model file: the fields of its model description (name, network,
    ``loss`` when given) and its parameters as pairs of weights and biases, not yet checked."""
    if onnx:
        imported = onnx_io.from_onnx(content)
        fields: dict[str, Any] = {
            "name": imported.name,
            "network": imported.network(loss or imported.loss or onnx_io.default_loss(imported)),
        }
        return fields, imported.params
    fields, pairs = archive.from_npz(content, max_bytes)
    if loss is not None and isinstance(fields.get("network"), dict):
        fields["network"] = {**fields["network"], "loss": loss}
    return fields, pairs


def encoded(network: Network, pairs: Pairs) -> Encoded:
    """The parameters ``pairs`` of ``network``, checked, encoded as the registry stores them."""
    return specs.encoded(check_parameters(network, pairs))


async def imported(store: ModelStore, chunks: list[bytes], read: Callable[[bytes], T]) -> T:
    """``read`` of the model file in ``chunks``: a large file is joined, read, checked,
    converted and encoded for the registry in a worker process (``read`` a partial that
    pickles); the server passes its bytes on."""
    if not sizes.large_body(chunks):
        return read(b"".join(chunks))
    return await store.isolate(_read_joined, read, chunks)


def _read_joined(read: Callable[[bytes], T], chunks: list[bytes]) -> T:
    return read(b"".join(chunks))


# -- exporting a model --------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFile:
    """A model's file: its attachment's ``filename``, the model's ``version`` (for its ETag)
    and the file :class:`Written`."""

    filename: str
    version: int
    file: files.Written


async def export(
    ops: Operations, name: str, format: ExportFormat, version: int | None = None
) -> ModelFile:
    """The model ``name`` (its current version, or the kept ``version``) as a file: the JSON
    body that recreates it, an ONNX graph or an ``.npz`` archive; admitted by its size first."""
    model = await ops.store.load(name, version)
    spec, net, params = model.record.spec, model.network, model.params
    ops.admit_export(net, binary=format != "json")
    render: Callable[[], bytes | list[bytes]]
    if format == "onnx":
        render = partial(onnx_io.to_onnx, net, params, name, model.version)
    elif format == "npz":
        render = partial(archive.to_npz, archive.create_body(name, spec, None), params)
    else:
        render = partial(json_file, name, spec, params)
    written = await files.write(ops.store, net.parameter_count, render)
    return ModelFile(f"{name}-v{model.version}.{format}", model.record.version, written)


def json_file(name: str, spec: specs.JSON, params: Params) -> list[bytes]:
    """The JSON export of a model, in blocks."""
    return files.blocks(archive.json_pieces(name, spec, params))
