"""The worker: its task definition and the Fargate service that keeps it running."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from .config import HEALTH_PORT
from .task_cluster import PLATFORM, TaskCluster


class WorkerService(Construct):
    """Private Fargate service (circuit breaker with rollback, optional Fargate Spot)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        tasks: TaskCluster,
        subnets: ec2.SubnetSelection,
        secrets: Mapping[str, ecs.Secret],
        cpu: int,
        memory_mib: int,
        fargate_spot: bool,
    ) -> None:
        super().__init__(scope, construct_id)

        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "WorkerTask",
            family=f"{name_prefix}-worker",
            cpu=cpu,
            memory_limit_mib=memory_mib,
            runtime_platform=PLATFORM,
            execution_role=tasks.execution_role,
        )
        self.container = tasks.add_container(
            self.task_definition,
            command=tasks.image.worker_command,
            stream_prefix="worker",
            secrets=secrets,
        )
        self.container.add_port_mappings(ecs.PortMapping(container_port=HEALTH_PORT, name="health"))
        self.task_role = self.task_definition.task_role

        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=tasks.cluster,
            task_definition=self.task_definition,
            security_groups=[tasks.task_security_group],
            vpc_subnets=subnets,
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
