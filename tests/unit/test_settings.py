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
