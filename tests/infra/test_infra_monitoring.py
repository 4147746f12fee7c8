"""Alarms reach someone, cover what on-call needs, and the prod synth refuses to page nobody."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from aws_cdk import App, Environment, assertions

import app as app_module
from order_infra import config as config_module
from order_infra.catalog import database_class
from order_infra.checks import SynthReport
from order_infra.config import ENVIRONMENTS, AlarmRouting
from order_infra.monitoring import RDS_CONNECTIONS_SHARE
from order_infra.stack import OrderServiceStack
from tests.infra.infra_support import template_json

ENVS = list(ENVIRONMENTS)
ALWAYS = {
    "DeadLetters",
    "OldestMessage",
    "UnhealthyTargets",
    "NoHealthyTask",
    "DatabaseCpu",
    "DatabaseStorage",
    "DatabaseConnections",
    "DatabaseMemory",
    "InvalidRate",
    "Paused",
    "ProcessingLag",
}
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:pager"


def _resources(report: SynthReport, kind: str) -> dict[str, dict[str, Any]]:
    """Of this kind, apart from the status events' (their topic, subscriber queues and lag
    alarm are tested in test_infra_status_events.py)."""
    resources = template_json(report)["Resources"]
    return {
        k: v.get("Properties", {})
        for k, v in resources.items()
        if v["Type"] == kind and not k.startswith("StatusEvents")
    }


def _alarms(report: SynthReport) -> dict[str, dict[str, Any]]:
    """Alarm name (as the Monitoring construct calls it) -> properties."""
    found = {}
    for logical_id, props in _resources(report, "AWS::CloudWatch::Alarm").items():
        name = logical_id.removeprefix("Monitoring").split("Alarm")[0]
        found[name] = props
    return found


def expected_alarms(env: str) -> set[str]:
    burstable = database_class(ENVIRONMENTS[env].db_instance_type).burstable
    return ALWAYS | ({"DatabaseCpuCredits"} if burstable else set())


@pytest.mark.parametrize("env", ENVS)
def test_every_alarm_notifies_the_topic_on_alarm_and_ok(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    alarms = _alarms(synthesized[env])
    assert set(alarms) == expected_alarms(env)
    (topic_id,) = _resources(synthesized[env], "AWS::SNS::Topic")
    for name, props in alarms.items():
        assert {"Ref": topic_id} in props["AlarmActions"], name
        assert {"Ref": topic_id} in props["OKActions"], name


@pytest.mark.parametrize("env", ENVS)
def test_subscriber_comes_from_the_config(synthesized: dict[str, SynthReport], env: str) -> None:
    routing = ENVIRONMENTS[env].alarms
    subscriptions = list(_resources(synthesized[env], "AWS::SNS::Subscription").values())
    if routing.subscriber is None:
        assert subscriptions == []
        assert routing.unrouted_reason
    else:
        (subscription,) = subscriptions
        assert subscription["Protocol"] == "email"
        assert subscription["Endpoint"] == routing.subscriber


def test_prod_and_staging_alarms_reach_an_address() -> None:
    assert ENVIRONMENTS["prod"].alarms.is_email or ENVIRONMENTS["prod"].alarms.is_topic_arn
    assert ENVIRONMENTS["staging"].alarms.subscriber is not None


def test_prod_synth_fails_without_a_subscriber(monkeypatch: pytest.MonkeyPatch) -> None:
    unrouted = AlarmRouting(subscriber=None, unrouted_reason="forgot")
    prod = dataclasses.replace(ENVIRONMENTS["prod"], alarms=unrouted)
    monkeypatch.setitem(config_module.ENVIRONMENTS, "prod", prod)
    with pytest.raises(ValueError, match="prod: alarms reach nobody"):
        app_module.build(App(context={"env": "prod", "imageTag": "abc"}))


@pytest.mark.parametrize(
    ("subscriber", "reason", "message"),
    [
        (None, None, "set a subscriber or say where alarms go"),
        ("on call", None, "neither an email address nor an SNS topic ARN"),
        ("arn:aws:sqs:eu-west-1:123456789012:q", None, "neither an email"),
    ],
)
def test_alarm_routing_refuses_what_reaches_nobody(
    subscriber: str | None, reason: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        AlarmRouting(subscriber=subscriber, unrouted_reason=reason)


@pytest.fixture(scope="module")
def paged_by_topic() -> assertions.Template:
    config = dataclasses.replace(ENVIRONMENTS["staging"], alarms=AlarmRouting(subscriber=TOPIC_ARN))
    stack = OrderServiceStack(
        App(), "Test", config=config, image_tag="abc", env=Environment(region=config.region)
    )
    return assertions.Template.from_stack(stack)


def test_a_topic_arn_subscriber_gets_every_alarm_and_deployment_failure(
    paged_by_topic: assertions.Template,
) -> None:
    subscriptions = paged_by_topic.find_resources("AWS::SNS::Subscription")
    assert [k for k in subscriptions if not k.startswith("StatusEvents")] == []
    alarms = paged_by_topic.find_resources("AWS::CloudWatch::Alarm")
    assert alarms
    for alarm in alarms.values():
        assert TOPIC_ARN in alarm["Properties"]["AlarmActions"]
    (rule,) = paged_by_topic.find_resources("AWS::Events::Rule").values()
    assert TOPIC_ARN in [t["Arn"] for t in rule["Properties"]["Targets"]]


@pytest.mark.parametrize("env", ENVS)
def test_failed_deployments_are_published(synthesized: dict[str, SynthReport], env: str) -> None:
    (rule,) = _resources(synthesized[env], "AWS::Events::Rule").values()
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.ecs"]
    assert pattern["detail-type"] == ["ECS Deployment State Change"]
    assert pattern["detail"] == {"eventName": ["SERVICE_DEPLOYMENT_FAILED"]}
    (service_id,) = _resources(synthesized[env], "AWS::ECS::Service")
    assert pattern["resources"] == [{"Ref": service_id}]
    (topic_id,) = _resources(synthesized[env], "AWS::SNS::Topic")
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": topic_id}
    # EventBridge must be able to use the topic's key, or the publish fails silently.
    (key,) = _resources(synthesized[env], "AWS::KMS::Key").values()
    principals = json.dumps(key["KeyPolicy"])
    assert "events.amazonaws.com" in principals and "cloudwatch.amazonaws.com" in principals


@pytest.mark.parametrize("env", ENVS)
def test_no_healthy_task_sees_an_empty_service(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    alarm = _alarms(synthesized[env])["NoHealthyTask"]
    assert alarm["MetricName"] == "HealthyHostCount"
    assert alarm["Statistic"] == "Minimum"
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "breaching"  # no data: no task at all


@pytest.mark.parametrize("env", ENVS)
def test_database_alarms_fit_the_instance_class(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    config = ENVIRONMENTS[env]
    spec = database_class(config.db_instance_type)
    alarms = _alarms(synthesized[env])
    connections = alarms["DatabaseConnections"]
    assert connections["MetricName"] == "DatabaseConnections"
    assert connections["Threshold"] == int(spec.max_connections * RDS_CONNECTIONS_SHARE)
    memory = alarms["DatabaseMemory"]
    assert memory["MetricName"] == "FreeableMemory"
    assert 0 < memory["Threshold"] < spec.memory_gib * 1024**3
    assert alarms["DatabaseStorage"]["MetricName"] == "FreeStorageSpace"
    if spec.burstable:
        credits = alarms["DatabaseCpuCredits"]
        assert credits["MetricName"] == "CPUCreditBalance"
        assert credits["ComparisonOperator"] == "LessThanThreshold"


def _metric_names(alarm: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (q["MetricStat"]["Metric"]["Namespace"], q["MetricStat"]["Metric"]["MetricName"])
        for q in alarm.get("Metrics", [])
        if "MetricStat" in q
    }


@pytest.mark.parametrize("env", ENVS)
def test_worker_alarms_read_the_worker_metrics_of_this_queue(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    alarms = _alarms(synthesized[env])
    (queue_id,) = [
        k
        for k, v in _resources(synthesized[env], "AWS::SQS::Queue").items()
        if "RedrivePolicy" in v
    ]
    invalid = alarms["InvalidRate"]
    assert ("OrderService", "MessagesInvalid") in _metric_names(invalid)
    assert ("OrderService", "MessagesApplied") in _metric_names(invalid)
    for query in invalid["Metrics"]:
        if "MetricStat" in query:
            (dimension,) = query["MetricStat"]["Metric"]["Dimensions"]
            assert dimension["Name"] == "QueueName"
            assert dimension["Value"] == {"Fn::GetAtt": [queue_id, "QueueName"]}
    lag = _metric_names(alarms["ProcessingLag"])
    assert ("AWS/SQS", "ApproximateNumberOfMessagesNotVisible") in lag
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in lag
    paused = alarms["Paused"]
    assert (paused["Namespace"], paused["MetricName"]) == ("OrderService", "Paused")
    assert paused["EvaluationPeriods"] == 5


@pytest.mark.parametrize("env", ENVS)
def test_dashboard_shows_worker_metrics_next_to_queue_and_database(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    (dashboard,) = _resources(synthesized[env], "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["DashboardBody"])
    for needle in (
        "OrderService",
        "MessagesInvalid",
        "BatchDurationMeanSeconds",
        "SystemFaults",
        "Paused",
        "ApproximateNumberOfMessagesVisible",
        "FreeableMemory",
        "DatabaseConnections",
    ):
        assert needle in body, needle
