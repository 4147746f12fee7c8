"""The one settings object, read from the environment once at start-up."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from order_service.errors import ConfigError
from order_service.service.message_logs import MessageLogs


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

    # SQS. The endpoint (AWS_ENDPOINT_URL_SQS) and credentials come from the SDK's own chain.
    sqs_queue_url: str | None = None
    sqs_dlq_url: str | None = None
    aws_region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )
    sqs_wait_time_seconds: int = Field(default=20, ge=0, le=20)
    sqs_visibility_timeout: int = Field(default=60, ge=5, le=43200)
    pollers: int = Field(default=4, ge=1, le=64)
    # Concurrent batches. Few and large beats many and small: two keep the database busy
    # while Python parses the next batch (measured in docs/performance.md).
    processors: int = Field(default=2, ge=1, le=64)
    max_in_flight: int = Field(default=200, ge=10)
    batch_max_messages: int = Field(default=100, ge=1, le=1000)
    retry_base_seconds: float = Field(default=2.0, gt=0, le=5)
    retry_max_seconds: float = Field(default=300.0, gt=0, le=43200)

    # Process.
    worker_mode: Literal["normal", "dummy"] = "normal"
    health_port: int = Field(default=8080, ge=0, le=65535)
    shutdown_grace_seconds: float = Field(default=25.0, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] | None = None  # None: console on a terminal
    # Which messages get a line of their own: all, every one not simply applied (applied ones
    # are counted in the per-batch summary), or none. Independent of LOG_LEVEL.
    log_messages: MessageLogs = "not-applied"
    # CloudWatch embedded metric format on stdout every this many seconds; 0: off (local).
    emf_interval_seconds: float = Field(default=0, ge=0, le=3600)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.retry_max_seconds < self.retry_base_seconds:
            raise ValueError("RETRY_MAX_SECONDS must not be below RETRY_BASE_SECONDS")
        # A deferred event's retries (receives 1-4; the redrive policy takes the 5th) must
        # outlast one visibility timeout: the time a crashed worker's order.placed stays hidden.
        retries = sum(min(self.retry_base_seconds * 4**n, self.retry_max_seconds) for n in range(4))
        if retries < self.sqs_visibility_timeout:
            raise ValueError(
                f"RETRY_BASE_SECONDS and RETRY_MAX_SECONDS give {retries:g} s of retries before "
                f"the DLQ, less than SQS_VISIBILITY_TIMEOUT ({self.sqs_visibility_timeout} s)"
            )
        if self.processors > self.db_pool_size:
            raise ValueError("PROCESSORS must not exceed DB_POOL_SIZE (one connection each)")
        return self

    def database_dsn(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        if self.db_host is None:
            raise ConfigError("set DATABASE_URL, or DB_HOST (with DB_PORT, DB_NAME, DB_USER, ...)")
        password = quote(self.db_password.get_secret_value(), safe="")
        credentials = quote(self.db_user, safe="") + (f":{password}" if password else "")
        return f"postgresql://{credentials}@{self.db_host}:{self.db_port}/{quote(self.db_name)}"

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
