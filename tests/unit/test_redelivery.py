"""The redelivery policy: backoff, the last receive, the span before the DLQ, the check."""

from __future__ import annotations

from order_service.domain.redelivery import (
    MAX_RECEIVE_COUNT,
    VISIBILITY_TIMEOUT_SECONDS,
    RedeliveryPolicy,
)
from order_service.settings import Settings


def test_the_defaults_retry_for_170_s_before_the_dlq():
    policy = RedeliveryPolicy()
    assert [policy.backoff(n) for n in range(1, MAX_RECEIVE_COUNT)] == [2, 8, 32, 128]
    assert policy.retry_span() == 170
    assert policy.problem() is None


def test_an_event_deferred_on_its_last_receive_is_redriven_at_once():
    policy = RedeliveryPolicy(max_receive_count=5)
    assert [policy.deferral_visibility(n) for n in range(1, 7)] == [2, 8, 32, 128, 0, 0]
    assert RedeliveryPolicy(max_receive_count=2).deferral_visibility(2) == 0


def test_retries_shorter_than_the_visibility_timeout_are_named():
    problem = RedeliveryPolicy(
        visibility_timeout=60, retry_base_seconds=0.5, retry_max_seconds=4
    ).problem()
    assert problem is not None and "SQS_VISIBILITY_TIMEOUT" in problem


def test_settings_take_their_defaults_from_the_policy():
    settings = Settings.model_construct()
    assert settings.redelivery() == RedeliveryPolicy()
    assert settings.sqs_visibility_timeout == VISIBILITY_TIMEOUT_SECONDS
