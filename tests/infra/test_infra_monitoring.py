"""Alarms reach someone, cover what on-call needs, and the prod synth refuses to page nobody."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from aws_cdk import App, Environment, assertions

import app as app_module
from order_infra import config as config_module
from order_infra.alarm_routing import SAMPLE_SUBSCRIBER
from order_infra.catalog import database_class
from order_infra.config import ENVIRONMENTS, AlarmRouting
from order_infra.monitoring import RDS_CONNECTIONS_SHARE
from order_infra.stack import OrderServiceStack
from tests.infra.infra_support import IMAGE_DIGEST, template_json
from tests.infra.policy_evaluation import ACCOUNT, REGION, allows
from tools.checks import SynthReport

ENVS = list(ENVIRONMENTS)
ALWAYS = {
    "DeadLetters",
    "OldestMessage",
    "QuietGroupsOldestMessage",  # issue 24: fair queues
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
TOPIC_ARN = "arn:aws:sns:eu-west-1:210987654321:pager"


def _resources(report: SynthReport, kind: str) -> dict[str, dict[str, Any]]:
    """Of this kind, apart from the status events' (their topic, subscriber queues and lag
    alarm are tested in test_infra_status_events.py) and the credential rotation's (its
    schedule, in test_infra_credential_rotation.py)."""
    resources = template_json(report)["Resources"]
    return {
        k: v.get("Properties", {})
        for k, v in resources.items()
        if v["Type"] == kind and not k.startswith(("StatusEvents", "CredentialRotation"))
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
def test_subscriber_comes_from_the_config_or_the_deploy(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    routing = ENVIRONMENTS[env].alarms
    template = template_json(synthesized[env])
    subscriptions = list(_resources(synthesized[env], "AWS::SNS::Subscription").values())
    if routing.from_deploy:  # make synth passes the sample, whose template refuses to deploy
        (subscription,) = subscriptions
        assert subscription["Protocol"] == "email"
        assert subscription["Endpoint"] == SAMPLE_SUBSCRIBER
        assert "RefuseSampleDeploy" in template["Rules"]
    else:
        assert routing.subscriber is None and routing.unrouted_reason
        assert subscriptions == []
        assert "RefuseSampleDeploy" not in template.get("Rules", {})


def test_staging_and_prod_route_alarms_from_the_deploy_not_the_config() -> None:
    for env in ("staging", "prod"):
        assert ENVIRONMENTS[env].alarms.from_deploy
        assert ENVIRONMENTS[env].alarms.subscriber is None


def _build(context: dict[str, str]) -> OrderServiceStack:
    return app_module.build(App(context={"imageDigest": IMAGE_DIGEST, **context}))


@pytest.mark.parametrize("env", ["staging", "prod"])
@pytest.mark.parametrize("passed", [None, "", "  "])
def test_a_deploy_without_a_subscriber_is_refused(env: str, passed: str | None) -> None:
    context = {"env": env} | ({} if passed is None else {"alarmSubscriber": passed})
    with pytest.raises(ValueError, match=f"{env}: alarms reach nobody; pass -c alarmSubscriber="):
        _build(context)


@pytest.mark.parametrize(
    "address",
    [
        "order-service-oncall@example.com",
        "team@EXAMPLE.NET",
        "team@lists.example.org",
        "team@Mail.Example.Com",
        "team@ci.test",
        "team@nowhere.invalid",
        "team@corp.example",
        "team@localhost.localhost",
        "team@box.localhost",
        "arn:aws:sns:eu-west-1:123456789012:pager",
        "arn:aws:sns:eu-west-1:111122223333:pager",
    ],
)
def test_a_deploy_refuses_reserved_or_placeholder_subscribers(address: str) -> None:
    with pytest.raises(ValueError, match="reserved or placeholder address"):
        _build({"env": "prod", "alarmSubscriber": address})


@pytest.mark.parametrize(
    "address",
    ["oncall@company.io", "oncall@notexample.com", "oncall@example.com.company.io"],
)
def test_a_real_domain_that_only_resembles_a_reserved_one_is_taken(address: str) -> None:
    routing = AlarmRouting(subscriber=address)
    assert routing.is_email and not routing.is_placeholder


def test_the_sample_is_the_only_placeholder_accepted_and_it_is_marked() -> None:
    assert AlarmRouting(subscriber=SAMPLE_SUBSCRIBER).is_sample
    assert ".invalid" in SAMPLE_SUBSCRIBER and "never" in SAMPLE_SUBSCRIBER
    with pytest.raises(ValueError, match="reserved or placeholder"):
        AlarmRouting(subscriber=SAMPLE_SUBSCRIBER.replace("sample", "other"))


def test_dev_routes_its_alarms_in_the_config_only() -> None:
    with pytest.raises(ValueError, match=r"dev: alarms are routed in infra/order_infra/config\.py"):
        _build({"env": "dev", "alarmSubscriber": "oncall@company.io"})
    _build({"env": "dev", "alarmSubscriber": ""})  # what the workflow passes where it has none


def test_prod_synth_fails_without_a_subscriber(monkeypatch: pytest.MonkeyPatch) -> None:
    unrouted = AlarmRouting(subscriber=None, unrouted_reason="forgot")
    prod = dataclasses.replace(ENVIRONMENTS["prod"], alarms=unrouted)
    monkeypatch.setitem(config_module.ENVIRONMENTS, "prod", prod)
    with pytest.raises(ValueError, match="prod: alarms reach nobody"):
        app_module.build(App(context={"env": "prod", "imageDigest": IMAGE_DIGEST}))


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
        App(),
        "Test",
        config=config,
        image_digest=IMAGE_DIGEST,
        env=Environment(region=config.region),
    )
    return assertions.Template.from_stack(stack)


def test_a_real_subscriber_leaves_the_template_deployable(
    paged_by_topic: assertions.Template,
) -> None:
    assert "RefuseSampleDeploy" not in paged_by_topic.to_json().get("Rules", {})


def test_a_topic_arn_subscriber_gets_every_alarm_and_deployment_failure(
    paged_by_topic: assertions.Template,
) -> None:
    subscriptions = paged_by_topic.find_resources("AWS::SNS::Subscription")
    assert [k for k in subscriptions if not k.startswith("StatusEvents")] == []
    alarms = paged_by_topic.find_resources("AWS::CloudWatch::Alarm")
    assert alarms
    for alarm in alarms.values():
        assert TOPIC_ARN in alarm["Properties"]["AlarmActions"]
    (rule,) = [
        r
        for k, r in paged_by_topic.find_resources("AWS::Events::Rule").items()
        if not k.startswith("CredentialRotation")
    ]
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


def _alarm_topic_policies(report: SynthReport) -> tuple[dict[str, Any], dict[str, Any]]:
    """The alarm topic's policy and its key's policy."""
    ((topic_id, topic),) = _resources(report, "AWS::SNS::Topic").items()
    (topic_policy,) = [
        p["PolicyDocument"]
        for p in _resources(report, "AWS::SNS::TopicPolicy").values()
        if p["Topics"] == [{"Ref": topic_id}]
    ]
    # The topic's own key (prod has its database's too, issue 26).
    key = _resources(report, "AWS::KMS::Key")[topic["KmsMasterKeyId"]["Fn::GetAtt"][0]]
    return topic_policy, key["KeyPolicy"]


def _publishes(
    topic_policy: dict[str, Any], key_policy: dict[str, Any], service: str, **source: str
) -> dict[str, bool]:
    """What SNS checks when `service` publishes: the topic policy with the request's source,
    and the key policy with what the service sends to KMS (EventBridge: no source keys)."""
    tls = {"aws:SecureTransport": "true"}
    topic_request = {**tls, **source}
    key_request = tls if service == "events.amazonaws.com" else topic_request
    return {
        "sns:Publish": allows(
            topic_policy, service=service, action="sns:Publish", context=topic_request
        ),
        **{
            action: allows(key_policy, service=service, action=action, context=key_request)
            for action in ("kms:GenerateDataKey", "kms:Decrypt")
        },
    }


@pytest.mark.parametrize("env", ENVS)
def test_alarms_and_the_deployment_rule_may_publish_to_the_encrypted_topic(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    # Issue 19: the topic policy replaced SNS's default and allowed only EventBridge, so every
    # alarm action failed. Both publishers must pass both policies, for this account's sources.
    topic_policy, key_policy = _alarm_topic_policies(synthesized[env])
    alarm_arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:OrderService-{env}-DeadLetters-X1"
    alarm = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": alarm_arn}
    assert set(
        _publishes(topic_policy, key_policy, "cloudwatch.amazonaws.com", **alarm).values()
    ) == {True}
    (rule_id,) = _resources(synthesized[env], "AWS::Events::Rule")
    rule = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": f"<{rule_id}.Arn>"}
    assert set(_publishes(topic_policy, key_policy, "events.amazonaws.com", **rule).values()) == {
        True
    }


@pytest.mark.parametrize(
    ("service", "source"),
    [
        (
            "cloudwatch.amazonaws.com",
            {
                "aws:SourceAccount": "999999999999",
                "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:999999999999:alarm:theirs",
            },
        ),
        ("cloudwatch.amazonaws.com", {}),
        ("events.amazonaws.com", {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": "<Other.Arn>"}),
        ("events.amazonaws.com", {"aws:SourceAccount": "999999999999"}),
        ("sns.amazonaws.com", {"aws:SourceAccount": ACCOUNT}),
    ],
)
def test_no_other_source_may_publish_to_the_alarm_topic(
    synthesized: dict[str, SynthReport], service: str, source: dict[str, str]
) -> None:
    topic_policy, _ = _alarm_topic_policies(synthesized["prod"])
    tls = {"aws:SecureTransport": "true"}
    assert not allows(topic_policy, service=service, action="sns:Publish", context=tls | source)


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


@pytest.mark.parametrize("env", ENVS)
def test_quiet_tenants_waiting_alarm_and_the_dashboard_shows_tenants(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    # Issue 24: fair queues. The alarm reads the quiet groups' oldest message of this queue;
    # no producer setting groups means no data, which must not page anyone.
    (alarm,) = [
        a
        for a in _resources(synthesized[env], "AWS::CloudWatch::Alarm").values()
        if a.get("MetricName") == "ApproximateAgeOfOldestMessageInQuietGroups"
    ]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["Threshold"] == ENVIRONMENTS[env].oldest_message_alarm_seconds
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    (dimension,) = alarm["Dimensions"]
    assert "MessagingQueue" in json.dumps(dimension["Value"])
    assert "DeadLetter" not in json.dumps(dimension["Value"])
    assert alarm["AlarmActions"] and alarm["OKActions"]
    (dashboard,) = _resources(synthesized[env], "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["DashboardBody"])
    assert "ApproximateNumberOfNoisyGroups" in body
    assert "ApproximateAgeOfOldestMessageInQuietGroups" in body
