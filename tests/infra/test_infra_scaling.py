from __future__ import annotations

import pytest
from aws_cdk import App, Environment, Stack, assertions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_sqs as sqs

from order_infra.scaling import Scaling


@pytest.fixture(scope="module")
def template() -> assertions.Template:
    stack = Stack(App(), "Test", env=Environment(region="eu-west-1"))
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["eu-west-1a", "eu-west-1b"], nat_gateways=1)
    task_definition = ecs.FargateTaskDefinition(stack, "Task")
    task_definition.add_container("c", image=ecs.ContainerImage.from_registry("x"))
    service = ecs.FargateService(
        stack,
        "Service",
        cluster=ecs.Cluster(stack, "Cluster", vpc=vpc),
        task_definition=task_definition,
    )
    Scaling(
        stack,
        "Scaling",
        service=service,
        queue=sqs.Queue(stack, "Queue"),
        min_tasks=1,
        max_tasks=3,
        backlog_per_task_target=120,
        acceptable_latency_seconds=30,
    )
    return assertions.Template.from_stack(stack)


def test_scaling_tracks_backlog_per_task_with_metric_math(template: assertions.Template) -> None:
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 1, "MaxCapacity": 3}
    )
    policies = template.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy")
    (policy,) = policies.values()
    config = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 120
    metrics = config["CustomizedMetricSpecification"]["Metrics"]
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in metrics if "MetricStat" in m}
    assert names == {
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "NumberOfMessagesDeleted",
        "DesiredTaskCount",
    }
    stats = {m["Id"]: m["MetricStat"]["Stat"] for m in metrics if "MetricStat" in m}
    assert stats["deleted"] == "Sum"
    (expression,) = [m for m in metrics if m.get("ReturnData", True) and "Expression" in m]
    assert expression["Expression"] == (
        "(visible + held + deleted / 60 * 30) / IF(tasks > 0, tasks, 1)"
    )
