"""The one-off migration task definition that CI runs before rolling the service."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_ecs as ecs
from constructs import Construct

from .task_cluster import PLATFORM, TaskCluster


class MigrationTask(Construct):
    """Same image and network as the worker; runs `migrate` as the database owner and exits.

    Its own execution role: the only one that may read the master secret.
    """

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

        self.execution_role = tasks.add_execution_role(
            self,
            "MigrationExecutionRole",
            "order-service migration: ECR pull, CloudWatch Logs, master and app secret injection",
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "MigrationTask",
            family=f"{name_prefix}-migrate",
            cpu=cpu,
            memory_limit_mib=memory_mib,
            runtime_platform=PLATFORM,
            execution_role=self.execution_role,
        )
        self.container = tasks.add_container(
            self.task_definition,
            command=tasks.image.migrate_command,
            stream_prefix="migrate",
            secrets=secrets,
            health_check=False,
        )
