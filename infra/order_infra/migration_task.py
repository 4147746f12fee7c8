"""The one-off migration task definition that CI runs before rolling the service."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_ecs as ecs
from constructs import Construct

from .task_cluster import PLATFORM, TaskCluster


class MigrationTask(Construct):
    """Same image, roles and network as the worker; runs `migrate` and exits."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        tasks: TaskCluster,
        secrets: Mapping[str, ecs.Secret],
        cpu: int,
        memory_mib: int,
    ) -> None:
        super().__init__(scope, construct_id)

        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "MigrationTask",
            family=f"{name_prefix}-migrate",
            cpu=cpu,
            memory_limit_mib=memory_mib,
            runtime_platform=PLATFORM,
            execution_role=tasks.execution_role,
        )
        self.container = tasks.add_container(
            self.task_definition,
            command=tasks.image.migrate_command,
            stream_prefix="migrate",
            secrets=secrets,
            health_check=False,
        )
