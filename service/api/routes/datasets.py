"""Datasets: training data stored by name, as JSON rows or uploaded as CSV, ``.npz`` or
``.npy``."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from service.api import answers, binary, bodies, convert
from service.api.deps import CursorQuery, JobsDep, StoreDep, name_path, page, per_page
from service.api.problems import problem_responses
from service.api.schemas.common import NAME_PATTERN
from service.api.schemas.jobs import DatasetCreate, DatasetData, DatasetList, DatasetPublic
from service.jobs.datasets import Dataset, from_rows, to_npz
from service.jobs.errors import UnsupportedMediaType
from service.operations import files, sizes
from service.registry import DatasetRecord
from service.store import ModelStore

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
NPY_TYPE = "application/x-npy"
NPZ_TYPES = ("application/x-npz", "application/zip", "application/octet-stream")
SUPPORTED = (JSON_TYPE, CSV_TYPE, NPY_TYPE, *NPZ_TYPES)

DatasetPath = Annotated[str, name_path("dataset", "xor", "The XOR dataset of the create example")]

UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        JSON_TYPE: {
            "schema": DatasetCreate.model_json_schema(),
            "examples": {
                "xor": {
                    "summary": "XOR as JSON rows",
                    "value": {
                        "name": "xor",
                        "inputs": [[0, 0], [0, 1], [1, 0], [1, 1]],
                        "targets": [[0], [1], [1], [0]],
                    },
                }
            },
        },
        CSV_TYPE: {
            "schema": {"type": "string"},
            "example": "x1,x2,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n",
        },
        "application/x-npz": {"schema": {"type": "string", "format": "binary"}},
        NPY_TYPE: {"schema": {"type": "string", "format": "binary"}},
    },
}


def public(record: DatasetRecord) -> DatasetPublic:
    info = record.info
    return DatasetPublic(
        name=record.name,
        rows=info["rows"],
        input_columns=info["input_columns"],
        target_columns=info["target_columns"],
        dtype=info["dtype"],
        source=info["source"],
        size_bytes=record.size_bytes,
        digest=record.digest,
        created_at=record.created_at,
    )


def _json_body(raw: bytes) -> DatasetCreate:
    """The JSON body validated as FastAPI validates bodies, with the same error shapes (decoded
    in pieces: a large body is read in a worker thread that lets others run meanwhile)."""
    value = bodies.loads(raw)
    try:
        return DatasetCreate.model_validate(value)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _json_dataset(chunks: list[bytes], max_bytes: int) -> tuple[str, Dataset]:
    """The name and the rows of a large JSON body, in a worker thread: joined, parsed,
    validated and converted there, and its millions of numbers freed there too."""
    body = _json_body(b"".join(chunks))
    return body.name, from_rows(body.inputs, body.targets, max_bytes)


async def _joined(store: ModelStore, chunks: list[bytes]) -> bytes:
    """The body's chunks as one; a large body joined in a worker thread (a copy of megabytes)."""
    if not sizes.large_body(chunks):
        return b"".join(chunks)
    return await store.offload(partial(b"".join, chunks))


