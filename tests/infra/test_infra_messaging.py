from __future__ import annotations

import pytest
from aws_cdk import App, Duration, Stack, assertions

from order_infra.messaging import Messaging


@pytest.fixture(scope="module")
def template() -> assertions.Template:
    stack = Stack(App(), "Test")
    Messaging(stack, "Messaging", visibility_timeout=Duration.seconds(60))
    return assertions.Template.from_stack(stack)


def test_main_queue_redrives_after_five_receives(template: assertions.Template) -> None:
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "VisibilityTimeout": 60,
            "MaximumMessageSize": 262144,
            "MessageRetentionPeriod": 345600,
            "ReceiveMessageWaitTimeSeconds": 20,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {
                "maxReceiveCount": 5,
                "deadLetterTargetArn": assertions.Match.any_value(),
            },
        },
    )


def test_dlq_keeps_14_days_and_takes_the_largest_messages(template: assertions.Template) -> None:
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "MessageRetentionPeriod": 1209600,
            "MaximumMessageSize": 1048576,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": assertions.Match.absent(),
        },
    )


def test_both_queues_deny_plain_http(template: assertions.Template) -> None:
    template.resource_count_is("AWS::SQS::QueuePolicy", 2)
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": assertions.Match.array_with(
                    [
                        assertions.Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )
