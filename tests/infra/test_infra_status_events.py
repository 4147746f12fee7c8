"""The way out's construct on a bare stack: an encrypted, TLS-only topic; an example
subscriber with raw delivery and a DLQ; publish allowed on this topic only; the lag alarm on
the worker's metric."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack, assertions
from aws_cdk import aws_iam as iam

from order_infra.status_events import LAG_METRIC, METRIC_NAMESPACE, StatusEvents


@pytest.fixture(scope="module")
def template() -> assertions.Template:
    stack = Stack(App(), "Test")
    events = StatusEvents(
        stack, "StatusEvents", topic_name="order-status", queue_name="orders", lag_alarm_seconds=90
    )
    role = iam.Role(stack, "TaskRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    events.grant_publish(role)
    return assertions.Template.from_stack(stack)


def test_the_topic_is_encrypted_with_a_rotated_key_and_tls_only(template) -> None:
    template.has_resource_properties(
        "AWS::SNS::Topic",
        {"TopicName": "order-status", "KmsMasterKeyId": assertions.Match.any_value()},
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
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


def test_the_example_subscriber_gets_the_raw_body_and_has_a_dlq(template) -> None:
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "sqs", "RawMessageDelivery": True}
    )
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {
                "maxReceiveCount": 5,
                "deadLetterTargetArn": assertions.Match.any_value(),
            },
        },
    )
    template.resource_count_is("AWS::SQS::Queue", 2)


def test_the_task_role_may_publish_to_this_topic_only(template) -> None:
    policies = template.find_resources("AWS::IAM::Policy")
    (policy,) = policies.values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    publish = [s for s in statements if s["Action"] == "sns:Publish"]
    assert len(publish) == 1 and publish[0]["Resource"] == {
        "Ref": next(iter(template.find_resources("AWS::SNS::Topic")))
    }
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {"sns:Publish", "kms:Decrypt", "kms:GenerateDataKey"}


def test_the_lag_alarm_watches_the_oldest_unpublished_row(template) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": METRIC_NAMESPACE,
            "MetricName": LAG_METRIC,
            "Dimensions": [{"Name": "QueueName", "Value": "orders"}],
            "Statistic": "Maximum",
            "Threshold": 90,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
        },
    )


def test_the_metric_name_is_the_workers_gauge() -> None:
    # The worker exposes the gauge; its CloudWatch name is the EMF exporter's to map.
    from order_service.metrics import Metrics

    names = {m.name for m in Metrics().registry.collect()}
    assert "order_service_outbox_oldest_unpublished_seconds" in names


def test_the_lag_alarm_reads_the_metric_the_worker_publishes() -> None:
    from order_infra.status_events import LAG_METRIC
    from order_service.adapters import cloudwatch_emf

    assert cloudwatch_emf.OUTBOX_LAG == LAG_METRIC


def test_one_parked_row_raises_the_parked_alarm(template) -> None:
    from order_infra.status_events import PARKED_METRIC
    from order_service.adapters import cloudwatch_emf

    assert cloudwatch_emf.OUTBOX_PARKED == PARKED_METRIC
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": METRIC_NAMESPACE,
            "MetricName": PARKED_METRIC,
            "Dimensions": [{"Name": "QueueName", "Value": "orders"}],
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
        },
    )
