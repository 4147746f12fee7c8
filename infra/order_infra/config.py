"""Typed, per-environment settings: the only place where dev, staging and prod differ.

Everything here is a literal so that synthesis never asks AWS anything (AZ names included).
"""

from __future__ import annotations

from dataclasses import dataclass

# Names shared by the bootstrap stack (which creates them) and the main stack (which imports them).
ECR_REPOSITORY_NAME = "order-service"
STACK_NAME_PREFIX = "OrderService"

# Contract with the container image (see the Dockerfile and src/order_service).
CONTAINER_NAME = "worker"
HEALTH_PORT = 8080
HEALTH_PATH = "/health"
CONTAINER_USER = "10001:10001"  # numeric non-root uid:gid; must match the image's USER
SQS_VISIBILITY_TIMEOUT_SECONDS = 60  # the worker extends visibility to this every third of it
SHUTDOWN_GRACE_SECONDS = 25  # the worker's drain time after SIGTERM ...
STOP_TIMEOUT_SECONDS = 30  # ... strictly below ECS's SIGTERM-to-SIGKILL delay
DATABASE_NAME = "orders"
DATABASE_PORT = 5432

# Identity, access and TLS (the deploy security review). The worker connects as the DML-only
# application role that the migrations create, with TLS verified against the RDS CA bundle
# that the image ships (Dockerfile).
DB_APP_USERNAME = "orders_app"  # src/order_service/migrations/app_role.py APP_ROLE
DB_SSLMODE = "verify-full"
RDS_CA_BUNDLE_PATH = "/opt/rds/global-bundle.pem"  # Dockerfile RDS_CA_BUNDLE
# The GitHub environments that deploy, in promotion order; each has its own deploy role,
# trusted only by jobs bound to that environment, and its own CDK bootstrap qualifier.
DEPLOY_ENVIRONMENTS = ("dev", "staging", "prod")
CDK_QUALIFIERS = {"dev": "ordsvcdev", "staging": "ordsvcstg", "prod": "ordsvcprd"}


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    """What one deployment environment looks like. Immutable; built once by the app."""

    name: str
    region: str
    availability_zones: tuple[str, ...]
    vpc_cidr: str
    nat_gateways: int
    interface_endpoints: bool
    # Database
    db_instance_type: str
    db_allocated_storage_gib: int
    db_max_allocated_storage_gib: int
    db_multi_az: bool
    db_deletion_protection: bool
    db_backup_retention_days: int
    # Compute
    task_cpu: int
    task_memory_mib: int
    min_tasks: int
    max_tasks: int
    fargate_spot: bool
    log_level: str
    log_retention_days: int
    # Scaling: target backlog per task = acceptable latency / time to process one message.
    acceptable_latency_seconds: int
    seconds_per_message: float
    # Alarms
    oldest_message_alarm_seconds: int
    alarm_email: str | None = None
    # Health checks need no ingress; add a CIDR only for an outside uptime check.
    alb_ingress_cidrs: tuple[str, ...] = ()
    retain_data: bool = True  # False only where losing the database is acceptable (dev)

    def __post_init__(self) -> None:
        if len(self.availability_zones) < 2:
            raise ValueError(f"{self.name}: at least two availability zones are required")
        if not all(az.startswith(self.region) for az in self.availability_zones):
            raise ValueError(f"{self.name}: AZs {self.availability_zones} not in {self.region}")
        if not 1 <= self.nat_gateways <= len(self.availability_zones):
            raise ValueError(f"{self.name}: nat_gateways must be between 1 and the AZ count")
        if not 1 <= self.min_tasks <= self.max_tasks:
            raise ValueError(f"{self.name}: need 1 <= min_tasks <= max_tasks")
        if self.backlog_per_task_target < 1:
            raise ValueError(f"{self.name}: acceptable latency is below one message's time")
        if SHUTDOWN_GRACE_SECONDS >= STOP_TIMEOUT_SECONDS:
            raise ValueError("the worker's shutdown grace must be below the ECS stop timeout")

    @property
    def stack_name(self) -> str:
        return f"{STACK_NAME_PREFIX}-{self.name}"

    @property
    def alb_deletion_protection(self) -> bool:
        """The ALB is protected wherever the database is (staging and prod)."""
        return self.db_deletion_protection

    @property
    def cdk_qualifier(self) -> str:
        """This environment's own CDK bootstrap (roles, bucket): no shared deploy role."""
        return CDK_QUALIFIERS[self.name]

    @property
    def backlog_per_task_target(self) -> int:
        """Messages one task may have waiting and still meet the latency target."""
        return int(self.acceptable_latency_seconds / self.seconds_per_message)


