"""The one settings object, read from the environment once at start-up.

Every value is bounded to what makes sense, and every URL is checked for what its client needs
(a scheme it speaks, a host, a numeric port), so that a bad setting stops the process at once
with one line naming it, never a worker retrying for ever against something it cannot reach.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from order_service.domain.queue_type import QueueType, is_fifo_name, pairing_problem, queue_name
from order_service.domain.redelivery import (
    RETRY_BASE_SECONDS,
    RETRY_MAX_SECONDS,
    VISIBILITY_TIMEOUT_SECONDS,
    RedeliveryPolicy,
)
from order_service.errors import ConfigError
from order_service.service.message_logs import MessageLogs
from order_service.telemetry_settings import TelemetrySettings


class Settings(TelemetrySettings, BaseSettings):
    # No NaN or infinity in any number: NaN passes no bound and would read as "must be <= n".
    model_config = SettingsConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    # PostgreSQL: a libpq URI, or the parts as ECS injects them from an RDS secret.
    database_url: SecretStr | None = None
    db_host: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
    db_port: int = Field(default=5432, ge=1, le=65535)
    db_name: str = Field(default="postgres", min_length=1, max_length=63)
    db_user: str = Field(default="postgres", min_length=1, max_length=63)
    db_password: SecretStr = SecretStr("")
    db_pool_size: int = Field(default=4, ge=1, le=100)
    # TLS to the database, added to the DSN built from the DB_* parts. None: the driver's
    # default (local and test servers without TLS); ECS sets verify-full with the RDS CA bundle.
    db_sslmode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] | None = None
    db_sslrootcert: str | None = None
    # The Secrets Manager secret (RDS's JSON) the worker reads its database user and password
    # from at each new connection, in place of DB_USER/DB_PASSWORD: a rotation (alternating
    # users) reaches a running worker without a restart (adapters/db_credentials.py).
    db_secret_arn: str | None = None
    aws_endpoint_url_secrets_manager: str | None = None  # read by the SDK; checked here
    # The application secret's user and password, given to `migrate` only: the migrations
    # create the DML-only roles the worker connects as and set this user's password (the user
    # is one of the two alternating ones, migrations/app_role.py; the first one when unset).
    app_db_user: str | None = None
    app_db_password: SecretStr | None = None

    # SQS. The endpoint (AWS_ENDPOINT_URL_SQS) and credentials come from the SDK's own chain.
    sqs_queue_url: str | None = None
    sqs_dlq_url: str | None = None
    aws_region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )
    # Read by the SDK itself; here only so that a malformed one is refused in one line (an
    # empty one the SDK ignores, and so do we).
    aws_endpoint_url_sqs: str | None = None
    aws_endpoint_url: str | None = None
    # At least 1: a wait of 0 is short polling, a billed receive after another on an idle queue.
    sqs_wait_time_seconds: int = Field(default=20, ge=1, le=20)
    sqs_visibility_timeout: int = Field(default=VISIBILITY_TIMEOUT_SECONDS, ge=5, le=43200)
    pollers: int = Field(default=4, ge=1, le=64)
    # Concurrent batches. Few and large beats many and small: two keep the database busy
    # while Python parses the next batch (measured in docs/performance.md).
    processors: int = Field(default=2, ge=1, le=64)
    max_in_flight: int = Field(default=200, ge=10, le=10_000)  # 10,000 bodies: up to 2.5 GiB
    batch_max_messages: int = Field(default=100, ge=1, le=1000)
    retry_base_seconds: float = Field(default=RETRY_BASE_SECONDS, gt=0, le=5)
    retry_max_seconds: float = Field(default=RETRY_MAX_SECONDS, gt=0, le=43200)

    # The outbox of order status events (docs/contract/ORDER_STATUS_EVENTS.md). Rows are
    # written when a topic is configured (the relay publishes them) or when a CDC reader
    # (Debezium's outbox event router) consumes the table instead; otherwise none.
    order_events_topic_arn: str | None = None
    aws_endpoint_url_sns: str | None = None  # read by the SDK; checked here like the SQS one
    outbox_cdc: bool = False
    # The relay runs as a side task of every worker; false: only `order-service relay` runs it.
    outbox_relay_in_worker: bool = True
    # How often a relay looks for rows other workers wrote (its own worker's commits wake it).
    outbox_poll_interval_seconds: float = Field(default=0.5, ge=0.05, le=10)
    # Published rows are kept this long, then deleted; 0: deleted when published (keeping them
    # costs the writer a mark, a later delete and twice the vacuuming: docs/capacity.md).
    # Unpublished rows are never deleted.
    outbox_retention_hours: float = Field(default=0.0, ge=0, le=24 * 90)
    # The order's customer as MessageGroupId on a standard topic, so that a subscribed fair
    # queue is fair per customer (a FIFO topic's group stays the order). Off by default: group
    # ids on standard topics are new (2025) and an endpoint that predates them refuses every
    # PublishBatch, which the relay would retry for ever; and it shows the customer id to every
    # subscriber's queue.
    outbox_group_by_customer: bool = False

    # Process.
    worker_mode: Literal["normal", "dummy"] = "normal"
    health_port: int = Field(default=8080, ge=1, le=65535)
    # Below 120 s, the longest stop timeout ECS allows (SIGTERM to SIGKILL); it must also stay
    # below the task's own stopTimeout (30 s in infra/), which this process cannot see.
    shutdown_grace_seconds: float = Field(default=25.0, gt=0, lt=120)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] | None = None  # None: console on a terminal
    # Which messages get a line of their own: all, every one not simply applied (applied ones
    # are counted in the per-batch summary), or none. Independent of LOG_LEVEL.
    log_messages: MessageLogs = "not-applied"
    # CloudWatch embedded metric format on stdout every this many seconds; 0: off (local).
    # At least 1 s otherwise: CloudWatch stores 1 s resolution at best, and every interval is a
    # line per metric on stdout.
    emf_interval_seconds: float = Field(default=0, ge=0, le=3600)
    # Spans as JSON lines in this file (a local run: `TRACES_FILE=.local/traces.jsonl make run`).
    # The OTLP exporter is configured by the SDK's own OTEL_* variables, read by the SDK and not
    # repeated here (order_service.tracing decides on or off from them).
    traces_file: str | None = None

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():  # empty: refused when it is needed
            _check_database_url(value.get_secret_value())
        return value

    @field_validator("sqs_queue_url", "sqs_dlq_url")
    @classmethod
    def _queue_url(cls, value: str | None) -> str | None:
        if value:  # empty: refused when it is needed (dummy mode needs none)
            _check_queue_url(value)
        return value

    @field_validator("order_events_topic_arn")
    @classmethod
    def _topic_arn(cls, value: str | None) -> str | None:
        if value:  # empty: no topic, like unset
            _check_topic_arn(value)
        return value or None

    @field_validator("db_secret_arn")
    @classmethod
    def _secret_arn(cls, value: str | None) -> str | None:
        if value and not _SECRET_ARN.fullmatch(value):
            raise ValueError(
                f"{value[:100]!r} is not a Secrets Manager secret ARN, like "
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders-app-AbCdEf"
            )
        return value or None

    @field_validator("app_db_user")
    @classmethod
    def _app_db_user(cls, value: str | None) -> str | None:
        if value:
            from order_service.migrations.app_role import check_role

            check_role(value)
        return value or None

    @field_validator(
        "aws_endpoint_url_sqs",
        "aws_endpoint_url",
        "aws_endpoint_url_sns",
        "aws_endpoint_url_secrets_manager",
    )
    @classmethod
    def _endpoint_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value:
            _check_endpoint_url(value, _ENDPOINT_EXAMPLES[info.field_name or ""])
        return value

    @field_validator("emf_interval_seconds")
    @classmethod
    def _emf_interval(cls, value: float) -> float:
        if 0 < value < 1:
            raise ValueError("must be 0 (off) or at least 1 second")
        return value

    @field_validator("traces_file")
    @classmethod
    def _traces_file(cls, value: str | None) -> str | None:
        if value and Path(value).is_dir():
            raise ValueError(f"{value[:120]!r} is a directory: give a file path in it")
        return value or None

    @field_validator("aws_region")
    @classmethod
    def _region(cls, value: str) -> str:
        _check_region(value)
        return value

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

    @model_validator(mode="after")
    def _distinct_queues(self) -> Settings:
        if self.sqs_queue_url and self.sqs_queue_url == self.sqs_dlq_url:
            raise ValueError("SQS_DLQ_URL must not be SQS_QUEUE_URL (invalid messages would loop)")
        if self.sqs_queue_url and self.sqs_dlq_url:
            # By their names (SQS requires .fifo on a FIFO queue): before anything starts. The
            # worker checks the attributes again at start-up (adapters/queue_setup.py).
            queue, dlq = (
                QueueType(is_fifo_name(self.sqs_queue_url)),
                QueueType(is_fifo_name(self.sqs_dlq_url)),
            )
            problem = pairing_problem(self.sqs_queue_url, queue, self.sqs_dlq_url, dlq)
            if problem:
                raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _one_outbox_reader(self) -> Settings:
        if self.order_events_topic_arn and self.outbox_cdc:
            raise ValueError(
                "set ORDER_EVENTS_TOPIC_ARN or OUTBOX_CDC, not both (the relay and the CDC "
                "reader would each publish every row)"
            )
        return self

    def outbox_enabled(self) -> bool:
        """Whether batches write outbox rows: something consumes them."""
        return bool(self.order_events_topic_arn) or self.outbox_cdc

    def topic_arn(self) -> str:
        if not self.order_events_topic_arn:
            raise ConfigError("set ORDER_EVENTS_TOPIC_ARN (the SNS topic the relay publishes to)")
        return self.order_events_topic_arn

    def database_dsn(self) -> str:
        if self.database_url is not None:
            if not self.database_url.get_secret_value():
                raise ConfigError(
                    "DATABASE_URL is empty: give postgresql://user@host:port/database, or unset "
                    "it and give DB_HOST (libpq's defaults are never what a worker means)"
                )
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
            raise ConfigError("set SQS_QUEUE_URL and SQS_DLQ_URL (neither may be empty)")
        return self.sqs_queue_url, self.sqs_dlq_url


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and overrides); one clear line on what is wrong."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: " + _message(err)
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None


def _message(error: ErrorDetails) -> str:
    if error["type"] == "finite_number":
        return f"{str(error['input'])[:20]!r} is not a number (give a finite one)"
    return error["msg"].removeprefix("Value error, ")


# What the clients need of their URLs, checked before any connection is tried. The messages
# never repeat DATABASE_URL itself: it may hold a password.

_PORT_RANGE = "a number from 1 to 65535"
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
# libpq options that asyncpg does not know: it would send them to the server as settings,
# which refuses them at every connection attempt, for ever.
_LIBPQ_ONLY = (
    "connect_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "fallback_application_name",
    "hostaddr",
    "channel_binding",
    "gssencmode",
    "requirepeer",
    "require_auth",
    "load_balance_hosts",
    "sslsni",
    "sslcompression",
)
# The shape of every AWS region name (us-east-1, eu-central-2, us-gov-west-1, ap-southeast-5).
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")
# arn:partition:sns:region:account:name; a FIFO topic's name ends with .fifo.
_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")
_SECRET_ARN = re.compile(
    r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}"
)
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}(\.fifo)?")


def _check_port(text: str, what: str) -> None:
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise ValueError(f"{what} {text[:20]!r} is not {_PORT_RANGE}")


def _check_database_url(url: str) -> None:
    """What asyncpg would refuse, or take for libpq's defaults, at every connection attempt."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        raise ValueError("must be a libpq URI starting postgresql:// (or postgres://)")
    parts = urlsplit(url)
    try:
        query = parse_qs(parts.query, strict_parsing=True) if parts.query else {}
    except ValueError:
        raise ValueError("its query is not name=value pairs joined by &") from None
    hostspec = parts.netloc.partition("@")[2] if "@" in parts.netloc else parts.netloc
    if "@" in hostspec:
        raise ValueError("has a second @ (quote one in the password as %40)")
    hosts = []
    for spec in hostspec.split(",") if hostspec else []:
        if spec.startswith("["):  # an IPv6 address
            host, _, port = spec[1:].partition("]")
            port = port.removeprefix(":")
        else:
            host, _, port = spec.partition(":")
        if port:
            _check_port(unquote(port), "port")
        if not host:
            raise ValueError("has an empty host in its host list")
        hosts.append(host)
    if not hosts and not query.get("host"):
        raise ValueError("names no host (postgresql://user@host:5432/db, or ?host=/socket/dir)")
    if not unquote(parts.path.lstrip("/")) and not (query.get("dbname") or query.get("database")):
        raise ValueError("names no database (the path: postgresql://user@host:5432/orders)")
    for port in query.get("port", [""])[-1].split(",") if "port" in query else []:
        _check_port(port, "port")
    for name, allowed in (("sslmode", _SSLMODES), ("target_session_attrs", _SESSION_ATTRS)):
        value = query.get(name, [allowed[0]])[-1]
        if value not in allowed:
            raise ValueError(f"{name} {value[:20]!r} is not one of {', '.join(allowed)}")
    unknown = sorted(set(query) & set(_LIBPQ_ONLY))
    if unknown:
        raise ValueError(f"asyncpg does not support the libpq option {unknown[0]!r}")


