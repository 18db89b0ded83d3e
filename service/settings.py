"""All settings of the service, read from ``BACKPROP_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, field_validator
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
    log_level: str = Field("info", description="uvicorn log level.")

    @field_validator("registry")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.lower().startswith(("memory://", "sqlite:///", "postgresql://", "postgres://")):
            # The URL itself is not repeated: it may hold a password.
            raise ValueError(
                "the registry URL must start with memory://, sqlite:/// or postgresql://"
            )
        return url
