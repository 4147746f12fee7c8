"""The one-off migration task definition that CI runs before rolling the service."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_ecs as ecs
from constructs import Construct

from .task_cluster import TaskCluster


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

        self.execution_role, self.task_definition, self.container = tasks.add_one_off_task(
            self,
            role_id="MigrationExecutionRole",
            role_description="order-service migration: ECR pull, CloudWatch Logs, master secret "
            "injection",
            task_id="MigrationTask",
            family=f"{name_prefix}-migrate",
            cpu=cpu,
            memory_mib=memory_mib,
            command=tasks.image.migrate_command,
            stream_prefix="migrate",
            secrets=secrets,
        )
