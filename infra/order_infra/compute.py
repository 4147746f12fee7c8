"""ECS on Fargate (ARM64): the worker service behind an ALB that exposes only /health,
the one-off migration task, and backlog-per-task scaling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .config import (
    CONTAINER_NAME,
    CONTAINER_USER,
    HEALTH_PATH,
    HEALTH_PORT,
    STOP_TIMEOUT_SECONDS,
)
from .nag import acknowledge

# Serves GET /health -> 200 and nothing else; the stand-in for the worker's dummy mode while
# no image is in ECR yet (first creation of the stack). Python's stdlib only.
PLACEHOLDER_IMAGE = "public.ecr.aws/docker/library/python:3.12-slim"
PLACEHOLDER_SERVER = (
    "import http.server as h\n"
    "class H(h.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    f"        self.send_response(200 if self.path == {HEALTH_PATH!r} else 404)\n"
    "        self.end_headers()\n"
    f"h.HTTPServer(('', {HEALTH_PORT}), H).serve_forever()\n"
)
# Keys of the JSON secret that RDS generates, injected as the worker's DB_* variables.
DB_SECRET_KEYS = {
    "DB_HOST": "host",
    "DB_PORT": "port",
    "DB_NAME": "dbname",
    "DB_USER": "username",
    "DB_PASSWORD": "password",
}


@dataclass(frozen=True, kw_only=True)
class WorkerImage:
    """Which image the tasks run and how to start each of its commands."""

    image: ecs.ContainerImage
    worker_mode: str
    worker_command: list[str]
    migrate_command: list[str]
    health_check_command: list[str]
    entry_point: list[str] | None = None  # None: the image's own ENTRYPOINT
    description: str = field(default="")

    @classmethod
    def from_ecr(cls, repository: ecr.IRepository, tag: str) -> WorkerImage:
        """The order-service image CI pushed (linux/arm64), in normal mode."""
        return cls(
            image=ecs.ContainerImage.from_ecr_repository(repository, tag),
            worker_mode="normal",
            worker_command=["worker"],
            migrate_command=["migrate"],
            health_check_command=["CMD", "order-service", "healthcheck"],
            description=f"{repository.repository_name}:{tag}",
        )

    @classmethod
    def placeholder(cls) -> WorkerImage:
        """A public multi-arch image that answers /health, for the very first deploy."""
        check = f"import urllib.request as u; u.urlopen('http://127.0.0.1:{HEALTH_PORT}/health')"
        return cls(
            image=ecs.ContainerImage.from_registry(PLACEHOLDER_IMAGE),
            worker_mode="dummy",
            entry_point=["python", "-c"],
            worker_command=[PLACEHOLDER_SERVER],
            migrate_command=["print('dummy mode: nothing to migrate')"],
            health_check_command=["CMD", "python", "-c", check],
            description=PLACEHOLDER_IMAGE,
        )


class Compute(Construct):
    """Cluster, worker service, migration task definition, ALB and autoscaling."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        vpc: ec2.IVpc,
        task_subnets: ec2.SubnetSelection,
        load_balancer_subnets: ec2.SubnetSelection,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        database_secret: secretsmanager.ISecret,
        image: WorkerImage,
        image_repository: ecr.IRepository,
        environment: Mapping[str, str],
        cpu: int,
        memory_mib: int,
        min_tasks: int,
        max_tasks: int,
        backlog_per_task_target: int,
        fargate_spot: bool,
        log_retention: logs.RetentionDays,
        alb_ingress_cidrs: Sequence[str],
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)

        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
            enable_fargate_capacity_providers=True,
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=removal_policy
        )

        # One execution role for both task definitions: pull the image, write logs, inject
        # the database secret. Nothing else.
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="order-service: ECR pull, CloudWatch Logs, database secret injection",
        )
        image_repository.grant_pull(self.execution_role)
        secrets = {
            env: ecs.Secret.from_secrets_manager(database_secret, key)
            for env, key in DB_SECRET_KEYS.items()
        }
        platform = ecs.RuntimePlatform(
            cpu_architecture=ecs.CpuArchitecture.ARM64,
            operating_system_family=ecs.OperatingSystemFamily.LINUX,
        )
        container_environment = {**environment, "WORKER_MODE": image.worker_mode}

        self.worker_task_definition = ecs.FargateTaskDefinition(
            self,
            "WorkerTask",
            family=f"{name_prefix}-worker",
            cpu=cpu,
            memory_limit_mib=memory_mib,
            runtime_platform=platform,
            execution_role=self.execution_role,
        )
        self.worker_container = self._add_container(
            self.worker_task_definition,
            image=image,
            command=image.worker_command,
            stream_prefix="worker",
            environment=container_environment,
            secrets=secrets,
        )
        self.worker_container.add_port_mappings(
            ecs.PortMapping(container_port=HEALTH_PORT, name="health")
        )

        self.migration_task_definition = ecs.FargateTaskDefinition(
            self,
            "MigrationTask",
            family=f"{name_prefix}-migrate",
            cpu=cpu,
            memory_limit_mib=memory_mib,
            runtime_platform=platform,
            execution_role=self.execution_role,
        )
        self._add_container(
            self.migration_task_definition,
            image=image,
            command=image.migrate_command,
            stream_prefix="migrate",
            environment=container_environment,
            secrets=secrets,
            health_check=False,
        )

        # Tasks reach AWS APIs over HTTPS (NAT or endpoints); the stack adds PostgreSQL.
        self.task_security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=vpc,
            description="order-service tasks (worker and migration)",
            allow_all_outbound=False,
        )
        self.task_security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs over HTTPS"
        )

        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=self.worker_task_definition,
            security_groups=[self.task_security_group],
            vpc_subnets=task_subnets,
            assign_public_ip=False,
            platform_version=ecs.FargatePlatformVersion.VERSION1_4,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=200,
            health_check_grace_period=Duration.seconds(60),
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            capacity_provider_strategies=(
                [ecs.CapacityProviderStrategy(capacity_provider="FARGATE_SPOT", weight=1)]
                if fargate_spot
                else None
            ),
        )

        self._add_load_balancer(vpc, load_balancer_subnets, alb_ingress_cidrs, removal_policy)
        self._add_scaling(queue, min_tasks, max_tasks, backlog_per_task_target)
        self._grant_queue_access(queue, dead_letter_queue)
        self._acknowledge_findings(image)

    def _add_container(
        self,
        task_definition: ecs.FargateTaskDefinition,
        *,
        image: WorkerImage,
        command: list[str],
        stream_prefix: str,
        environment: Mapping[str, str],
        secrets: Mapping[str, ecs.Secret],
        health_check: bool = True,
    ) -> ecs.ContainerDefinition:
        container = task_definition.add_container(
            CONTAINER_NAME,
            image=image.image,
            entry_point=image.entry_point,
            command=command,
            user=CONTAINER_USER,
            readonly_root_filesystem=True,
            environment=dict(environment),
            secrets=dict(secrets),
            logging=ecs.LogDriver.aws_logs(stream_prefix=stream_prefix, log_group=self.log_group),
            stop_timeout=Duration.seconds(STOP_TIMEOUT_SECONDS),
            health_check=(
                ecs.HealthCheck(
                    command=image.health_check_command,
                    interval=Duration.seconds(30),
                    timeout=Duration.seconds(5),
                    retries=3,
                    start_period=Duration.seconds(30),
                )
                if health_check
                else None
            ),
        )
        # The only writable path of a read-only root filesystem: task-local scratch space.
        task_definition.add_volume(name="tmp")
        container.add_mount_points(
            ecs.MountPoint(container_path="/tmp", source_volume="tmp", read_only=False)  # noqa: S108
        )
        return container

    def _add_load_balancer(
        self,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        ingress_cidrs: Sequence[str],
        removal_policy: RemovalPolicy,
    ) -> None:
        self.load_balancer_security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=vpc,
            description="order-service ALB: HTTP in, health checks out to the tasks",
            allow_all_outbound=False,
        )
        for cidr in ingress_cidrs:
            self.load_balancer_security_group.add_ingress_rule(
                ec2.Peer.ipv4(cidr), ec2.Port.tcp(80), "HTTP; only /health is forwarded"
            )
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # the only encryption ALB logs support
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            vpc_subnets=subnets,
            internet_facing=True,
            security_group=self.load_balancer_security_group,
            drop_invalid_header_fields=True,
        )
        self.load_balancer.log_access_logs(self.access_log_bucket, prefix="alb")
        # Everything but GET/HEAD /health gets a fixed 404: /ready and /metrics stay private.
        listener = self.load_balancer.add_listener(
            "Http",
            port=80,
            open=False,
            default_action=elbv2.ListenerAction.fixed_response(
                404, content_type="text/plain", message_body="Not Found"
            ),
        )
        self.target_group = elbv2.ApplicationTargetGroup(
            self,
            "HealthTargets",
            vpc=vpc,
            port=HEALTH_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            deregistration_delay=Duration.seconds(10),
            health_check=elbv2.HealthCheck(
                path=HEALTH_PATH,
                healthy_http_codes="200",
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
        )
        listener.add_action(
            "Health",
            priority=10,
            conditions=[
                elbv2.ListenerCondition.path_patterns([HEALTH_PATH]),
                elbv2.ListenerCondition.http_request_methods(["GET", "HEAD"]),
            ],
            action=elbv2.ListenerAction.forward([self.target_group]),
        )
        self.service.attach_to_application_target_group(self.target_group)
        self.service.connections.allow_from(
            self.load_balancer_security_group, ec2.Port.tcp(HEALTH_PORT), "ALB health checks"
        )

        acknowledge(
            self.access_log_bucket,
            "AwsSolutions-S1",
            "This bucket receives the ALB access logs; logging its own access would "
            "need another bucket that records reads of logs nobody reads but operators.",
        )
        if "0.0.0.0/0" in ingress_cidrs:
            acknowledge(
                self.load_balancer_security_group,
                "AwsSolutions-EC23",
                "Public ALB on purpose: the listener forwards only GET/HEAD /health "
                "(no data, no auth) and answers a fixed 404 to everything else.",
            )

    def _add_scaling(
        self, queue: sqs.IQueue, min_tasks: int, max_tasks: int, backlog_per_task_target: int
    ) -> None:
        stack = Stack.of(self)
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
            resource_id=f"service/{self.cluster.cluster_name}/{self.service.service_name}",
            min_capacity=min_tasks,
            max_capacity=max_tasks,
            role=scaling_role,
        )

        prop = appscaling.CfnScalingPolicy
        dimensions = [
            prop.TargetTrackingMetricDimensionProperty(
                name="ClusterName", value=self.cluster.cluster_name
            ),
            prop.TargetTrackingMetricDimensionProperty(
                name="ServiceName", value=self.service.service_name
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
                            expression="visible / IF(tasks > 0, tasks, 1)",
                            label="Backlog per task",
                            return_data=True,
                        ),
                    ]
                ),
            ),
        )
        self.backlog_per_task_metric = cloudwatch.MathExpression(
            expression="visible / IF(tasks > 0, tasks, 1)",
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
                "ClusterName": self.cluster.cluster_name,
                "ServiceName": self.service.service_name,
            },
            statistic="Average",
            period=Duration.minutes(1),
        )

    def _grant_queue_access(self, queue: sqs.IQueue, dead_letter_queue: sqs.IQueue) -> None:
        # Exactly what consuming needs; SSE-SQS uses no customer key, so no KMS grant.
        role = self.worker_task_definition.task_role
        queue.grant(
            role,
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
        )
        dead_letter_queue.grant(role, "sqs:SendMessage", "sqs:GetQueueAttributes")

    def _acknowledge_findings(self, image: WorkerImage) -> None:
        for task_definition in (self.worker_task_definition, self.migration_task_definition):
            acknowledge(
                task_definition,
                "AwsSolutions-ECS2",
                "Only non-secret settings (queue URLs, region, log level, mode) are "
                "plain environment variables; database credentials are ECS secrets.",
            )
        acknowledge(
            self.execution_role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken supports no resource-level permission; image "
            "pulls themselves are scoped to the one repository.",
        )
