"""All settings of the service, read from ``BACKPROP_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class Limits(BaseSettings):
    """Size limits of requests. The schemas declare them, so they show in the OpenAPI spec."""

    model_config = SettingsConfigDict(env_prefix="BACKPROP_", extra="ignore")

    max_layers: int = Field(64, ge=1, description="Most layers a network may have.")
    max_units: int = Field(4096, ge=1, description="Most units (and inputs) per layer.")
    max_parameters: int = Field(
        5_000_000, ge=1, description="Most weights and biases a network may have in all."
    )
    max_batch_rows: int = Field(
        100_000, ge=1, description="Most rows in one batch of inputs or targets."
    )


#: The built-in limits, which no environment changes: in force outside any app's requests.
DEFAULT_LIMITS = Limits.model_construct()
#: The limits in force: set for each request by the app serving it.
LIMITS_IN_FORCE: ContextVar[Limits] = ContextVar("backprop_limits", default=DEFAULT_LIMITS)


def current_limits() -> Limits:
    """The size limits of the app whose request is being served (its :class:`Settings`): the
    request schemas check them. Threads and worker processes that serve a request get them
    from the request (``threads.LowPriorityPool``, ``workers.WorkerPool``)."""
    return LIMITS_IN_FORCE.get()


@contextmanager
def limits_in_force(limits: Limits) -> Iterator[None]:
    """``limits`` are :func:`current_limits` within the block."""
    token = LIMITS_IN_FORCE.set(limits)
    try:
        yield
    finally:
        LIMITS_IN_FORCE.reset(token)


class Settings(Limits):
    """The one place where the service's configuration lives; ``create_app(settings)`` takes it."""

    registry: str = Field(
        "sqlite:///data/backprop.db",
        description="Registry URL: memory://, sqlite:///relative.db, sqlite:////absolute.db or "
        "postgresql://user@host:5432/database.",
    )
    host: str = Field("127.0.0.1", description="Address `backprop-service serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `backprop-service serve` uses.")
    workers: int = Field(1, ge=1, description="uvicorn worker processes.")
    max_body_bytes: int = Field(32 * MIB, ge=1024, description="Largest request body (413 above).")
    keep_versions: int = Field(20, ge=1, description="Parameter versions kept per model.")
    cache_models: int = Field(256, ge=0, description="Models whose parameters stay in memory.")
    cache_bytes: int = Field(
        256 * MIB,
        ge=0,
        description="Bytes of decoded parameters (and optimizer state) kept in memory, least "
        "recently used out first; a model larger than this is decoded on every request.",
    )
    compute_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Threads for the computations too large to run on the event loop "
        "(default: the CPUs).",
    )
    compute_processes: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 1) // 2),
        ge=0,
        description="Worker processes for the largest computations (estimated at "
        "compute_process_seconds or more; default: half the CPUs). Each runs one computation "
        "at a time, below the server's CPU priority, holding no lock the server needs, with "
        "at most 2 x max_request_memory_bytes + max_answer_bytes of memory above its start "
        "(a computation past that is answered 413, a worker that dies 503 and is replaced). "
        "0: those computations run in the compute threads instead.",
    )
    compute_process_seconds: float = Field(
        0.1,
        ge=0,
        description="Estimated compute time (multiply-adds / compute_rate) from which a "
        "computation runs in a worker process rather than a thread.",
    )
    compute_process_idle: bool = Field(
        True,
        description="Run the worker processes in Linux's SCHED_IDLE class: a request the server "
        "wakes up for takes the CPU from them at once (a niced process keeps it for the rest "
        "of its time slice, milliseconds). They hold no lock the server needs, so only their "
        "own work waits; on a machine whose CPUs other programs keep busy it can wait long. "
        "false: they run at compute_nice instead.",
    )
    compute_idle: bool = Field(
        False,
        description="Run the compute threads in Linux's SCHED_IDLE class instead: they give "
        "way to the event loop at once, but a thread holding Python's interpreter lock then "
        "waits for an idle CPU, and so does the event loop: with other busy processes on the "
        "machine requests can stall for hundreds of milliseconds. Only for a machine the "
        "service has to itself.",
    )
    compute_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="How much lower the CPU priority of the compute threads (without "
        "compute_idle) and processes (without compute_process_idle) is than that of the event "
        "loop (Linux nice; 0: the same).",
    )
    malloc_mmap_threshold_mb: int = Field(
        32,
        ge=0,
        le=1024,
        description="Allocations below this many MiB come from the C heap, not fresh memory "
        "mappings, and twice this much freed memory stays for reuse (glibc): NumPy's "
        "temporaries then cost no page faults. 0: the allocator's defaults.",
    )
    switch_interval_ms: float = Field(
        1.0,
        gt=0,
        le=100,
        description="How long a thread may hold Python's interpreter lock while another waits "
        "(sys.setswitchinterval; Python's default is 5 ms): a worker thread serialising a large "
        "answer delays a small request on the event loop by up to this much.",
    )
    log_level: str = Field("info", description="uvicorn log level.")
    access_log: bool = Field(
        False,
        description="One JSON line per request on stderr (logger backprop.access). Off by "
        "default: a line per request costs a write per request; server errors are logged "
        "either way.",
    )
    max_dataset_bytes: int = Field(
        64 * MIB, ge=1, description="Largest dataset, in bytes of its arrays (413 above)."
    )
    max_jobs: int = Field(
        2, ge=1, description="Training jobs one process runs at once; more wait, queued."
    )
    job_checkpoint_steps: int = Field(
        0,
        ge=0,
        description="Besides every epoch's end, a job also checkpoints (a new model version and "
        "a progress event) every this many steps; 0: at epoch ends only.",
    )
    job_idle: bool = Field(
        False,
        description="Run training threads in Linux's SCHED_IDLE class instead of at job_nice "
        "(see compute_idle for the risk: the interpreter lock makes the event loop wait with "
        "them).",
    )
    job_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="How much lower the CPU priority of training threads is than that of "
        "request handling (Linux nice; 0: the same).",
    )
    job_heartbeat_seconds: float = Field(
        2.0, gt=0, description="How often a process records that its jobs are alive."
    )
    job_stale_seconds: float = Field(
        30.0,
        gt=0,
        description="A job whose heartbeat is older than this is marked interrupted (its "
        "process died); must exceed job_heartbeat_seconds.",
    )

    api_keys: SecretStr = Field(
        SecretStr(""),
        description="API keys with their roles, `key:role` separated by commas (roles `read`, "
        "`train`, `admin`); with none here nor in api_keys_file, no key is needed.",
    )
    api_keys_file: Path | None = Field(
        None, description="A file of API keys, one `key:role` a line; `#` starts a comment."
    )
    public_health: bool = Field(
        True, description="/healthz, /readyz and /v2/health/* answer without a key."
    )
    public_docs: bool = Field(
        True, description="/docs, /redoc, /openapi.json and their assets answer without a key."
    )
    public_metrics: bool = Field(False, description="/metrics answers without a key.")
    max_compute_seconds: float = Field(
        30.0,
        gt=0,
        description="Compute budget of one request: a request whose estimated compute time "
        "(multiply-adds / compute_rate) exceeds it gets 422 before any computing.",
    )
    max_request_memory_bytes: int = Field(
        1 << 30,
        ge=16 * MIB,
        description="Working memory one request's computation may use, as estimated before it "
        "starts (activations, gradients, the answer as it is built): a forward or gradient "
        "without trace or deltas runs its rows in blocks and fits any batch; other work "
        "estimated above this gets 413, saying the estimate and what to change.",
    )
    max_answer_bytes: int = Field(
        256 * MIB,
        ge=1024,
        description="Largest answer, as estimated before the work starts (24 bytes a number "
        "as JSON, the dtype's size in binary formats): above it, 413.",
    )
    compute_rate: float = Field(
        1e9,
        gt=0,
        description="Multiply-adds per second the compute budget assumes (one core, float64).",
    )

    @field_validator("registry")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.lower().startswith(("memory://", "sqlite:///", "postgresql://", "postgres://")):
            # The URL itself is not repeated: it may hold a password.
            raise ValueError(
                "the registry URL must start with memory://, sqlite:/// or postgresql://"
            )
        return url

    @model_validator(mode="after")
    def _stale_after_heartbeat(self) -> Settings:
        if self.job_stale_seconds <= self.job_heartbeat_seconds:
            raise ValueError("job_stale_seconds must exceed job_heartbeat_seconds")
        return self
