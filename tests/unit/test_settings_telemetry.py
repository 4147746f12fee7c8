"""The telemetry settings: defaults that ship, and bad values refused in one line."""

from __future__ import annotations

import pytest

from order_service.bootstrap import consumer_config
from order_service.errors import ConfigError
from order_service.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in ("LOG_MESSAGES", "EMF_INTERVAL_SECONDS", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_log_what_is_not_applied_and_publish_no_emf_locally():
    settings = load_settings()
    assert settings.log_messages == "not-applied"
    assert settings.emf_interval_seconds == 0
    assert consumer_config(settings).message_logs == "not-applied"


def test_log_messages_is_independent_of_the_log_level(monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("LOG_MESSAGES", "none")
    assert consumer_config(load_settings()).message_logs == "none"


@pytest.mark.parametrize(
    ("name", "value"), [("LOG_MESSAGES", "some"), ("EMF_INTERVAL_SECONDS", "-1")]
)
def test_bad_values_name_the_variable_in_one_line(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert name in str(info.value) and "\n" not in str(info.value)


OTEL = (
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
)


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"EMF_INTERVAL_SECONDS": "0.5"}, "at least 1 second"),
        ({"EMF_INTERVAL_SECONDS": "nan"}, "not a number"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "0"}, "OTEL_BSP_MAX_QUEUE_SIZE"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "many"}, "integer"),
        ({"OTEL_BSP_EXPORT_TIMEOUT": "0"}, "OTEL_BSP_EXPORT_TIMEOUT"),
        ({"OTEL_BSP_SCHEDULE_DELAY": "60001"}, "less than or equal to 60000"),
        (
            {"OTEL_BSP_MAX_QUEUE_SIZE": "10", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "11"},
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE (11) must not exceed OTEL_BSP_MAX_QUEUE_SIZE (10)",
        ),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://:4318"}, "http(s) URL"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:99999"}, "http(s) URL"),
        ({"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "61"}, "less than or equal to 60"),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "gzip"),
        ({"OTEL_TRACES_SAMPLER_ARG": "-0.1"}, "greater than or equal to 0"),
        ({"AWS_ENDPOINT_URL_SNS": "ftp://x"}, "https://sns."),
        ({"AWS_ENDPOINT_URL_SQS": "ftp://x"}, "https://sqs."),
    ],
)
def test_telemetry_values_out_of_bounds_are_refused_in_one_line(monkeypatch, settings, says):
    for name in OTEL:
        monkeypatch.delenv(name, raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert says in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "settings",
    [
        {"EMF_INTERVAL_SECONDS": "1"},
        {"OTEL_BSP_MAX_QUEUE_SIZE": "512", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "512"},
        {"OTEL_BSP_SCHEDULE_DELAY": "", "OTEL_EXPORTER_OTLP_TIMEOUT": " "},  # empty: unset
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com:4318/v1"},
        {"OTEL_TRACES_SAMPLER": " ParentBased_TraceIdRatio ", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
        {"OTEL_EXPORTER_OTLP_COMPRESSION": "GZIP"},
    ],
)
def test_telemetry_values_the_sdk_accepts_are_accepted(monkeypatch, settings):
    for name in OTEL:
        monkeypatch.delenv(name, raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    load_settings()


def test_the_stacks_tracing_variables_pass_the_workers_own_checks(monkeypatch):
    """What infra/ gives the worker on ECS is accepted at start-up (a refusal would be a crash
    loop in every environment)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[2] / "infra"))
    try:
        from order_infra.tracing import Tracing, worker_environment
    finally:
        sys.path.pop(0)
    for ratio in (1.0, 0.01, 0.0001):
        environment = worker_environment(
            Tracing(sampling_ratio=ratio), service_name="s", environment="e"
        )
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        load_settings()


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders-app-AbCdEf", True),
        ("orders-app", False),
        ("arn:aws:sns:eu-west-1:123456789012:orders", False),
    ],
)
def test_the_database_secret_is_an_arn(monkeypatch, value, accepted):
    monkeypatch.setenv("DB_SECRET_ARN", value)
    if accepted:
        assert load_settings().db_secret_arn == value
    else:
        with pytest.raises(ConfigError, match="DB_SECRET_ARN"):
            load_settings()


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("orders_app", True), ("orders_app_clone", True), ("postgres", False), ("", True)],
)
def test_the_migrations_app_user_is_one_of_the_two_alternating_users(monkeypatch, value, accepted):
    monkeypatch.setenv("APP_DB_USER", value)
    if accepted:
        assert load_settings().app_db_user == (value or None)
    else:
        with pytest.raises(ConfigError, match="APP_DB_USER"):
            load_settings()
