"""Where alarms go: the encrypted alarm topic, its subscriber from the config, and the ECS
deployment failures that CloudWatch alarms cannot see (they arrive as EventBridge events)."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .config import AlarmRouting


class AlarmTopic:
    """The stack's alarm topic; with an email subscriber it is subscribed to the topic, with
    a topic ARN alarms and events also publish to that topic (SNS cannot subscribe SNS).

    Not a construct of its own: its resources live directly in `scope` (Monitoring), where the
    deployed topic and key already are, so that their logical ids stay the same."""

    def __init__(self, scope: Construct, *, routing: AlarmRouting) -> None:
        self.scope = scope
        # CloudWatch and EventBridge can only publish to an encrypted topic whose key they may
        # use, so the topic gets a customer-managed key (an AWS-managed SNS key refuses them).
        self.key = kms.Key(
            scope,
            "AlarmTopicKey",
            enable_key_rotation=True,
            description="order-service alarm topic encryption",
        )
        for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):
            self.key.grant(iam.ServicePrincipal(service), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(scope, "AlarmTopic", master_key=self.key, enforce_ssl=True)
        self.topics: list[sns.ITopic] = [self.topic]
        if routing.is_email:
            assert routing.subscriber is not None
            self.topic.add_subscription(subscriptions.EmailSubscription(routing.subscriber))
        elif routing.is_topic_arn:
            assert routing.subscriber is not None
            self.topics.append(sns.Topic.from_topic_arn(scope, "OnCallTopic", routing.subscriber))

    def notify(self, alarm: cloudwatch.Alarm, *, ok: bool = True) -> None:
        for topic in self.topics:
            action = cw_actions.SnsAction(topic)
            alarm.add_alarm_action(action)
            if ok:
                alarm.add_ok_action(action)

    def notify_failed_deployments(self, service: ecs.FargateService) -> events.Rule:
        """ECS reports a deployment the circuit breaker rolled back (or that failed) as an
        "ECS Deployment State Change" event: no metric ever shows it."""
        rule = events.Rule(
            self.scope,
            "DeploymentFailed",
            description="order-service: an ECS deployment of the worker failed",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Deployment State Change"],
                resources=[service.service_arn],
                detail={"eventName": ["SERVICE_DEPLOYMENT_FAILED"]},
            ),
        )
        message = events.RuleTargetInput.from_text(
            f"ECS deployment {events.EventField.from_path('$.detail.deploymentId')} of "
            f"{events.EventField.from_path('$.resources[0]')} failed: "
            f"{events.EventField.from_path('$.detail.reason')} (docs/runbook.md, failed deploy)"
        )
        for topic in self.topics:
            rule.add_target(targets.SnsTopic(topic, message=message))
        return rule
