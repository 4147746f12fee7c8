"""Traces on AWS (issue 15): an ADOT collector beside the worker, sending to X-Ray.

The worker exports OTLP/HTTP to localhost (the task's containers share one network namespace);
the collector batches the spans and calls X-Ray's PutTraceSegments with the task role. The
collector is not essential and the worker waits only for it to start: a collector that fails
loses traces, never orders (infra/README.md, Tracing).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from .config import Tracing
from .container_hardening import no_capabilities
from .nag import acknowledge
from .tracing import (
    COLLECTOR_CONTAINER_NAME,
    COLLECTOR_CPU_UNITS,
    COLLECTOR_GOMEMLIMIT,
    COLLECTOR_MEMORY_MIB,
    COLLECTOR_USER,
    XRAY_ACTIONS,
    collector_config,
    collector_image,
    worker_environment,
)


class TraceCollector(Construct):
    """The ADOT collector sidecar of the worker's task, its X-Ray permission, and the
    worker's OTEL_* variables pointing at it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tracing: Tracing,
        task_definition: ecs.FargateTaskDefinition,
        worker: ecs.ContainerDefinition,
        log_group: logs.ILogGroup,
        service_name: str,
        environment: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.container = task_definition.add_container(
            COLLECTOR_CONTAINER_NAME,
            image=ecs.ContainerImage.from_registry(collector_image()),
            essential=False,
            cpu=COLLECTOR_CPU_UNITS,
            memory_limit_mib=COLLECTOR_MEMORY_MIB,
            user=COLLECTOR_USER,
            readonly_root_filesystem=True,
            linux_parameters=no_capabilities(self, "LinuxParameters"),
            environment={
                "AOT_CONFIG_CONTENT": stack.to_json_string(
                    collector_config(log_group_name=log_group.log_group_name)
                ),
                "AWS_REGION": stack.region,
                "GOMEMLIMIT": COLLECTOR_GOMEMLIMIT,
            },
            logging=ecs.LogDriver.aws_logs(
                stream_prefix=COLLECTOR_CONTAINER_NAME, log_group=log_group
            ),
            # Informational: a non-essential container's health does not count in the task's.
            health_check=ecs.HealthCheck(
                command=["CMD", "/healthcheck"],
                interval=Duration.seconds(30),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(10),
            ),
        )
        # START, not HEALTHY: a collector that never gets healthy must not keep the worker
        # from starting. ECS stops containers in the reverse order, so the collector outlives
        # the worker's drain and receives its last spans.
        worker.add_container_dependencies(
            ecs.ContainerDependency(
                container=self.container, condition=ecs.ContainerDependencyCondition.START
            )
        )
        for name, value in worker_environment(
            tracing, service_name=service_name, environment=environment
        ).items():
            worker.add_environment(name, value)

        task_role = task_definition.task_role
        task_role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(XRAY_ACTIONS), resources=["*"])
        )
        acknowledge(
            task_role,
            "AwsSolutions-IAM5[Resource::*]",
            "xray:PutTraceSegments supports no resource-level permission (X-Ray's service "
            "authorization reference): the collector sidecar may only write trace segments.",
        )
