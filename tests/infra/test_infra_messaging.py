from __future__ import annotations

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack, assertions

from order_infra.config import ENVIRONMENTS
from order_infra.messaging import Messaging
from tests.infra.infra_support import template_json
from tools.checks import SynthReport


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


def test_fifo_makes_both_queues_fifo_in_high_throughput_mode() -> None:
    # Issue 24: a FIFO main queue needs a FIFO DLQ (SQS refuses a redrive between types).
    stack = Stack(App(), "Test")
    Messaging(
        stack,
        "Messaging",
        visibility_timeout=Duration.seconds(60),
        removal_policy=RemovalPolicy.DESTROY,
        fifo=True,
    )
    queues = assertions.Template.from_stack(stack).find_resources("AWS::SQS::Queue")
    assert len(queues) == 2
    for queue in queues.values():
        properties = queue["Properties"]
        assert properties["FifoQueue"] is True
        assert properties["DeduplicationScope"] == "messageGroup"
        assert properties["FifoThroughputLimit"] == "perMessageGroupId"
        assert properties.get("ContentBasedDeduplication") in (None, False)


def test_the_fifo_variant_synthesizes_clean_and_the_worker_follows_its_queues(
    synthesized: dict[str, SynthReport],
) -> None:
    # Every run's cdk-nag, cfn-lint and checkov findings are checked by test_infra_stack and
    # test_infra_checkov; here, that the variant is FIFO and the worker reads its queues.
    report = synthesized["dev-fifo"]
    assert report.violations == []
    resources = template_json(report)["Resources"]
    queues = {
        logical_id: r
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::SQS::Queue" and logical_id.startswith("Messaging")
    }
    assert len(queues) == 2
    assert all(q["Properties"]["FifoQueue"] is True for q in queues.values())
    containers = [
        c
        for r in resources.values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
        for c in r["Properties"]["ContainerDefinitions"]
        if any(e["Name"] == "SQS_QUEUE_URL" for e in c.get("Environment", []))
    ]
    assert containers  # the worker (and whatever else reads the queues)
    for container in containers:
        environment = {e["Name"]: e["Value"] for e in container["Environment"]}
        refs = {environment["SQS_QUEUE_URL"]["Ref"], environment["SQS_DLQ_URL"]["Ref"]}
        assert refs == set(queues), container["Name"]
    # Standard everywhere else: the environments as configured.
    for env in ENVIRONMENTS:
        others = template_json(synthesized[env])["Resources"].values()
        assert not any(
            r["Properties"].get("FifoQueue") for r in others if r["Type"] == "AWS::SQS::Queue"
        )


def test_an_unknown_queue_type_is_refused() -> None:
    import dataclasses

    with pytest.raises(ValueError, match="queue_type"):
        dataclasses.replace(ENVIRONMENTS["dev"], queue_type="fair")
