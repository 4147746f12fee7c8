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
