from __future__ import annotations

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack, assertions

from order_infra.checks import SynthReport
from order_infra.config import ENVIRONMENTS
from order_infra.messaging import Messaging
from tests.infra.infra_support import template_json


@pytest.fixture(scope="module")
def template() -> assertions.Template:
    stack = Stack(App(), "Test")
    Messaging(
        stack,
        "Messaging",
        visibility_timeout=Duration.seconds(60),
        removal_policy=RemovalPolicy.DESTROY,
    )
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


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_the_queues_outlive_the_stack_wherever_the_database_does(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    # Issue 19: a database kept as a snapshot while the orders waiting in the queue, and the
    # dead letters, were deleted with the stack.
    resources = template_json(synthesized[env])["Resources"]
    (database,) = [r for r in resources.values() if r["Type"] == "AWS::RDS::DBInstance"]
    database_kept = database["DeletionPolicy"] in ("Snapshot", "Retain")
    assert database_kept is ENVIRONMENTS[env].retain_data
    queues = {
        logical_id: resource
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::SQS::Queue" and logical_id.startswith("Messaging")
    }
    assert len(queues) == 2  # the queue and its DLQ
    for logical_id, queue in queues.items():
        kept = (queue.get("DeletionPolicy"), queue.get("UpdateReplacePolicy")) == ("Retain",) * 2
        assert kept is database_kept, logical_id