def _required(parameter: str, why: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "missing", "loc": ("query", parameter), "msg": f"Field required {why}"}]
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a dataset",
    description='Store training data under a name: JSON rows `{"name", "inputs", '
    '"targets"}`, or an upload with `?name=`: CSV (`text/csv`, one sample per line, the first '
    "`input_columns` values its inputs and the rest its targets; a first line that is not all "
    "numbers is a header), a `.npz` file (`application/x-npz`, as `numpy.savez` writes it) "
    "with arrays `inputs` and `targets`, or a `.npy` file (`application/x-npy`) of one 2-D "
    "array whose first `input_columns` columns are the inputs. Values are stored bit for bit "
    "(float64, or float32 when the arrays are float32). Datasets whose arrays exceed "
    "`BACKPROP_MAX_DATASET_BYTES` get 413.",
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses=problem_responses(400, 409, 413, 415, 422, 507),
)
async def create_dataset(
    request: Request,
    jobs: JobsDep,
    store: StoreDep,
    response: Response,
    name: Annotated[
        str | None,
        Query(
            pattern=NAME_PATTERN,
            max_length=64,
            description="**Uploads only** (CSV, .npz, .npy): the dataset's name. With a JSON "
            'body it is refused (422): the body has `"name"`.',
        ),
    ] = None,
    input_columns: Annotated[
        int | None,
        Query(
            ge=1,
            description="**CSV and .npy uploads only**: how many leading columns are inputs. "
            "With a JSON body it is refused (422).",
        ),
    ] = None,
) -> DatasetPublic:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in SUPPORTED:
        raise UnsupportedMediaType(media, SUPPORTED)
    if media == JSON_TYPE:
        binary.refuse_with_json("name", name, "uploads (CSV, .npz, .npy)", 'a JSON body has "name"')
        binary.refuse_with_json(
            "input_columns",
            input_columns,
            "CSV and .npy uploads",
            'a JSON body has "inputs" and "targets" apart',
        )
    chunks = [chunk async for chunk in request.stream()]
    dataset: Dataset
    if media == JSON_TYPE and sizes.large_body(chunks):
        work = partial(_json_dataset, chunks, jobs.max_dataset_bytes)
        named, dataset = await store.offload(work)
        name = named
    elif media == JSON_TYPE:
        body = _json_body(b"".join(chunks))
        name = body.name
        dataset = await jobs.parse_rows(body.inputs, body.targets)
    elif name is None:
        raise _required("name", "for an upload: the dataset's name")
    elif ".." in name:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", "name"),
                    "msg": "a dataset name must not contain '..'",
                }
            ]
        )
    elif media in (CSV_TYPE, NPY_TYPE):
        if input_columns is None:
            raise _required("input_columns", "for CSV and .npy: how many leading columns")
        if media == CSV_TYPE:
            dataset = await jobs.parse_csv(await _joined(store, chunks), input_columns)
        else:
            dataset = await jobs.parse_npy(await _joined(store, chunks), input_columns)
    else:
        dataset = await jobs.parse_npz(await _joined(store, chunks))
    record = await jobs.create_dataset(name, dataset)
    response.headers["Location"] = f"/v1/datasets/{record.name}"
    return public(record)


@router.get(
    "",
    summary="List datasets",
    description="Datasets ordered by name, a page at a time. Pass the `next_cursor` of a page "
    "as `cursor` to get the next; it is null on the last page.",
    responses=problem_responses(422),
)
async def list_datasets(
    jobs: JobsDep,
    limit: Annotated[int, per_page("Datasets")] = 50,
    cursor: CursorQuery = None,
) -> DatasetList:
    records, total = await jobs.page_datasets(limit + 1, cursor)
    items, next_cursor = page(records, limit, lambda r: r.name)
    return DatasetList(items=[public(r) for r in items], total=total, next_cursor=next_cursor)


@router.get(
    "/{name}",
    summary="Get a dataset",
    description="The dataset's size, columns, dtype and digest (not its rows).",
    responses=problem_responses(404),
)
async def get_dataset(name: DatasetPath, jobs: JobsDep) -> DatasetPublic:
    return public(await jobs.dataset(name))


@router.get(
    "/{name}/data",
    summary="Get a dataset's rows",
    description="The rows exactly as stored: JSON (`?format=json`, numbers that parse back to "
    "the same floats) or a `.npz` file (`?format=npz`).",
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/DatasetData"}},
                "application/x-npz": {"schema": {"type": "string", "format": "binary"}},
            },
            "description": "The rows.",
        },
        **problem_responses(404, 422),
    },
    response_model=DatasetData,
)
async def get_dataset_data(
    name: DatasetPath,
    jobs: JobsDep,
    store: StoreDep,
    format: Annotated[
        Literal["json", "npz"], Query(description="`json` (the default) or `npz`.")
    ] = "json",
) -> Response:
    record, dataset = await jobs.dataset_data(name)
    numbers = dataset.inputs.size + dataset.targets.size
    if format == "npz":
        attachment = {"Content-Disposition": f'attachment; filename="{record.name}.npz"'}
        render = partial(to_npz, dataset)
        written = await files.write(store, numbers, render)
        return answers.file_response(written, "application/x-npz", attachment)

    def build() -> DatasetData:
        return DatasetData.model_construct(
            name=record.name,
            inputs=convert.matrix(dataset.inputs),
            targets=convert.matrix(dataset.targets),
        )

    return await answers.json_response(store, numbers, build)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a dataset",
    description="Delete the dataset. A dataset that a queued or running job trains on cannot "
    "be deleted (409 naming the job).",
    responses=problem_responses(404, 409, 507),
)
async def delete_dataset(name: DatasetPath, jobs: JobsDep) -> Response:
    await jobs.delete_dataset(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
