"""Typed, per-environment settings: the only place where dev, staging and prod differ.

Everything here is a literal so that synthesis never asks AWS anything (AZ names included).
"""

from __future__ import annotations

from dataclasses import dataclass

from .alarm_routing import AlarmRouting
from .db_windows import check_windows

# Names shared by the bootstrap stack (which creates them) and the main stack (which imports them).
ECR_REPOSITORY_NAME = "order-service"
# The image an environment deploys gets this tag prefix + the commit SHA as a second tag
# (deploy-environment.yml); the ECR lifecycle keeps these images (bootstrap.py).
DEPLOYED_TAG_PREFIX = "deployed-{env}-"
# Where RDS exports an instance's logs (its own naming, not ours): the stack creates these groups
# first (database.py), and the execution policy may manage them (execution_grants.py).
RDS_LOG_GROUP = "/aws/rds/instance/{identifier}/{log}"
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
# The application's password rotates (alternating users, credential_rotation.py) this often:
# within the 90 days of a typical password policy, and far apart enough that a worker's cached
# copy of the secret (5 minutes) always names a user whose password still works.
CREDENTIAL_ROTATION_DAYS = 30
ROTATE_FAMILY_SUFFIX = "rotate-credentials"  # its task definition: order-service-<env>-<this>
DB_SSLMODE = "verify-full"
RDS_CA_BUNDLE_PATH = "/opt/rds/global-bundle.pem"  # Dockerfile RDS_CA_BUNDLE
# The GitHub environments that deploy, in promotion order; each has its own deploy role,
# trusted only by jobs bound to that environment, and its own CDK bootstrap qualifier.
DEPLOY_ENVIRONMENTS = ("dev", "staging", "prod")
CDK_QUALIFIERS = {"dev": "ordsvcdev", "staging": "ordsvcstg", "prod": "ordsvcprd"}

# Target tracking's cooldowns (scaling.py sets them, tools/scaling_sim.py replays them).
SCALE_OUT_COOLDOWN_SECONDS = 60
SCALE_IN_COOLDOWN_SECONDS = 300

# --- Alarm routing (alarm_routing.py) ----------------------------------------------------
# Environments whose alarms must reach a person: their synth fails without a subscriber.
PAGED_ENVIRONMENTS = frozenset({"prod"})


# --- Tracing ---------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Tracing:
    """Tracing on for an environment (issue 15): the worker exports OTLP to an ADOT collector
    sidecar that sends to X-Ray (trace_collector.py). The worker samples at the head with
    `parentbased_traceidratio`: `sampling_ratio` of the traces it starts (a poll, a batch) are
    recorded; X-Ray bills per trace recorded, so this ratio is the cost knob (docs: infra/README).
    `propagators` is OTEL_PROPAGATORS: W3C trace context only, the format `order-service send`
    injects; the worker reads a producer's AWSTraceHeader itself, so no xray propagator."""

    sampling_ratio: float
    propagators: str = "tracecontext"

    def __post_init__(self) -> None:
        if not 0 < self.sampling_ratio <= 1:
            raise ValueError(f"tracing: sampling_ratio {self.sampling_ratio} not in (0, 1]")


QUEUE_TYPES = ("standard", "fifo")


# --- The database's observability and storage key (issue 26) -------------------------------
ENHANCED_MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)  # seconds; RDS's values, 0 = off


@dataclass(frozen=True, kw_only=True)
class DatabaseObservability:
    """Performance Insights, in Database Insights' standard mode (7 days of history, no
    charge), and Enhanced Monitoring (the instance's OS metrics every
    `enhanced_monitoring_seconds` into CloudWatch Logs' RDSOSMetrics group, billed as logs).
    Either off needs `off_reason`: every environment says why."""

    performance_insights: bool
    enhanced_monitoring_seconds: int
    off_reason: str | None = None

    def __post_init__(self) -> None:
        if self.enhanced_monitoring_seconds not in ENHANCED_MONITORING_INTERVALS:
            raise ValueError(
                f"enhanced_monitoring_seconds {self.enhanced_monitoring_seconds} not in "
                f"{ENHANCED_MONITORING_INTERVALS}"
            )
        off = not self.performance_insights or self.enhanced_monitoring_seconds == 0
        if off and not self.off_reason:
            raise ValueError(
                "database observability: say why Performance Insights or "
                "Enhanced Monitoring is off (off_reason)"
            )
        if not off and self.off_reason:
            raise ValueError("database observability: off_reason given, but both are on")


