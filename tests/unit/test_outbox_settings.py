"""The outbox's settings: when rows are written, and each bad value refused in one line."""

from __future__ import annotations

import pytest

from order_service.errors import ConfigError
from order_service.settings import load_settings

TOPIC = "arn:aws:sns:eu-west-1:123456789012:order-status"
NAMES = (
    "ORDER_EVENTS_TOPIC_ARN",
    "OUTBOX_CDC",
    "AWS_ENDPOINT_URL_SNS",
    "OUTBOX_POLL_INTERVAL_SECONDS",
    "OUTBOX_RETENTION_HOURS",
    "OUTBOX_RELAY_IN_WORKER",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def test_no_topic_and_no_cdc_reader_writes_no_rows():
    settings = load_settings()
    assert not settings.outbox_enabled()
    with pytest.raises(ConfigError, match="ORDER_EVENTS_TOPIC_ARN"):
        settings.topic_arn()


@pytest.mark.parametrize(
    "arn",
    [TOPIC, "arn:aws:sns:us-east-1:000000000000:orders.fifo"],
)
def test_a_topic_turns_the_outbox_on(monkeypatch, arn):
    monkeypatch.setenv("ORDER_EVENTS_TOPIC_ARN", arn)
    settings = load_settings()
    assert settings.outbox_enabled() and settings.topic_arn() == arn


def test_a_cdc_reader_turns_the_outbox_on_without_a_topic(monkeypatch):
    monkeypatch.setenv("OUTBOX_CDC", "true")
    assert load_settings().outbox_enabled()


def test_a_topic_and_a_cdc_reader_together_are_refused(monkeypatch):
    monkeypatch.setenv("ORDER_EVENTS_TOPIC_ARN", TOPIC)
    monkeypatch.setenv("OUTBOX_CDC", "1")
    with pytest.raises(ConfigError, match="ORDER_EVENTS_TOPIC_ARN or OUTBOX_CDC") as info:
        load_settings()
    assert "\n" not in str(info.value)


def test_an_empty_topic_is_no_topic(monkeypatch):
    monkeypatch.setenv("ORDER_EVENTS_TOPIC_ARN", "")
    assert not load_settings().outbox_enabled()


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("ORDER_EVENTS_TOPIC_ARN", "order-status", "SNS topic ARN"),
        ("ORDER_EVENTS_TOPIC_ARN", "arn:aws:sqs:eu-west-1:123456789012:orders", "SNS topic ARN"),
        ("ORDER_EVENTS_TOPIC_ARN", "arn:aws:sns:eu-west-1:1:orders", "SNS topic ARN"),
        ("AWS_ENDPOINT_URL_SNS", "localhost:4566", "http(s) URL"),
        ("OUTBOX_CDC", "maybe", "boolean"),
        ("OUTBOX_POLL_INTERVAL_SECONDS", "0", "greater than or equal to 0.05"),
        ("OUTBOX_POLL_INTERVAL_SECONDS", "60", "less than or equal to 10"),
        ("OUTBOX_RETENTION_HOURS", "-1", "greater than or equal to 0"),
        ("OUTBOX_RETENTION_HOURS", "nan", "not a number"),
    ],
)
def test_every_outbox_setting_is_bounded_in_one_line(monkeypatch, name, value, says):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    line = str(info.value)
    assert name.removeprefix("AWS_") in line and says in line and "\n" not in line, line
