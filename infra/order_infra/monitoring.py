"""Alarms to an SNS topic and the on-call dashboard."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

ONE_MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)
RDS_CPU_PERCENT = 80
RDS_FREE_STORAGE_BYTES = 2 * 1024**3


class Monitoring(Construct):
    """Alarms (DLQ, oldest message, unhealthy targets, RDS CPU and storage) and a dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        target_group: elbv2.ApplicationTargetGroup,
        database: rds.DatabaseInstance,
        running_tasks: cloudwatch.IMetric,
        backlog_per_task: cloudwatch.IMetric,
        backlog_per_task_target: int,
        oldest_message_alarm_seconds: int,
        alarm_email: str | None,
    ) -> None:
        super().__init__(scope, construct_id)

        # CloudWatch can only publish to an encrypted topic whose key it may use, so the
        # topic gets a customer-managed key (an AWS-managed SNS key would refuse it).
        self.topic_key = kms.Key(
            self,
            "AlarmTopicKey",
            enable_key_rotation=True,
            description="order-service alarm topic encryption",
        )
        self.topic_key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.topic = sns.Topic(self, "AlarmTopic", master_key=self.topic_key, enforce_ssl=True)
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))

        tg_metrics = target_group.metrics
        self.alarms = {
            "DeadLetters": dead_letter_queue.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=ONE_MINUTE
            ).create_alarm(
                self,
                "DeadLettersAlarm",
                alarm_description="Messages in the DLQ: triage them (docs/runbook.md).",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            "OldestMessage": queue.metric_approximate_age_of_oldest_message(
                statistic="Maximum", period=ONE_MINUTE
            ).create_alarm(
                self,
                "OldestMessageAlarm",
                alarm_description="Events wait too long: workers down, stuck or too few.",
                threshold=oldest_message_alarm_seconds,
                evaluation_periods=5,
                datapoints_to_alarm=3,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            "UnhealthyTargets": tg_metrics.unhealthy_host_count(
                statistic="Maximum", period=ONE_MINUTE
            ).create_alarm(
                self,
                "UnhealthyTargetsAlarm",
                alarm_description="Worker tasks fail their /health check.",
                threshold=1,
                evaluation_periods=3,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            "DatabaseCpu": database.metric_cpu_utilization(period=FIVE_MINUTES).create_alarm(
                self,
                "DatabaseCpuAlarm",
                alarm_description=f"RDS CPU above {RDS_CPU_PERCENT}% for 15 minutes.",
                threshold=RDS_CPU_PERCENT,
                evaluation_periods=3,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.MISSING,
            ),
            "DatabaseStorage": database.metric_free_storage_space(
                statistic="Minimum", period=FIVE_MINUTES
            ).create_alarm(
                self,
                "DatabaseStorageAlarm",
                alarm_description="RDS free storage below 2 GiB (autoscaling storage at max?).",
                threshold=RDS_FREE_STORAGE_BYTES,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.MISSING,
            ),
        }
        action = cw_actions.SnsAction(self.topic)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=dashboard_name, default_interval=Duration.hours(3)
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=list(self.alarms.values()), width=24, height=3
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Backlog (visible, in flight)",
                left=[
                    queue.metric_approximate_number_of_messages_visible(period=ONE_MINUTE),
                    queue.metric_approximate_number_of_messages_not_visible(period=ONE_MINUTE),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Age of oldest message (s)",
                left=[
                    queue.metric_approximate_age_of_oldest_message(
                        statistic="Maximum", period=ONE_MINUTE
                    )
                ],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=oldest_message_alarm_seconds, label="alarm"
                    )
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="DLQ depth",
                left=[
                    dead_letter_queue.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", period=ONE_MINUTE
                    )
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Messages sent / received / deleted",
                left=[
                    queue.metric_number_of_messages_sent(period=ONE_MINUTE),
                    queue.metric_number_of_messages_received(period=ONE_MINUTE),
                    queue.metric_number_of_messages_deleted(period=ONE_MINUTE),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Running tasks; backlog per task vs scaling target",
                left=[running_tasks],
                right=[backlog_per_task],
                right_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=backlog_per_task_target, label="scaling target"
                    )
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="ALB targets (healthy, unhealthy)",
                left=[
                    tg_metrics.healthy_host_count(statistic="Minimum", period=ONE_MINUTE),
                    tg_metrics.unhealthy_host_count(statistic="Maximum", period=ONE_MINUTE),
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="RDS CPU (%)", left=[database.metric_cpu_utilization()], width=8
            ),
            cloudwatch.GraphWidget(
                title="RDS connections", left=[database.metric_database_connections()], width=8
            ),
            cloudwatch.GraphWidget(
                title="RDS free storage (bytes)",
                left=[database.metric_free_storage_space(statistic="Minimum")],
                width=8,
            ),
        )
