"""A typed Python client of the service's ``/v1`` API, on httpx: :class:`Client` (blocking)
and :class:`AsyncClient` (asyncio), with the same methods.

::

    from service.client import Client, NotFound

    with Client("http://127.0.0.1:8000") as client:
        model = client.get_model("seed")               # a ModelPublic
        outputs = client.forward("seed", [[0.23, 0.55]]).outputs

Answers are the client's own Pydantic models (:mod:`service.client.types`: ``ModelPublic``,
``ForwardResponse``, ``JobPublic``, ...), named and shaped as the wire's fields and read
tolerantly: fields a newer server adds are ignored, and no size limit of the client's own
environment applies. Nothing of the server (``service.api``, ``service.core``,
``service.settings``) is imported. Every error answer raises an :class:`ApiError` subclass
chosen by its status, and a success answer that does not read :class:`UnexpectedAnswer` (see
:mod:`service.client.errors`).
"""

from service.client.asynchronous import AsyncClient
from service.client.errors import (
    ApiError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    StorageFull,
    Unauthorized,
    Unavailable,
    UnexpectedAnswer,
)
from service.client.events import Event
from service.client.sync import Client
from service.client.types import (
    BestPublic,
    CheckpointPublic,
    DatasetData,
    DatasetList,
    DatasetPublic,
    DeltaFormOut,
    DeltasOut,
    DeltaTermOut,
    ExplainResponse,
    FactorOut,
    ForwardResponse,
    GradientCheckResponse,
    GradientResponse,
    Health,
    HistoryEntryPublic,
    HistoryList,
    InitPublic,
    InputGradientResponse,
    JobList,
    JobPublic,
    LayeredParameters,
    LayerParameters,
    LayerSpec,
    LayerTraceOut,
    ModelList,
    ModelPublic,
    NetworkSpec,
    NodeTraceOut,
    OptimizerSpec,
    OptimizerStateIO,
    ParameterCheckOut,
    ParametersPublic,
    PathOut,
    Readiness,
    StatelessTrainStepResponse,
    TraceOut,
    TrainStepResponse,
    VersionList,
    VersionPublic,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "BestPublic",
    "CheckpointPublic",
    "Client",
    "Conflict",
    "DatasetData",
    "DatasetList",
    "DatasetPublic",
    "DeltaFormOut",
    "DeltaTermOut",
    "DeltasOut",
    "Event",
    "ExplainResponse",
    "FactorOut",
    "Forbidden",
    "ForwardResponse",
    "GradientCheckResponse",
    "GradientResponse",
    "Health",
    "HistoryEntryPublic",
    "HistoryList",
    "InitPublic",
    "InputGradientResponse",
    "InvalidInput",
    "JobList",
    "JobPublic",
    "LayerParameters",
    "LayerSpec",
    "LayerTraceOut",
    "LayeredParameters",
    "ModelList",
    "ModelPublic",
    "NetworkSpec",
    "NodeTraceOut",
    "NotFound",
    "OptimizerSpec",
    "OptimizerStateIO",
    "ParameterCheckOut",
    "ParametersPublic",
    "PathOut",
    "PayloadTooLarge",
    "PreconditionFailed",
    "Readiness",
    "StatelessTrainStepResponse",
    "StorageFull",
    "TraceOut",
    "TrainStepResponse",
    "Unauthorized",
    "Unavailable",
    "UnexpectedAnswer",
    "VersionList",
    "VersionPublic",
]