# The key of the database's storage (and its snapshots):
# - "aws-managed": RDS's aws/rds key. Its snapshots cannot be shared with another account.
# - "customer": a key of the stack's own, which the instance is created with: snapshots can be
#   copied to a backup account. Set on an instance that exists, it would replace the instance,
#   which CloudFormation refuses (fixed identifier): the update fails and rolls back.
# - "customer-restored": the stack's key exists, the instance's template names none: the
#   instance was moved onto the key by the runbook's snapshot-copy path (docs/runbook.md,
#   "Moving an existing database onto the stack's key").
DB_STORAGE_KEYS = ("aws-managed", "customer", "customer-restored")


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
    # UTC; the backup window daily (hh:mm-hh:mm), the maintenance window weekly; required, so
    # that no environment gets RDS's random ones (db_windows.py checks them).
    db_backup_window: str
    db_maintenance_window: str
    db_observability: DatabaseObservability
    db_storage_key: str  # one of DB_STORAGE_KEYS
    # The database's audit trail (pgaudit, connections, CloudWatch Logs exports; database.py):
    # how many days its logs are kept, or None for none. Required, so every environment decides.
    db_audit_log_retention_days: int | None
    # Compute
    task_cpu: int
    task_memory_mib: int
    min_tasks: int
    max_tasks: int
    fargate_spot: bool
    log_level: str
    log_retention_days: int
    # Scaling. A task holding a backlog B (visible + in flight) and processing R orders/s
    # clears it in B / R seconds, so the target backlog per task is
    #     backlog_per_task_target = task_orders_per_second x acceptable_latency_seconds
    # task_orders_per_second is a stated planning rate, kept below what `make bench` measures
    # one task of this size to sustain (tests/infra/test_docs_figures.py checks it).
    task_orders_per_second: int
    acceptable_latency_seconds: int
    # Alarms
    oldest_message_alarm_seconds: int
    alarms: AlarmRouting
    # The worker's queue and DLQ: "standard", or "fifo" (both FIFO, in high-throughput mode:
    # deduplication per message group, throughput per group; README "Queue types"). Changing
    # it replaces both queues, and what they hold goes with them: drain them first
    # (infra/README.md, Queue type). `-c queueType=` synthesizes the other type for a check.
    queue_type: str = "standard"
    # Worker telemetry: which messages get a log line of their own (the worker's LOG_MESSAGES:
    # all | not-applied | none; not-applied keeps logs below the SQS cost per order), and the
    # worker's metrics as EMF lines every EMF_INTERVAL_SECONDS (worker_metrics.py).
    log_messages: str = "not-applied"
    emf_interval_seconds: int = 60
    # Traces (None: off, no collector, no X-Ray permission, no OTEL_* variable). Required, so
    # that every environment decides.
    tracing: Tracing | None
    # Health checks need no ingress; add a CIDR only for an outside uptime check.
    alb_ingress_cidrs: tuple[str, ...] = ()
    retain_data: bool = True  # False only where losing the database is acceptable (dev)

    def __post_init__(self) -> None:
        check_windows(self.db_backup_window, self.db_maintenance_window)
        if self.db_storage_key not in DB_STORAGE_KEYS:
            raise ValueError(
                f"{self.name}: db_storage_key {self.db_storage_key!r} not in {DB_STORAGE_KEYS}"
            )
        if self.queue_type not in QUEUE_TYPES:
            raise ValueError(f"{self.name}: queue_type {self.queue_type!r} not in {QUEUE_TYPES}")
        if len(self.availability_zones) < 2:
            raise ValueError(f"{self.name}: at least two availability zones are required")
        if not all(az.startswith(self.region) for az in self.availability_zones):
            raise ValueError(f"{self.name}: AZs {self.availability_zones} not in {self.region}")
        if not 1 <= self.nat_gateways <= len(self.availability_zones):
            raise ValueError(f"{self.name}: nat_gateways must be between 1 and the AZ count")
        if not 1 <= self.min_tasks <= self.max_tasks:
            raise ValueError(f"{self.name}: need 1 <= min_tasks <= max_tasks")
        if self.task_orders_per_second < 1 or self.acceptable_latency_seconds < 1:
            raise ValueError(f"{self.name}: the scaling rate and latency must be positive")
        if SHUTDOWN_GRACE_SECONDS >= STOP_TIMEOUT_SECONDS:
            raise ValueError("the worker's shutdown grace must be below the ECS stop timeout")

    def check_alarm_routing(self) -> None:
        """Called by the stack: the deploy's subscriber is in (app.py), and an environment that
        pages names one."""
        if self.alarms.from_deploy:
            raise ValueError(f"{self.name}: alarms come from the deploy; app.py sets them")
        if self.name in PAGED_ENVIRONMENTS and self.alarms.subscriber is None:
            raise ValueError(
                f"{self.name}: alarms reach nobody; set alarms=AlarmRouting(subscriber=<email "
                "or SNS topic ARN>) in infra/order_infra/config.py"
            )

    @property
    def stack_name(self) -> str:
        return f"{STACK_NAME_PREFIX}-{self.name}"

    @property
    def database_identifier(self) -> str:
        """The RDS instance's fixed identifier: its log groups' names, and the instance RDS tags
        its master secret with (permissions_boundary.py), are known before it exists."""
        return f"order-service-{self.name}"

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
        """Messages (visible + in flight) one task may hold and still meet the latency target."""
        return self.task_orders_per_second * self.acceptable_latency_seconds


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
        db_backup_window="02:00-02:30",
        db_maintenance_window="sun:03:00-sun:03:30",
        db_observability=DatabaseObservability(
            performance_insights=False,
            enhanced_monitoring_seconds=0,
            off_reason="t4g.micro has no Performance Insights (RDS offers it on no micro or "
            "small class); dev's load is the tests'",
        ),
        # Disposable data: no snapshot of dev's is ever copied to a backup account.
        db_storage_key="aws-managed",
        db_audit_log_retention_days=None,  # disposable data, nobody audits dev
        task_cpu=256,
        task_memory_mib=512,
        min_tasks=1,
        max_tasks=2,
        fargate_spot=True,
        log_level="DEBUG",
        log_messages="all",
        log_retention_days=7,
        # Every trace: dev's few orders stay in X-Ray's free tier, and dev deploys first, so a
        # collector that does not start shows here before staging.
        tracing=Tracing(sampling_ratio=1.0),
        task_orders_per_second=150,  # 0.25 vCPU
        acceptable_latency_seconds=60,
        oldest_message_alarm_seconds=900,
        alarms=AlarmRouting(
            subscriber=None,
            unrouted_reason="dev pages nobody: alarms stay on the dashboard and the SNS topic",
        ),
        retain_data=False,
    ),
    "staging": EnvironmentConfig(
        name="staging",
        region="eu-west-1",
        availability_zones=("eu-west-1a", "eu-west-1b"),
        vpc_cidr="10.20.0.0/16",
        nat_gateways=1,
        interface_endpoints=False,  # NAT only: docs/cost.md
        db_instance_type="t4g.small",
        db_allocated_storage_gib=20,
        db_max_allocated_storage_gib=100,
        db_multi_az=False,
        db_deletion_protection=True,
        db_backup_retention_days=7,
        db_backup_window="02:00-02:30",
        db_maintenance_window="sun:03:00-sun:03:30",
        db_observability=DatabaseObservability(
            performance_insights=False,
            enhanced_monitoring_seconds=0,
            off_reason="t4g.small has no Performance Insights (RDS offers it on no micro or "
            "small class), and load tests read the instance's CloudWatch metrics",
        ),
        # Test data: its snapshots are not kept in the backup account.
        db_storage_key="aws-managed",
        db_audit_log_retention_days=90,
        task_cpu=512,
        task_memory_mib=1024,
        min_tasks=1,
        max_tasks=4,
        fargate_spot=False,
        log_level="INFO",
        log_retention_days=30,
        # Every trace: a tester follows the very order they sent; an hour's load test at the
        # stated rate costs cents (the per-million-orders figures in infra/README.md).
        tracing=Tracing(sampling_ratio=1.0),
        task_orders_per_second=300,  # 0.5 vCPU
        acceptable_latency_seconds=30,
        oldest_message_alarm_seconds=300,
        # The team's list (read in working hours, nobody is paged), set by the deploy.
        alarms=AlarmRouting.passed_by_the_deploy(),
    ),
    "prod": EnvironmentConfig(
        name="prod",
        region="eu-west-1",
        availability_zones=("eu-west-1a", "eu-west-1b", "eu-west-1c"),
        vpc_cidr="10.30.0.0/16",
        nat_gateways=3,
        interface_endpoints=False,  # NAT only: docs/cost.md
        db_instance_type="m7g.large",
        db_allocated_storage_gib=100,
        db_max_allocated_storage_gib=500,
        db_multi_az=True,
        db_deletion_protection=True,
        db_backup_retention_days=14,
        # Eu-west-1's quietest hours; the maintenance window after the backup, on Sunday.
        db_backup_window="02:00-02:30",
        db_maintenance_window="sun:03:00-sun:03:30",
        db_observability=DatabaseObservability(
            performance_insights=True, enhanced_monitoring_seconds=60
        ),
        # Snapshots copied to the backup account need a key of ours (docs/runbook.md).
        db_storage_key="customer",
        db_audit_log_retention_days=365,
        task_cpu=512,
        task_memory_mib=1024,
        min_tasks=2,
        max_tasks=10,
        fargate_spot=False,
        log_level="INFO",
        log_retention_days=90,
        # 1%: latency and errors per path at a cost that stays small at the fleet's peak, and
        # the CPU budget at 1% (+3%); raise it for an incident (infra/README.md).
        tracing=Tracing(sampling_ratio=0.01),
        task_orders_per_second=300,  # 0.5 vCPU
        acceptable_latency_seconds=30,
        oldest_message_alarm_seconds=300,
        # On-call, set by the deploy: preferably the ARN of the paging tool's SNS topic (an
        # email subscription must be confirmed first: docs/runbook.md).
        alarms=AlarmRouting.passed_by_the_deploy(),
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
