"""Alarms that reach the environment's subscriber, and the on-call dashboard.

Four groups: the queue (dead letters, oldest message, quiet tenants' oldest message), the tasks
(none healthy, unhealthy, failed deployment), the database (CPU, connections, memory, storage,
CPU credits) and the worker's own metrics (invalid rate, paused, processing lag), which it
publishes as embedded metric format lines (worker_metrics.py).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from . import worker_metrics as wm
from .alarm_routing import AlarmRouting
from .alerting import AlarmTopic
from .catalog import GIB, database_class
from .dashboard import add_dashboard, quiet_groups_oldest_message

ONE_MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)
RDS_CPU_PERCENT = 80
RDS_FREE_STORAGE_BYTES = 2 * GIB
RDS_CONNECTIONS_SHARE = 0.8  # of the class's max_connections
RDS_FREEABLE_MEMORY_SHARE = 0.1  # of the class's memory
RDS_CPU_CREDIT_HOURS = 2  # alarm when the balance is worth less than 2 hours of earning
INVALID_RATE_PERCENT = 1.0  # of the messages processed in 5 minutes
PAUSED_MINUTES = 5

GE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
LT = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
NOT_BREACHING = cloudwatch.TreatMissingData.NOT_BREACHING
BREACHING = cloudwatch.TreatMissingData.BREACHING
MISSING = cloudwatch.TreatMissingData.MISSING


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        service: ecs.FargateService,
        target_group: elbv2.ApplicationTargetGroup,
        database: rds.DatabaseInstance,
        database_instance_type: str,
        running_tasks: cloudwatch.IMetric,
        backlog_per_task: cloudwatch.IMetric,
        backlog_per_task_target: int,
        oldest_message_alarm_seconds: int,
        alarm_routing: AlarmRouting,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarm_topic = AlarmTopic(self, routing=alarm_routing)
        self.topic = self.alarm_topic.topic
        self.deployment_failed_rule = self.alarm_topic.notify_failed_deployments(service)

        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._queue_alarms(queue, dead_letter_queue, oldest_message_alarm_seconds)
        self._task_alarms(target_group)
        self._database_alarms(database, database_instance_type)
        self.worker = wm.WorkerMetrics(queue)
        self._worker_alarms(oldest_message_alarm_seconds)
        for alarm in self.alarms.values():
            self.alarm_topic.notify(alarm)

        self.dashboard = add_dashboard(
            self,
            name=dashboard_name,
            alarms=list(self.alarms.values()),
            queue=queue,
            dead_letter_queue=dead_letter_queue,
            target_group=target_group,
            database=database,
            running_tasks=running_tasks,
            backlog_per_task=backlog_per_task,
            backlog_per_task_target=backlog_per_task_target,
            oldest_message_alarm_seconds=oldest_message_alarm_seconds,
            worker=self.worker.widgets(),
        )

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        description: str,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        missing: cloudwatch.TreatMissingData,
        periods: int = 1,
        datapoints: int | None = None,
    ) -> None:
        self.alarms[name] = metric.create_alarm(
            self,
            f"{name}Alarm",
            alarm_description=description,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints,
            comparison_operator=comparison,
            treat_missing_data=missing,
        )

    def _queue_alarms(
        self, queue: sqs.IQueue, dead_letter_queue: sqs.IQueue, oldest_seconds: int
    ) -> None:
        self._alarm(
            "DeadLetters",
            dead_letter_queue.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=ONE_MINUTE
            ),
            "Messages in the DLQ: triage them (docs/runbook.md).",
            threshold=1,
            comparison=GE,
            missing=NOT_BREACHING,
        )
        self._alarm(
            "OldestMessage",
            queue.metric_approximate_age_of_oldest_message(statistic="Maximum", period=ONE_MINUTE),
            "Events wait too long: workers down, stuck or too few.",
            threshold=oldest_seconds,
            comparison=GE,
            missing=NOT_BREACHING,
            periods=5,
            datapoints=3,
        )

        # A fair queue (issue 24): where producers set MessageGroupId to a tenant, SQS keeps a
        # noisy tenant from delaying the others, and reports the age of the oldest message
        # outside the noisy groups. That age growing means quiet tenants wait too: the fleet is
        # too small for them, not one tenant too loud. No producer setting groups, no data:
        # not breaching.
        self._alarm(
            "QuietGroupsOldestMessage",
            quiet_groups_oldest_message(queue),
            "Quiet tenants' events wait too long (fair queue): the fleet is short for them, "
            "not one noisy tenant (docs/runbook.md, section 10).",
            threshold=oldest_seconds,
            comparison=GE,
            missing=NOT_BREACHING,
            periods=5,
            datapoints=3,
        )

    def _task_alarms(self, target_group: elbv2.ApplicationTargetGroup) -> None:
        tg = target_group.metrics
        self._alarm(
            "UnhealthyTargets",
            tg.unhealthy_host_count(statistic="Maximum", period=ONE_MINUTE),
            "Worker tasks fail their /health check.",
            threshold=1,
            comparison=GE,
            missing=NOT_BREACHING,
            periods=3,
        )
        # Zero tasks make UnHealthyHostCount 0 (and then missing): only the healthy count
        # sees an empty service, and no data at all counts as none healthy.
        self._alarm(
            "NoHealthyTask",
            tg.healthy_host_count(statistic="Minimum", period=ONE_MINUTE),
            "No worker task passes /health: nothing consumes the queue.",
            threshold=1,
            comparison=LT,
            missing=BREACHING,
            periods=3,
        )

    def _database_alarms(self, database: rds.DatabaseInstance, instance_type: str) -> None:
        spec = database_class(instance_type)
        self._alarm(
            "DatabaseCpu",
            database.metric_cpu_utilization(period=FIVE_MINUTES),
            f"RDS CPU above {RDS_CPU_PERCENT}% for 15 minutes.",
            threshold=RDS_CPU_PERCENT,
            comparison=GT,
            missing=MISSING,
            periods=3,
        )
        self._alarm(
            "DatabaseStorage",
            database.metric_free_storage_space(statistic="Minimum", period=FIVE_MINUTES),
            "RDS free storage below 2 GiB (autoscaling storage at max?).",
            threshold=RDS_FREE_STORAGE_BYTES,
            comparison=LT,
            missing=MISSING,
        )
        connections = int(spec.max_connections * RDS_CONNECTIONS_SHARE)
        self._alarm(
            "DatabaseConnections",
            database.metric_database_connections(statistic="Maximum", period=ONE_MINUTE),
            f"RDS connections above {connections} ({RDS_CONNECTIONS_SHARE:.0%} of about "
            f"{spec.max_connections} for {instance_type}): leaked sessions or too many tasks "
            "(docs/capacity.md).",
            threshold=connections,
            comparison=GT,
            missing=MISSING,
            periods=5,
            datapoints=3,
        )
        memory = spec.memory_gib * GIB * RDS_FREEABLE_MEMORY_SHARE
        self._alarm(
            "DatabaseMemory",
            database.metric_freeable_memory(statistic="Minimum", period=FIVE_MINUTES),
            f"RDS freeable memory below {RDS_FREEABLE_MEMORY_SHARE:.0%} of {instance_type}'s.",
            threshold=memory,
            comparison=LT,
            missing=MISSING,
            periods=3,
        )
        if spec.burstable:
            # Credits earned per hour: baseline share x vCPUs x 60 (one credit = one vCPU-minute).
            per_hour = spec.baseline_cpu_share * spec.vcpus * 60
            self._alarm(
                "DatabaseCpuCredits",
                database.metric("CPUCreditBalance", statistic="Minimum", period=FIVE_MINUTES),
                f"{instance_type} CPU credits below {RDS_CPU_CREDIT_HOURS} hours of earning: "
                "sustained load above its baseline (a larger class: docs/capacity.md).",
                threshold=per_hour * RDS_CPU_CREDIT_HOURS,
                comparison=LT,
                missing=MISSING,
                periods=3,
            )

    def _worker_alarms(self, oldest_seconds: int) -> None:
        w = self.worker
        self._alarm(
            "InvalidRate",
            w.invalid_percent(FIVE_MINUTES),
            f"More than {INVALID_RATE_PERCENT:g}% of messages invalid over 5 minutes: a "
            "producer sends what the contract refuses (DLQ triage, docs/runbook.md).",
            threshold=INVALID_RATE_PERCENT,
            comparison=GT,
            missing=NOT_BREACHING,
        )
        self._alarm(
            "Paused",
            w.metric(wm.PAUSED, statistic="Maximum"),
            f"A worker paused consuming for {PAUSED_MINUTES} minutes: its database does not "
            "answer (docs/runbook.md, database faults).",
            threshold=1,
            comparison=GE,
            missing=NOT_BREACHING,
            periods=PAUSED_MINUTES,
        )
        self._alarm(
            "ProcessingLag",
            w.lag_seconds(),
            f"The backlog would take more than {oldest_seconds} s to drain at the rate the "
            "workers process: too few tasks, or a slow database.",
            threshold=oldest_seconds,
            comparison=GT,
            missing=NOT_BREACHING,
            periods=5,
            datapoints=4,
        )
