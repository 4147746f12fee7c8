"""Scaling of the worker service on the work per task: what is queued and held, plus what a
steady stream brings in during the acceptable latency."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .config import SCALE_IN_COOLDOWN_SECONDS, SCALE_OUT_COOLDOWN_SECONDS

# Work per task, tracked against task_orders_per_second x acceptable_latency_seconds (config):
# - visible + held: messages waiting plus those received and not yet deleted (processed,
#   buffered, or deferred with a backoff); visible alone reads a busy fleet as idle;
# - deleted / 60 x latency: the last minute's throughput over the acceptable latency, so a
#   fleet that keeps up with a steady stream (and so shows no backlog) is not scaled in until
#   it falls behind again;
# - per desired task (tasks asked for), not running: while new tasks start, per running task
#   the work still looks high and target tracking would keep adding tasks it already asked for.
# tools/scaling_sim.py replays this policy; docs/capacity.md shows what it does under spikes.
WORK_PER_TASK = "(visible + held + deleted / 60 * {latency}) / IF(tasks > 0, tasks, 1)"
_SQS_QUERIES = (
    ("visible", "ApproximateNumberOfMessagesVisible", "Average"),
    ("held", "ApproximateNumberOfMessagesNotVisible", "Average"),
    ("deleted", "NumberOfMessagesDeleted", "Sum"),
)


def work_per_task_expression(acceptable_latency_seconds: int) -> str:
    return WORK_PER_TASK.format(latency=acceptable_latency_seconds)


class Scaling(Construct):
    """Target tracking of backlog (visible + in flight) per task between min_tasks and
    max_tasks; tools/scaling_sim.py replays this policy minute by minute."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service: ecs.FargateService,
        queue: sqs.IQueue,
        min_tasks: int,
        max_tasks: int,
        backlog_per_task_target: int,
        acceptable_latency_seconds: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self._service = service
        stack = Stack.of(self)
        cluster_name = service.cluster.cluster_name
        scaling_role = iam.Role.from_role_arn(
            self,
            "ScalingRole",
            stack.format_arn(
                service="iam",
                region="",
                resource="role/aws-service-role/ecs.application-autoscaling.amazonaws.com",
                resource_name="AWSServiceRoleForApplicationAutoScaling_ECSService",
            ),
        )
        self.scalable_target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.ECS,
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=f"service/{cluster_name}/{service.service_name}",
            min_capacity=min_tasks,
            max_capacity=max_tasks,
            role=scaling_role,
        )

        prop = appscaling.CfnScalingPolicy
        expression = work_per_task_expression(acceptable_latency_seconds)

        def query(
            query_id: str, namespace: str, name: str, stat: str, dimensions: dict[str, str]
        ) -> appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty:
            return prop.TargetTrackingMetricDataQueryProperty(
                id=query_id,
                metric_stat=prop.TargetTrackingMetricStatProperty(
                    metric=prop.TargetTrackingMetricProperty(
                        namespace=namespace,
                        metric_name=name,
                        dimensions=[
                            prop.TargetTrackingMetricDimensionProperty(name=k, value=v)
                            for k, v in dimensions.items()
                        ],
                    ),
                    stat=stat,
                ),
                return_data=False,
            )

        queue_dimension = {"QueueName": queue.queue_name}
        service_dimensions = {"ClusterName": cluster_name, "ServiceName": service.service_name}
        # Metric math needs the L1 (aws-cdk #20659).
        self.scaling_policy = prop(
            self,
            "BacklogPerTaskScaling",
            policy_name=f"{stack.stack_name}-backlog-per-task",
            policy_type="TargetTrackingScaling",
            scaling_target_id=self.scalable_target.scalable_target_id,
            target_tracking_scaling_policy_configuration=prop.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=backlog_per_task_target,
                scale_out_cooldown=SCALE_OUT_COOLDOWN_SECONDS,
                scale_in_cooldown=SCALE_IN_COOLDOWN_SECONDS,
                customized_metric_specification=prop.CustomizedMetricSpecificationProperty(
                    metrics=[
                        *(
                            query(query_id, "AWS/SQS", name, stat, queue_dimension)
                            for query_id, name, stat in _SQS_QUERIES
                        ),
                        query(
                            "tasks",
                            "ECS/ContainerInsights",
                            "DesiredTaskCount",
                            "Average",
                            service_dimensions,
                        ),
                        prop.TargetTrackingMetricDataQueryProperty(
                            id="backlog_per_task",
                            expression=expression,
                            label="Work per task",
                            return_data=True,
                        ),
                    ]
                ),
            ),
        )
        self.backlog_per_task_metric = cloudwatch.MathExpression(
            expression=expression,
            label="Work per task",
            using_metrics={
                "visible": queue.metric_approximate_number_of_messages_visible(),
                "held": queue.metric_approximate_number_of_messages_not_visible(),
                "deleted": queue.metric_number_of_messages_deleted(statistic="Sum"),
                "tasks": self._service_metric("DesiredTaskCount"),
            },
            period=Duration.minutes(1),
        )

    def running_tasks_metric(self) -> cloudwatch.Metric:
        return self._service_metric("RunningTaskCount")

    def _service_metric(self, name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="ECS/ContainerInsights",
            metric_name=name,
            dimensions_map={
                "ClusterName": self._service.cluster.cluster_name,
                "ServiceName": self._service.service_name,
            },
            statistic="Average",
            period=Duration.minutes(1),
        )
