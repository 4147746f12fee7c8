"""The worker: its task definition and the Fargate service that keeps it running."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from .config import HEALTH_PORT, Tracing
from .task_cluster import PLATFORM, TaskCluster
from .trace_collector import TraceCollector
from .tracing import COLLECTOR_CPU_UNITS, COLLECTOR_MEMORY_MIB

# The worker keeps at least this much of the task beside the collector (its peak RSS in the
# bench is under 100 MB: bench/results.json, worker_peak_rss_mb).
WORKER_MIN_CPU_UNITS = 128
WORKER_MIN_MEMORY_MIB = 256


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
        tracing: Tracing | None = None,
        environment_name: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        if tracing is not None and (
            cpu - COLLECTOR_CPU_UNITS < WORKER_MIN_CPU_UNITS
            or memory_mib - COLLECTOR_MEMORY_MIB < WORKER_MIN_MEMORY_MIB
        ):
            raise ValueError(
                f"{name_prefix}: a {cpu}/{memory_mib} task leaves the worker too "
                "little beside the trace collector"
            )

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
            # Beside a collector, the worker's CPU share is what the collector leaves.
            cpu=cpu - COLLECTOR_CPU_UNITS if tracing is not None else None,
        )
        self.container.add_port_mappings(ecs.PortMapping(container_port=HEALTH_PORT, name="health"))
        self.task_role = self.task_definition.task_role
        self.trace_collector = (
            TraceCollector(
                self,
                "TraceCollector",
                tracing=tracing,
                task_definition=self.task_definition,
                worker=self.container,
                log_group=tasks.log_group,
                service_name=f"{name_prefix}-worker",
                environment=environment_name,
            )
            if tracing is not None
            else None
        )

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
