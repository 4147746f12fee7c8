"""The on-call dashboard: alarms on top, then the queue, the tasks, the worker's own metrics
and the database, each row read left to right."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sqs as sqs
from constructs import Construct

ONE_MINUTE = Duration.minutes(1)


def noisy_groups(queue: sqs.IQueue) -> cloudwatch.Metric:
    """Fair queues (issue 24): how many message groups (tenants) SQS counts as noisy."""
    return queue.metric("ApproximateNumberOfNoisyGroups", statistic="Maximum", period=ONE_MINUTE)


def quiet_groups_oldest_message(queue: sqs.IQueue) -> cloudwatch.Metric:
    """Fair queues: the age of the oldest message outside the noisy groups (seconds)."""
    return queue.metric(
        "ApproximateAgeOfOldestMessageInQuietGroups", statistic="Maximum", period=ONE_MINUTE
    )


def add_dashboard(
    scope: Construct,
    *,
    name: str,
    alarms: Sequence[cloudwatch.IAlarm],
    queue: sqs.IQueue,
    dead_letter_queue: sqs.IQueue,
    target_group: elbv2.ApplicationTargetGroup,
    database: rds.DatabaseInstance,
    running_tasks: cloudwatch.IMetric,
    backlog_per_task: cloudwatch.IMetric,
    backlog_per_task_target: int,
    oldest_message_alarm_seconds: int,
    worker: Sequence[cloudwatch.IWidget],
) -> cloudwatch.Dashboard:
    dashboard = cloudwatch.Dashboard(
        scope, "Dashboard", dashboard_name=name, default_interval=Duration.hours(3)
    )
    dashboard.add_widgets(
        cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24, height=4)
    )
    dashboard.add_widgets(
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
            left=[queue.metric_approximate_age_of_oldest_message(statistic="Maximum")],
            left_annotations=[
                cloudwatch.HorizontalAnnotation(value=oldest_message_alarm_seconds, label="alarm")
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
    # Tenants: on a fair queue, how many are noisy and how long the quiet ones wait. Empty
    # while no producer sets a message group.
    dashboard.add_widgets(
        cloudwatch.GraphWidget(
            title="Noisy tenants (message groups)", left=[noisy_groups(queue)], width=12
        ),
        cloudwatch.GraphWidget(
            title="Quiet tenants: age of oldest message (s)",
            left=[quiet_groups_oldest_message(queue)],
            left_annotations=[
                cloudwatch.HorizontalAnnotation(value=oldest_message_alarm_seconds, label="alarm")
            ],
            width=12,
        ),
    )
    dashboard.add_widgets(*worker)
    tg = target_group.metrics
    dashboard.add_widgets(
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
                tg.healthy_host_count(statistic="Minimum", period=ONE_MINUTE),
                tg.unhealthy_host_count(statistic="Maximum", period=ONE_MINUTE),
            ],
            width=8,
        ),
    )
    dashboard.add_widgets(
        cloudwatch.GraphWidget(
            title="RDS CPU (%), CPU credits",
            left=[database.metric_cpu_utilization()],
            right=[database.metric("CPUCreditBalance", statistic="Minimum")],
            width=6,
        ),
        cloudwatch.GraphWidget(
            title="RDS connections", left=[database.metric_database_connections()], width=6
        ),
        cloudwatch.GraphWidget(
            title="RDS freeable memory (bytes)",
            left=[database.metric_freeable_memory(statistic="Minimum")],
            width=6,
        ),
        cloudwatch.GraphWidget(
            title="RDS free storage (bytes)",
            left=[database.metric_free_storage_space(statistic="Minimum")],
            width=6,
        ),
    )
    return dashboard
