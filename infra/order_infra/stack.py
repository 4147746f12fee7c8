"""The order-service stack: composes the constructs and does the cross-unit wiring."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnElement, CfnOutput, Duration, Fn, RemovalPolicy, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from .config import (
    CREDENTIAL_ROTATION_DAYS,
    DATABASE_NAME,
    DATABASE_PORT,
    DB_SSLMODE,
    ECR_REPOSITORY_NAME,
    HEALTH_PORT,
    OUTBOX_LAG_ALARM_SECONDS,
    RDS_CA_BUNDLE_PATH,
    SHUTDOWN_GRACE_SECONDS,
    SQS_VISIBILITY_TIMEOUT_SECONDS,
    STATUS_TOPIC_SUFFIX,
    EnvironmentConfig,
)
from .credential_rotation import CredentialRotation
from .database import Database
from .health_endpoint import HealthEndpoint
from .logical_ids import LegacyPaths
from .messaging import Messaging
from .migration_task import MigrationTask
from .monitoring import Monitoring
from .network import Network
from .permissions_boundary import PERMISSIONS_BOUNDARY_NAME
from .policy_grants import ENVIRONMENT_TAG
from .scaling import Scaling
from .status_events import StatusEvents
from .task_cluster import TaskCluster
from .worker_image import WorkerImage
from .worker_service import WorkerService

# The worker reads the application secret itself at each new connection (DB_SECRET_ARN), so
# that a rotation reaches it without a restart; the migration and the rotation get the master
# user's credentials as ECS secrets (JSON keys of a Secrets Manager secret), and the migration
# reads the application secret (DB_SECRET_ARN) for the user whose password it sets.
DB_CREDENTIAL_KEYS = {"DB_USER": "username", "DB_PASSWORD": "password"}
# These units were one construct, "Compute", until it was split; their resources keep the
# logical ids they had there, so no deployed resource is replaced (test_infra_logical_ids).
LEGACY_SCOPES = {
    unit: "Compute"
    for unit in ("TaskCluster", "WorkerService", "MigrationTask", "HealthEndpoint", "Scaling")
}


class OrderServiceStack(Stack):
    """One environment of the order-processing service."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        image_digest: str | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("service", "order-service")
        Tags.of(self).add(ENVIRONMENT_TAG, config.name)
        # Every role this stack makes carries its environment's boundary (created by the delivery
        # bootstrap); the execution policy refuses a role without it (execution_policy.py).
        iam.PermissionsBoundary.of(self).apply(
            iam.ManagedPolicy.from_managed_policy_name(
                self, "PermissionsBoundary", PERMISSIONS_BOUNDARY_NAME.format(env=config.name)
            )
        )

        removal_policy = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        retention = log_retention(config.log_retention_days)

        self.network = Network(
            self,
            "Network",
            cidr=config.vpc_cidr,
            availability_zones=config.availability_zones,
            nat_gateways=config.nat_gateways,
            interface_endpoints=config.interface_endpoints,
            flow_log_retention=retention,
            removal_policy=removal_policy,
        )
        self.messaging = Messaging(
            self,
            "Messaging",
            visibility_timeout=Duration.seconds(SQS_VISIBILITY_TIMEOUT_SECONDS),
            removal_policy=removal_policy,
            fifo=config.queue_type == "fifo",
        )
        self.status_events = StatusEvents(
            self,
            "StatusEvents",
            topic_name=f"order-service-{config.name}-{STATUS_TOPIC_SUFFIX}",
            queue_name=self.messaging.queue.queue_name,
            lag_alarm_seconds=OUTBOX_LAG_ALARM_SECONDS,
        )
        self.database = Database(
            self,
            "Database",
            vpc=self.network.vpc,
            subnets=self.network.isolated_subnets,
            database_name=DATABASE_NAME,
            port=DATABASE_PORT,
            instance_type=config.db_instance_type,
            allocated_storage_gib=config.db_allocated_storage_gib,
            max_allocated_storage_gib=config.db_max_allocated_storage_gib,
            multi_az=config.db_multi_az,
            deletion_protection=config.db_deletion_protection,
            backup_retention_days=config.db_backup_retention_days,
            removal_policy=(
                RemovalPolicy.SNAPSHOT if config.retain_data else RemovalPolicy.DESTROY
            ),
            instance_identifier=config.database_identifier,
            audit_log_retention=(
                log_retention(config.db_audit_log_retention_days)
                if config.db_audit_log_retention_days
                else None
            ),
            backup_window=config.db_backup_window,
            maintenance_window=config.db_maintenance_window,
            observability=config.db_observability,
            storage_key_mode=config.db_storage_key,
        )

        # Imported in dummy mode too: the first CI migration runs the real image with these
        # task definitions' execution role, before any deploy with an imageDigest.
        repository = ecr.Repository.from_repository_name(self, "Repository", ECR_REPOSITORY_NAME)
        image = (
            WorkerImage.from_ecr(repository, image_digest)
            if image_digest
            else WorkerImage.placeholder()
        )

        name_prefix = f"order-service-{config.name}"
        app_secret = self.database.app_secret
        master_secret = self.database.master_secret
        self.tasks = TaskCluster(
            self,
            "TaskCluster",
            vpc=self.network.vpc,
            image=image,
            image_repository=repository,
            environment={
                "SQS_QUEUE_URL": self.messaging.queue.queue_url,
                "SQS_DLQ_URL": self.messaging.dead_letter_queue.queue_url,
                "SQS_VISIBILITY_TIMEOUT": str(SQS_VISIBILITY_TIMEOUT_SECONDS),
                "AWS_REGION": self.region,
                "HEALTH_PORT": str(HEALTH_PORT),
                "LOG_LEVEL": config.log_level,
                "LOG_FORMAT": "json",
                "LOG_MESSAGES": config.log_messages,
                "EMF_INTERVAL_SECONDS": str(config.emf_interval_seconds),
                "SHUTDOWN_GRACE_SECONDS": str(SHUTDOWN_GRACE_SECONDS),
                "DB_HOST": self.database.endpoint_address,
                "DB_PORT": self.database.endpoint_port,
                "DB_NAME": DATABASE_NAME,
                "DB_SSLMODE": DB_SSLMODE,
                "DB_SSLROOTCERT": RDS_CA_BUNDLE_PATH,
                "ORDER_EVENTS_TOPIC_ARN": self.status_events.topic.topic_arn,
                "DB_SECRET_ARN": app_secret.secret_arn,
            },
            log_retention=retention,
            removal_policy=removal_policy,
        )
        self.worker = WorkerService(
            self,
            "WorkerService",
            name_prefix=name_prefix,
            tasks=self.tasks,
            subnets=self.network.private_subnets,
            secrets={},
            cpu=config.task_cpu,
            memory_mib=config.task_memory_mib,
            fargate_spot=config.fargate_spot,
            tracing=config.tracing,
            environment_name=config.name,
        )
        self.migration = MigrationTask(
            self,
            "MigrationTask",
            name_prefix=name_prefix,
            tasks=self.tasks,
            # Its login: the master user. The application secret (DB_SECRET_ARN, read under
            # the migrations' lock, never injected at start: a rotation may replace it while
            # the task waits for that lock) names the user whose password it sets.
            secrets=ecs_secrets(master_secret, DB_CREDENTIAL_KEYS),
            cpu=config.task_cpu,
            memory_mib=config.task_memory_mib,
        )
        self.credential_rotation = CredentialRotation(
            self,
            "CredentialRotation",
            name_prefix=name_prefix,
            tasks=self.tasks,
            subnets=self.network.private_subnets,
            app_secret=app_secret,
            secrets=ecs_secrets(master_secret, DB_CREDENTIAL_KEYS),
            every_days=CREDENTIAL_ROTATION_DAYS,
        )
        # The worker's connections (and its relay's) read the application secret at login; the
        # migration reads it under its lock.
        app_secret.grant_read(self.worker.task_role)
        app_secret.grant_read(self.migration.task_definition.task_role)
        self.health = HealthEndpoint(
            self,
            "HealthEndpoint",
            vpc=self.network.vpc,
            subnets=self.network.public_subnets,
            ingress_cidrs=config.alb_ingress_cidrs,
            deletion_protection=config.alb_deletion_protection,
        )
        self.scaling = Scaling(
            self,
            "Scaling",
            service=self.worker.service,
            queue=self.messaging.queue,
            min_tasks=config.min_tasks,
            max_tasks=config.max_tasks,
            backlog_per_task_target=config.backlog_per_task_target,
            acceptable_latency_seconds=config.acceptable_latency_seconds,
        )
        self._wire_health_checks()
        self._grant_queue_access()
        # The worker and the migration task share the task security group. One call makes
        # both halves of the rule (the database's ingress, the tasks' egress); a second egress
        # rule of its own would be the same rule twice, which EC2 refuses on create.
        self.database.connections.allow_default_port_from(
            self.tasks.task_security_group, "order-service tasks"
        )

        config.check_alarm_routing()
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            dashboard_name=config.stack_name,
            queue=self.messaging.queue,
            dead_letter_queue=self.messaging.dead_letter_queue,
            service=self.worker.service,
            target_group=self.health.target_group,
            database=self.database.instance,
            database_instance_type=config.db_instance_type,
            running_tasks=self.scaling.running_tasks_metric(),
            backlog_per_task=self.scaling.backlog_per_task_metric,
            backlog_per_task_target=config.backlog_per_task_target,
            oldest_message_alarm_seconds=config.oldest_message_alarm_seconds,
            alarm_routing=config.alarms,
        )
        self._wire_status_events()
        self.monitoring.alarm_topic.notify_failed_tasks(
            self.credential_rotation,
            "RotationFailed",
            family=self.credential_rotation.task_definition.family,
            what="credential rotation",
        )
        self._add_outputs()

    def _allocate_logical_id(self, cfn_element: CfnElement) -> str:
        if not hasattr(self, "_legacy_paths"):  # the first id may be asked for during init
            self._legacy_paths = LegacyPaths(self, LEGACY_SCOPES)
        legacy = self._legacy_paths.logical_id(cfn_element)
        return legacy if legacy is not None else super()._allocate_logical_id(cfn_element)

    def _wire_health_checks(self) -> None:
        """The ALB's target group holds the worker tasks; only the ALB reaches their port."""
        service = self.worker.service
        service.attach_to_application_target_group(self.health.target_group)
        service.connections.allow_from(
            self.health.security_group, ec2.Port.tcp(HEALTH_PORT), "ALB health checks"
        )

    def _grant_queue_access(self) -> None:
        # Exactly what consuming needs; SSE-SQS uses no customer key, so no KMS grant.
        role = self.worker.task_role
        self.messaging.queue.grant(
            role,
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
        )
        self.messaging.dead_letter_queue.grant(role, "sqs:SendMessage", "sqs:GetQueueAttributes")

    def _wire_status_events(self) -> None:
        """The worker's relay may publish to the status topic and nothing else; the lag alarm
        notifies like the others, and its widgets join the dashboard."""
        self.status_events.grant_publish(self.worker.task_role)
        self.monitoring.alarm_topic.notify(self.status_events.lag_alarm)
        self.monitoring.alarm_topic.notify(self.status_events.parked_alarm)
        self.monitoring.dashboard.add_widgets(*self.status_events.widgets)

    def _add_outputs(self) -> None:
        """Only what CI and operators need (deploy.yml, the migration command, the runbook)."""
        outputs = {
            "ClusterName": self.tasks.cluster.cluster_name,
            "ServiceName": self.worker.service.service_name,
            "MigrationTaskDefinitionArn": self.migration.task_definition.task_definition_arn,
            "PrivateSubnetIds": Fn.join(
                ",", [subnet.subnet_id for subnet in self.network.vpc.private_subnets]
            ),
            "TaskSecurityGroupId": self.tasks.task_security_group.security_group_id,
            "QueueUrl": self.messaging.queue.queue_url,
            "DeadLetterQueueUrl": self.messaging.dead_letter_queue.queue_url,
            # The runbook's subscription check (the stack has a second topic, the status one).
            "AlarmTopicArn": self.monitoring.topic.topic_arn,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)


def ecs_secrets(secret: secretsmanager.ISecret, keys: dict[str, str]) -> dict[str, ecs.Secret]:
    """Container variables from JSON keys of one secret (the execution role may read it)."""
    return {env: ecs.Secret.from_secrets_manager(secret, key) for env, key in keys.items()}


_RETENTION = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


def log_retention(days: int) -> logs.RetentionDays:
    """The CloudWatch Logs retention for a day count that the config may use."""
    try:
        return _RETENTION[days]
    except KeyError:
        raise ValueError(f"log retention must be one of {sorted(_RETENTION)} days") from None
