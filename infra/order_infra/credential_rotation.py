"""The application's database credentials, rotated on a schedule by a one-off task of our image.

Not Secrets Manager's own rotation: its hosted rotation (a SecretsManager transform) and the
SAR rotation application both create their Lambda function's role in a nested stack of their
own, without this environment's permissions boundary, which the CloudFormation execution policy
requires of every role it creates (permissions_boundary.py): the first deploy would fail. A
Lambda function of our own would need a PostgreSQL driver packaged at synth. This is the
migration task's shape instead (migration_task.py): the same image and network, `order-service
rotate-credentials` (src/order_service/ops/rotate_credentials.py), started by an EventBridge
rule; every role is this stack's, under the boundary.

Its execution role injects the master user's credentials (like the migration's); its task role
reads and writes the application secret, which no other role may write. The secret is
encrypted with Secrets Manager's AWS-managed key: no KMS grant.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from .config import ROTATE_FAMILY_SUFFIX
from .nag import acknowledge
from .task_cluster import TaskCluster


class CredentialRotation(Construct):
    """The rotation task definition and the rule that starts it every `every_days` days."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        tasks: TaskCluster,
        subnets: ec2.SubnetSelection,
        app_secret: secretsmanager.ISecret,
        secrets: Mapping[str, ecs.Secret],
        every_days: int,
    ) -> None:
        """`secrets`: the master user's credentials as ECS secrets (DB_USER, DB_PASSWORD); the
        application secret's ARN is DB_SECRET_ARN in the tasks' shared environment."""
        super().__init__(scope, construct_id)

        self.execution_role, self.task_definition, self.container = tasks.add_one_off_task(
            self,
            role_id="ExecutionRole",
            role_description="order-service credential rotation: ECR pull, CloudWatch Logs, "
            "master secret injection",
            task_id="TaskDefinition",
            family=f"{name_prefix}-{ROTATE_FAMILY_SUFFIX}",
            cpu=256,  # a few statements and two API calls: the smallest Fargate task
            memory_mib=512,
            command=tasks.image.rotate_command,
            stream_prefix="rotate",
            secrets=secrets,
        )
        self.task_role = self.task_definition.task_role
        # Exactly the two calls a rotation makes on the one secret (no UpdateSecret, no
        # staging labels: put_secret_value moves AWSCURRENT and AWSPREVIOUS itself).
        self.task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
                resources=[app_secret.secret_arn],
            )
        )

        # A rate, not a cron: the first run is `every_days` after the rule is created, which
        # leaves the deploy's migration (revision 0008: the second user) well ahead of it.
        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"order-service: rotate the application's database password every "
            f"{every_days} days (alternating users)",
            schedule=events.Schedule.rate(Duration.days(every_days)),
        )
        self.schedule.add_target(
            targets.EcsTask(
                cluster=tasks.cluster,
                task_definition=self.task_definition,
                launch_type=ecs.LaunchType.FARGATE,
                subnet_selection=subnets,
                security_groups=[tasks.task_security_group],
                # A run that does not start is retried by the next one; two at once are
                # serialised by the database lock (ops/rotate_credentials.py).
                retry_attempts=2,
                max_event_age=Duration.hours(1),
            )
        )
        # The target's role (EventsRole, under the task definition): RunTask of this task
        # definition in this cluster, PassRole of its two roles, and ecs:TagResource on the
        # tasks it starts, which the CDK writes with any account: still only this cluster's.
        stack = Stack.of(self)
        cluster_id = stack.resolve(tasks.cluster.cluster_name)["Ref"]
        partition = stack.resolve(stack.partition)  # a literal where the account is known
        if not isinstance(partition, str):
            partition = "<AWS::Partition>"
        acknowledge(
            self.task_definition,
            f"AwsSolutions-IAM5[Resource::arn:{partition}:ecs:{stack.region}:*:task/"
            f"<{cluster_id}>/*]",
            "EventBridge tags the rotation task it starts (ecs:TagResource, as the CDK's EcsTask "
            "target grants it): the tasks of this stack's one cluster, named in the ARN.",
        )
        acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "Only non-secret settings are plain environment variables (DB_SECRET_ARN is the "
            "secret's ARN, not its value); the master credentials are ECS secrets.",
        )
