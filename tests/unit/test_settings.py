from __future__ import annotations

import pytest

from order_service.errors import ConfigError
from order_service.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (
        "DATABASE_URL",
        "DB_HOST",
        "DB_PORT",
        "DB_NAME",
        "DB_USER",
        "DB_PASSWORD",
        "SQS_QUEUE_URL",
        "SQS_DLQ_URL",
        "HEALTH_PORT",
        "LOG_LEVEL",
        "WORKER_MODE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults():
    s = load_settings()
    assert (s.health_port, s.sqs_wait_time_seconds, s.shutdown_grace_seconds) == (8080, 20, 25)
    assert s.worker_mode == "normal"


def test_database_url_is_used_as_given_including_unix_sockets(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@/db?host=/var/run/pg")
    assert load_settings().database_dsn() == "postgresql://u@/db?host=/var/run/pg"


def test_database_parts_as_ecs_injects_them_are_quoted(monkeypatch):
    for k, v in {
        "DB_HOST": "db.example",
        "DB_PORT": "5433",
        "DB_NAME": "orders",
        "DB_USER": "app",
        "DB_PASSWORD": "p@ss:/w?",
    }.items():
        monkeypatch.setenv(k, v)
    assert (
        load_settings().database_dsn() == "postgresql://app:p%40ss%3A%2Fw%3F@db.example:5433/orders"
    )


def test_password_is_secret_in_repr(monkeypatch):
    monkeypatch.setenv("DB_PASSWORD", "hunter2")
    assert "hunter2" not in repr(load_settings())


def test_no_database_configured_is_one_clear_error():
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings().database_dsn()


def test_missing_queue_urls_is_one_clear_error():
    with pytest.raises(ConfigError, match="SQS_QUEUE_URL"):
        load_settings().queue_urls()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HEALTH_PORT", "eighty"),
        ("HEALTH_PORT", "70000"),
        ("WORKER_MODE", "lazy"),
        ("LOG_LEVEL", "LOUD"),
        ("DB_PORT", "-1"),
    ],
)
def test_malformed_setting_names_the_variable_in_one_line(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert name in str(info.value) and "\n" not in str(info.value)


def test_retry_cap_below_base_is_refused():
    with pytest.raises(ConfigError, match="RETRY_MAX_SECONDS"):
        load_settings(retry_base_seconds=4, retry_max_seconds=1)


def test_more_processors_than_connections_is_refused():
    with pytest.raises(ConfigError, match="PROCESSORS"):
        load_settings(processors=5, db_pool_size=4)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("garbage", "postgresql://"),
        ("mysql://app@db/orders", "postgresql://"),
        ("postgresql://app@db/orders?sslmode=bogus", "verify-full"),
        ("postgresql://app@db/orders?target_session_attrs=any-old", "read-write"),
        ("postgresql://app@db:abc/orders", "1 to 65535"),
        ("postgresql://app@db:0/orders", "1 to 65535"),
        ("postgresql://app@db:65536/orders", "1 to 65535"),
        ("postgresql://app@[::1]:x/orders", "1 to 65535"),
        ("postgresql://app@db/orders?port=54x", "1 to 65535"),
        ("postgresql://app@h1,,h2/orders", "empty host"),
        ("postgresql:///orders", "no host"),
        ("postgresql://app@db:5432", "no database"),
        ("postgresql://app:p@ss@db/orders", "%40"),
        ("postgresql://app@db/orders?sslmode", "name=value"),
        ("postgresql://app@db/orders?keepalives=1", "keepalives"),
    ],
)
def test_a_database_url_asyncpg_cannot_use_is_refused_without_echoing_it(monkeypatch, url, says):
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigError) as info:
        load_settings()
    line = str(info.value)
    assert "DATABASE_URL" in line and says in line and "\n" not in line
    assert url not in line  # it may hold a password


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@/db?host=/var/run/pg",
        "postgres://app:secret@db.example:5433/orders?sslmode=verify-full",
        "postgresql://app@[::1]:5432/orders",
        "postgresql://app@h1:5432,h2:5433/orders?target_session_attrs=read-write",
        "postgresql://app@db/orders?application_name=worker",  # a server setting: passed on
        "postgresql://app@db?dbname=orders",
    ],
)
def test_database_urls_asyncpg_takes_are_accepted(monkeypatch, url):
    monkeypatch.setenv("DATABASE_URL", url)
    assert load_settings().database_dsn() == url


def test_an_empty_database_url_is_refused_when_the_database_is_needed(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "")
    settings = load_settings()  # dummy mode needs no database
    with pytest.raises(ConfigError, match="DATABASE_URL is empty"):
        settings.database_dsn()


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("SQS_QUEUE_URL", "orders", "http(s) URL"),
        ("SQS_QUEUE_URL", "sqs.eu-west-1.amazonaws.com/123456789012/orders", "http(s) URL"),
        ("SQS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/", "queue name"),
        ("SQS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/1/a b", "http(s) URL"),
        ("SQS_DLQ_URL", "http://127.0.0.1:port/1/orders-dlq", "1 to 65535"),
        ("AWS_ENDPOINT_URL_SQS", "localhost:4566", "http(s) URL"),
        ("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:99999", "1 to 65535"),
        ("AWS_ENDPOINT_URL", "not a url", "http(s) URL"),
        ("AWS_REGION", "eu west 1", "eu-west-1"),
        ("AWS_REGION", "EU-WEST-1", "eu-west-1"),
        ("AWS_DEFAULT_REGION", "../etc", "eu-west-1"),
        ("SQS_WAIT_TIME_SECONDS", "0", "greater than or equal to 1"),
        ("SQS_WAIT_TIME_SECONDS", "21", "less than or equal to 20"),
        ("SHUTDOWN_GRACE_SECONDS", "inf", "not a number"),
        ("SHUTDOWN_GRACE_SECONDS", "nan", "not a number"),
        ("SHUTDOWN_GRACE_SECONDS", "0", "greater than 0"),
        ("RETRY_BASE_SECONDS", "nan", "not a number"),
        ("MAX_IN_FLIGHT", "1000000", "less than or equal to 10000"),
        ("HEALTH_PORT", "0", "greater than or equal to 1"),
        ("DB_HOST", "", "pattern"),
        ("DB_HOST", "db host", "pattern"),
        ("DB_NAME", "", "at least 1 character"),
    ],
)
def test_every_setting_is_bounded_and_the_line_names_it_and_its_bound(
    monkeypatch, name, value, says
):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    line = str(info.value)
    assert name.removeprefix("AWS_DEFAULT_").removeprefix("AWS_") in line, line
    assert says in line and "\n" not in line, line


def test_the_dead_letter_queue_must_not_be_the_queue(monkeypatch):
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
    monkeypatch.setenv("SQS_QUEUE_URL", url)
    monkeypatch.setenv("SQS_DLQ_URL", url)
    with pytest.raises(ConfigError, match="SQS_DLQ_URL must not be SQS_QUEUE_URL"):
        load_settings()


def test_empty_endpoints_are_ignored_as_the_sdk_ignores_them(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "")
    assert load_settings().aws_endpoint_url_sqs == ""


def test_real_queue_and_local_urls_are_accepted(monkeypatch):
    monkeypatch.setenv(
        "SQS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo"
    )
    monkeypatch.setenv("SQS_DLQ_URL", "http://127.0.0.1:4566/000000000000/orders-dlq.fifo")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_REGION", "us-gov-west-1")
    assert load_settings().queue_urls()[1].endswith("orders-dlq.fifo")
