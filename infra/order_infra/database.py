"""PostgreSQL 16 on RDS: isolated, encrypted, TLS-only, credentials in Secrets Manager.

Two credentials: the master user's, whose password RDS itself generates, keeps in Secrets
Manager and rotates (only the migration and rotation tasks read it), and the application's, a
secret of its own that the worker reads at each new connection, naming one of two alternating
DML-only roles the migrations create, rotated by credential_rotation.py.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy, SecretValue
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from .config import DB_APP_USERNAME, RDS_LOG_GROUP, DatabaseObservability
from .database_operations import monitoring_role, storage_key
from .nag import acknowledge

# An explicit minor version: a bare "16" is deprecated for new instances (cfn-lint W3691).
ENGINE = rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_13)
MASTER_USERNAME = "orders_admin"
APP_USERNAME = DB_APP_USERNAME
TLS_PARAMETERS = {"rds.force_ssl": "1"}
# The audit trail (issue 19): who connected, and every DDL and role change (the migrations run
# as the master user), through pgaudit. Statement logging and pgaudit's parameter logging stay
# off, so the application role's password, which the migration passes as a bind parameter,
# never reaches a log (pgaudit redacts the password of ALTER ROLE itself).
# shared_preload_libraries replaces RDS's default for the family, pg_stat_statements: kept.
RDS_DEFAULT_PRELOAD_LIBRARIES = ("pg_stat_statements",)
AUDIT_PARAMETERS = {
    "shared_preload_libraries": ",".join((*RDS_DEFAULT_PRELOAD_LIBRARIES, "pgaudit")),
    "pgaudit.log": "ddl,role",
    "pgaudit.log_parameter": "0",
    "log_statement": "none",
    "log_connections": "1",
    "log_disconnections": "1",
}
AUDIT_LOG_EXPORTS = ("postgresql", "upgrade")


class Database(Construct):
    """One RDS instance; its security group starts closed and the stack opens it per client."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database_name: str,
        port: int,
        instance_type: str,
        allocated_storage_gib: int,
        max_allocated_storage_gib: int,
        multi_az: bool,
        deletion_protection: bool,
        backup_retention_days: int,
        removal_policy: RemovalPolicy,
        instance_identifier: str,
        audit_log_retention: logs.RetentionDays | None,
        backup_window: str,
        maintenance_window: str,
        observability: DatabaseObservability,
        storage_key_mode: str,
    ) -> None:
        """`audit_log_retention`: None for no audit trail, else how long its logs are kept;
        `storage_key_mode`: one of config.DB_STORAGE_KEYS."""
        super().__init__(scope, construct_id)
        # Issue 26: prod's own storage key (snapshots copyable to a backup account) and its
        # Enhanced Monitoring role; both None where the config leaves them off.
        self.storage_key = (
            storage_key(self, "StorageKey", database_identifier=instance_identifier)
            if storage_key_mode != "aws-managed"
            else None
        )
        self.monitoring_role = (
            monitoring_role(self, "MonitoringRole")
            if observability.enhanced_monitoring_seconds
            else None
        )
        instance_key = self.storage_key if storage_key_mode == "customer" else None

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="PostgreSQL: ingress only from the order-service tasks",
            allow_all_outbound=False,
        )
        parameter_group = rds.ParameterGroup(
            self,
            "Parameters",
            engine=ENGINE,
            description="order-service: TLS required for every connection"
            + ("; audit trail (pgaudit)" if audit_log_retention else ""),
            parameters={**TLS_PARAMETERS, **(AUDIT_PARAMETERS if audit_log_retention else {})},
        )
        # RDS writes exported logs to /aws/rds/instance/<id>/<log>, creating the group without
        # a retention if it is missing: the groups exist first, with their retention. Hence a
        # fixed identifier (which also makes CloudFormation refuse to replace the database).
        self.audit_log_groups = [
            logs.LogGroup(
                self,
                f"{log.title()}Logs",
                log_group_name=RDS_LOG_GROUP.format(identifier=instance_identifier, log=log),
                retention=audit_log_retention,
                removal_policy=RemovalPolicy.RETAIN,  # the trail outlives the database
            )
            for log in (AUDIT_LOG_EXPORTS if audit_log_retention else ())
        ]
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=ENGINE,
            instance_type=ec2.InstanceType(instance_type),
            vpc=vpc,
            vpc_subnets=subnets,
            instance_identifier=instance_identifier,
            cloudwatch_logs_exports=list(AUDIT_LOG_EXPORTS) if audit_log_retention else None,
            security_groups=[self.security_group],
            port=port,
            database_name=database_name,
            # Replaced below by a password RDS manages: the L2 has no option for it yet.
            credentials=rds.Credentials.from_password(
                MASTER_USERNAME, SecretValue.unsafe_plain_text("replaced-by-rds-managed")
            ),
            parameter_group=parameter_group,
            publicly_accessible=False,
            storage_encrypted=True,
            storage_encryption_key=instance_key,
            preferred_backup_window=backup_window,
            preferred_maintenance_window=maintenance_window,
            enable_performance_insights=observability.performance_insights or None,
            database_insights_mode=(
                rds.DatabaseInsightsMode.STANDARD if observability.performance_insights else None
            ),
            performance_insight_retention=(
                rds.PerformanceInsightRetention.DEFAULT
                if observability.performance_insights
                else None
            ),
            performance_insight_encryption_key=(
                self.storage_key if observability.performance_insights else None
            ),
            monitoring_interval=(
                Duration.seconds(observability.enhanced_monitoring_seconds)
                if observability.enhanced_monitoring_seconds
                else None
            ),
            monitoring_role=self.monitoring_role,
            storage_type=rds.StorageType.GP3,
            allocated_storage=allocated_storage_gib,
            max_allocated_storage=max_allocated_storage_gib,
            multi_az=multi_az,
            deletion_protection=deletion_protection,
            backup_retention=Duration.days(backup_retention_days),
            delete_automated_backups=False,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            ca_certificate=rds.CaCertificate.RDS_CA_RSA2048_G1,
            removal_policy=removal_policy,
        )
        for log_group in self.audit_log_groups:
            self.instance.node.add_dependency(log_group)
        cfn_instance = self.instance.node.default_child
        assert isinstance(cfn_instance, rds.CfnDBInstance)
        cfn_instance.add_property_deletion_override("MasterUserPassword")
        cfn_instance.manage_master_user_password = True
        self.master_secret = secretsmanager.Secret.from_secret_complete_arn(
            self, "MasterSecret", cfn_instance.attr_master_user_secret_secret_arn
        )
        self.app_secret = secretsmanager.Secret(
            self,
            "AppSecret",
            description="order-service application role (DML only): the worker's credentials",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"username": APP_USERNAME}),
                generate_string_key="password",
                exclude_punctuation=True,
                password_length=40,
            ),
        )
        self.connections = self.instance.connections
        self.endpoint_address = self.instance.db_instance_endpoint_address
        self.endpoint_port = self.instance.db_instance_endpoint_port

        acknowledge(
            self.instance,
            "AwsSolutions-RDS11",
            "The port is not a secret: the security group admits only the task security "
            "group, and DB_PORT is a plain task setting, so obscurity would add nothing.",
        )
        if not multi_az:
            acknowledge(
                self.instance,
                "AwsSolutions-RDS3",
                "Single-AZ by design outside prod (cost); prod sets multi_az=True.",
            )
        if not deletion_protection:
            acknowledge(
                self.instance,
                "AwsSolutions-RDS10",
                "dev databases are disposable and torn down with the stack; "
                "staging and prod enable deletion protection.",
            )
        acknowledge(
            self.app_secret,
            "AwsSolutions-SMG4",
            "Rotated by the stack's own scheduled task (credential_rotation.py: alternating "
            "users, every CREDENTIAL_ROTATION_DAYS), not by a Secrets Manager rotation "
            "function, whose hosted or SAR forms create a role without the environment's "
            "permissions boundary. RDS rotates the master secret itself.",
        )
