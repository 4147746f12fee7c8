"""The ECS cluster and what the worker and the migration task share: the log group, the
execution role, the task security group and the shape of their one container."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from .config import CONTAINER_NAME, CONTAINER_USER, STOP_TIMEOUT_SECONDS
from .container_hardening import no_capabilities
from .nag import acknowledge
from .worker_image import WorkerImage

# Both task definitions run ARM64 Linux (the image is built for linux/arm64).
PLATFORM = ecs.RuntimePlatform(
    cpu_architecture=ecs.CpuArchitecture.ARM64,
    operating_system_family=ecs.OperatingSystemFamily.LINUX,
)


class TaskCluster(Construct):
    """Cluster (Container Insights, Fargate and Fargate Spot), logs, worker execution role,
    task security group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        image: WorkerImage,
        image_repository: ecr.IRepository,
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.image = image
        self.environment = {**environment, "WORKER_MODE": image.worker_mode}

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

        self._image_repository = image_repository
        # The worker's execution role (the migration task has its own, which alone may read
        # the master secret): pull the image, write logs, inject the task's secrets.
        self.execution_role = self.add_execution_role(
            self,
            "ExecutionRole",
            "order-service worker: ECR pull, CloudWatch Logs, application secret injection",
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

    def add_execution_role(self, scope: Construct, construct_id: str, description: str) -> iam.Role:
        """An execution role that may pull the image; logs and secrets grant themselves."""
        role = iam.Role(
            scope,
            construct_id,
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=description,
        )
        self._image_repository.grant_pull(role)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken supports no resource-level permission; image "
            "pulls themselves are scoped to the one repository.",
        )
        return role

    def add_one_off_task(
        self,
        scope: Construct,
        *,
        role_id: str,
        role_description: str,
        task_id: str,
        family: str,
        cpu: int,
        memory_mib: int,
        command: list[str],
        stream_prefix: str,
        secrets: Mapping[str, ecs.Secret],
    ) -> tuple[iam.Role, ecs.FargateTaskDefinition, ecs.ContainerDefinition]:
        """A task run to its end (the migration, the credential rotation): its own execution
        role, a task definition, its one container without a health check. The ids are the
        caller's, so that deployed resources keep their logical ids."""
        role = self.add_execution_role(scope, role_id, role_description)
        task_definition = ecs.FargateTaskDefinition(
            scope,
            task_id,
            family=family,
            cpu=cpu,
            memory_limit_mib=memory_mib,
            runtime_platform=PLATFORM,
            execution_role=role,
        )
        container = self.add_container(
            task_definition,
            command=command,
            stream_prefix=stream_prefix,
            secrets=secrets,
            health_check=False,
        )
        return role, task_definition, container

    def add_container(
        self,
        task_definition: ecs.FargateTaskDefinition,
        *,
        command: list[str],
        stream_prefix: str,
        secrets: Mapping[str, ecs.Secret],
        health_check: bool = True,
        cpu: int | None = None,
    ) -> ecs.ContainerDefinition:
        """The one container of a task definition: non-root, read-only, logs to the group."""
        image = self.image
        container = task_definition.add_container(
            CONTAINER_NAME,
            image=image.image,
            entry_point=image.entry_point,
            command=command,
            cpu=cpu,
            user=CONTAINER_USER,
            readonly_root_filesystem=True,
            linux_parameters=no_capabilities(task_definition, "WorkerLinuxParameters"),
            environment=dict(self.environment),
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
        acknowledge(
            task_definition,
            "AwsSolutions-ECS2",
            "Only non-secret settings (queue URLs, region, log level, mode, database "
            "host and TLS mode; with tracing, OTEL_* and the trace collector's configuration) "
            "are plain environment variables; credentials are ECS secrets.",
        )
        return container
