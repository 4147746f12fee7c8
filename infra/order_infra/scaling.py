"""Scaling of the worker service on the queue's backlog per running task."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

BACKLOG_PER_TASK = "visible / IF(tasks > 0, tasks, 1)"


class Scaling(Construct):
    """Target tracking of backlog per task between min_tasks and max_tasks."""

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
        dimensions = [
            prop.TargetTrackingMetricDimensionProperty(name="ClusterName", value=cluster_name),
            prop.TargetTrackingMetricDimensionProperty(
                name="ServiceName", value=service.service_name
            ),
        ]
        # Backlog per task = visible messages / running tasks (at least 1), tracked against
        # acceptable latency / seconds per message. Metric math needs the L1 (aws-cdk #20659).
        self.scaling_policy = prop(
            self,
            "BacklogPerTaskScaling",
            policy_name=f"{stack.stack_name}-backlog-per-task",
            policy_type="TargetTrackingScaling",
            scaling_target_id=self.scalable_target.scalable_target_id,
            target_tracking_scaling_policy_configuration=prop.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=backlog_per_task_target,
                scale_out_cooldown=60,
                scale_in_cooldown=300,
                customized_metric_specification=prop.CustomizedMetricSpecificationProperty(
                    metrics=[
                        prop.TargetTrackingMetricDataQueryProperty(
                            id="visible",
                            metric_stat=prop.TargetTrackingMetricStatProperty(
                                metric=prop.TargetTrackingMetricProperty(
                                    namespace="AWS/SQS",
                                    metric_name="ApproximateNumberOfMessagesVisible",
                                    dimensions=[
                                        prop.TargetTrackingMetricDimensionProperty(
                                            name="QueueName", value=queue.queue_name
                                        )
                                    ],
                                ),
                                stat="Average",
                            ),
                            return_data=False,
                        ),
                        prop.TargetTrackingMetricDataQueryProperty(
                            id="tasks",
                            metric_stat=prop.TargetTrackingMetricStatProperty(
                                metric=prop.TargetTrackingMetricProperty(
                                    namespace="ECS/ContainerInsights",
                                    metric_name="RunningTaskCount",
                                    dimensions=dimensions,
                                ),
                                stat="Average",
                            ),
                            return_data=False,
                        ),
                        prop.TargetTrackingMetricDataQueryProperty(
                            id="backlog_per_task",
                            expression=BACKLOG_PER_TASK,
                            label="Backlog per task",
                            return_data=True,
                        ),
                    ]
                ),
            ),
        )
        self.backlog_per_task_metric = cloudwatch.MathExpression(
            expression=BACKLOG_PER_TASK,
            label="Backlog per task",
            using_metrics={
                "visible": queue.metric_approximate_number_of_messages_visible(),
                "tasks": self.running_tasks_metric(),
            },
            period=Duration.minutes(1),
        )

    def running_tasks_metric(self) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="ECS/ContainerInsights",
            metric_name="RunningTaskCount",
            dimensions_map={
                "ClusterName": self._service.cluster.cluster_name,
                "ServiceName": self._service.service_name,
            },
            statistic="Average",
            period=Duration.minutes(1),
        )
