"""The one settings object, read from the environment once at start-up."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from order_service.domain.redelivery import (
    RETRY_BASE_SECONDS,
    RETRY_MAX_SECONDS,
    VISIBILITY_TIMEOUT_SECONDS,
    RedeliveryPolicy,
)
from order_service.errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # PostgreSQL: a libpq URI, or the parts as ECS injects them from an RDS secret.
    database_url: SecretStr | None = None
    db_host: str | None = None
    db_port: int = Field(default=5432, ge=1, le=65535)
    db_name: str = "postgres"
    db_user: str = "postgres"
    db_password: SecretStr = SecretStr("")
    db_pool_size: int = Field(default=4, ge=1, le=100)
    # TLS to the database, added to the DSN built from the DB_* parts. None: the driver's
    # default (local and test servers without TLS); ECS sets verify-full with the RDS CA bundle.
    db_sslmode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] | None = None
    db_sslrootcert: str | None = None
    # The application role's password, given to `migrate` only: the migrations create the
    # DML-only role the worker connects as and set its password from this.
    app_db_password: SecretStr | None = None

    # SQS. The endpoint (AWS_ENDPOINT_URL_SQS) and credentials come from the SDK's own chain.
    sqs_queue_url: str | None = None
    sqs_dlq_url: str | None = None
    aws_region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )
    sqs_wait_time_seconds: int = Field(default=20, ge=0, le=20)
    sqs_visibility_timeout: int = Field(default=VISIBILITY_TIMEOUT_SECONDS, ge=5, le=43200)
    pollers: int = Field(default=4, ge=1, le=64)
    # Concurrent batches. Few and large beats many and small: two keep the database busy
    # while Python parses the next batch (measured in docs/performance.md).
    processors: int = Field(default=2, ge=1, le=64)
    max_in_flight: int = Field(default=200, ge=10)
    batch_max_messages: int = Field(default=100, ge=1, le=1000)
    retry_base_seconds: float = Field(default=RETRY_BASE_SECONDS, gt=0, le=5)
    retry_max_seconds: float = Field(default=RETRY_MAX_SECONDS, gt=0, le=43200)

    # Process.
    worker_mode: Literal["normal", "dummy"] = "normal"
    health_port: int = Field(default=8080, ge=0, le=65535)
    shutdown_grace_seconds: float = Field(default=25.0, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] | None = None  # None: console on a terminal

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        problem = self.redelivery().problem()
        if problem:
            raise ValueError(problem)
        if self.processors > self.db_pool_size:
            raise ValueError("PROCESSORS must not exceed DB_POOL_SIZE (one connection each)")
        return self

    def redelivery(self) -> RedeliveryPolicy:
        """The policy as configured; the queue's own maxReceiveCount replaces the count at run
        time (read at start-up)."""
        return RedeliveryPolicy(
            visibility_timeout=self.sqs_visibility_timeout,
            retry_base_seconds=self.retry_base_seconds,
            retry_max_seconds=self.retry_max_seconds,
        )

    def database_dsn(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        if self.db_host is None:
            raise ConfigError("set DATABASE_URL, or DB_HOST (with DB_PORT, DB_NAME, DB_USER, ...)")
        password = quote(self.db_password.get_secret_value(), safe="")
        credentials = quote(self.db_user, safe="") + (f":{password}" if password else "")
        dsn = f"postgresql://{credentials}@{self.db_host}:{self.db_port}/{quote(self.db_name)}"
        tls = {"sslmode": self.db_sslmode, "sslrootcert": self.db_sslrootcert}
        query = "&".join(f"{key}={quote(value, safe='')}" for key, value in tls.items() if value)
        return f"{dsn}?{query}" if query else dsn

    def queue_urls(self) -> tuple[str, str]:
        if not self.sqs_queue_url or not self.sqs_dlq_url:
            raise ConfigError("set SQS_QUEUE_URL and SQS_DLQ_URL")
        return self.sqs_queue_url, self.sqs_dlq_url


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and overrides); one clear line on what is wrong."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