ENVIRONMENTS: dict[str, EnvironmentConfig] = {
    "dev": EnvironmentConfig(
        name="dev",
        region="eu-west-1",
        availability_zones=("eu-west-1a", "eu-west-1b"),
        vpc_cidr="10.10.0.0/16",
        nat_gateways=1,
        interface_endpoints=False,
        db_instance_type="t4g.micro",
        db_allocated_storage_gib=20,
        db_max_allocated_storage_gib=50,
        db_multi_az=False,
        db_deletion_protection=False,
        db_backup_retention_days=1,
        task_cpu=256,
        task_memory_mib=512,
        min_tasks=1,
        max_tasks=2,
        fargate_spot=True,
        log_level="DEBUG",
        log_retention_days=7,
        acceptable_latency_seconds=60,
        seconds_per_message=0.5,
        oldest_message_alarm_seconds=900,
        retain_data=False,
    ),
    "staging": EnvironmentConfig(
        name="staging",
        region="eu-west-1",
        availability_zones=("eu-west-1a", "eu-west-1b"),
        vpc_cidr="10.20.0.0/16",
        nat_gateways=1,
        interface_endpoints=True,
        db_instance_type="t4g.small",
        db_allocated_storage_gib=20,
        db_max_allocated_storage_gib=100,
        db_multi_az=False,
        db_deletion_protection=True,
        db_backup_retention_days=7,
        task_cpu=512,
        task_memory_mib=1024,
        min_tasks=1,
        max_tasks=4,
        fargate_spot=False,
        log_level="INFO",
        log_retention_days=30,
        acceptable_latency_seconds=30,
        seconds_per_message=0.25,
        oldest_message_alarm_seconds=300,
    ),
    "prod": EnvironmentConfig(
        name="prod",
        region="eu-west-1",
        availability_zones=("eu-west-1a", "eu-west-1b", "eu-west-1c"),
        vpc_cidr="10.30.0.0/16",
        nat_gateways=3,
        interface_endpoints=True,
        db_instance_type="m7g.large",
        db_allocated_storage_gib=100,
        db_max_allocated_storage_gib=500,
        db_multi_az=True,
        db_deletion_protection=True,
        db_backup_retention_days=14,
        task_cpu=512,
        task_memory_mib=1024,
        min_tasks=2,
        max_tasks=10,
        fargate_spot=False,
        log_level="INFO",
        log_retention_days=90,
        acceptable_latency_seconds=30,
        seconds_per_message=0.25,
        oldest_message_alarm_seconds=300,
    ),
}


def get_environment(name: str | None) -> EnvironmentConfig:
    """The config for `name`, or a ValueError that lists the valid names."""
    valid = ", ".join(ENVIRONMENTS)
    if not name:
        raise ValueError(f"missing environment: pass -c env=<name> with one of: {valid}")
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        raise ValueError(f"unknown environment {name!r}: expected one of: {valid}") from None


# The way out: order status events (the outbox relay's SNS topic, an example subscriber and the
# relay's lag alarm; infra/order_infra/status_events.py). One block, so that it merges apart
# from the rest of this file.
STATUS_TOPIC_SUFFIX = "order-status"
OUTBOX_LAG_ALARM_SECONDS = 120  # the relay publishes within a second; minutes mean it is stuck
