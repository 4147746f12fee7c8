"""The CDK stack is pinned to the worker's redelivery policy (order_service.domain.redelivery):
the queue's maxReceiveCount and every environment's visibility timeout are the policy's."""

from __future__ import annotations

from order_infra import config, messaging
from order_service.domain.redelivery import MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_SECONDS


def test_the_queue_redrives_after_the_policys_receive_count() -> None:
    assert messaging.MAX_RECEIVE_COUNT == MAX_RECEIVE_COUNT


def test_the_queue_hides_a_message_for_the_policys_visibility_timeout() -> None:
    assert config.SQS_VISIBILITY_TIMEOUT_SECONDS == VISIBILITY_TIMEOUT_SECONDS