def _check_http_url(url: str, example: str) -> tuple[str, str]:
    """(host, path) of an http(s) URL with a valid port, else a ValueError naming `example`."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number from 0 to 65535
    except ValueError:
        raise ValueError(f"{url[:80]!r} has a port that is not {_PORT_RANGE}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        raise ValueError(f"{url[:80]!r} is not an http(s) URL like {example}")
    if port == 0:
        raise ValueError(f"{url[:80]!r} has a port that is not {_PORT_RANGE}")
    return parts.hostname, parts.path


def _check_queue_url(url: str) -> None:
    example = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
    _, path = _check_http_url(url, example)
    if not _QUEUE_NAME.fullmatch(queue_name(path)):
        raise ValueError(f"{url[:80]!r} does not end with a queue name, like {example}")


_ENDPOINT_EXAMPLES = {
    "aws_endpoint_url_sqs": "https://sqs.eu-west-1.amazonaws.com or http://127.0.0.1:4566",
    "aws_endpoint_url_sns": "https://sns.eu-west-1.amazonaws.com or http://127.0.0.1:4566",
    "aws_endpoint_url_secrets_manager": "https://secretsmanager.eu-west-1.amazonaws.com",
    "aws_endpoint_url": "http://127.0.0.1:4566 (one endpoint for every AWS service)",
}


def _check_endpoint_url(url: str, example: str) -> None:
    _check_http_url(url, example)


def _check_topic_arn(arn: str) -> None:
    if not _TOPIC_ARN.fullmatch(arn):
        raise ValueError(
            f"{arn[:80]!r} is not an SNS topic ARN, like arn:aws:sns:eu-west-1:123456789012:orders"
        )


def _check_region(region: str) -> None:
    if not _REGION.fullmatch(region):
        raise ValueError(f"{region[:40]!r} is not an AWS region name, like eu-west-1")
