"""PostgreSQL 16 on RDS: isolated, encrypted, TLS-only, credentials in Secrets Manager."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from .nag import acknowledge

# An explicit minor version: a bare "16" is deprecated for new instances (cfn-lint W3691).
ENGINE = rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_13)
MASTER_USERNAME = "orders_admin"


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
    ) -> None:
        super().__init__(scope, construct_id)

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
            description="order-service: TLS required for every connection",
            parameters={"rds.force_ssl": "1"},
        )
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=ENGINE,
            instance_type=ec2.InstanceType(instance_type),
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            port=port,
            database_name=database_name,
            credentials=rds.Credentials.from_generated_secret(MASTER_USERNAME),
            parameter_group=parameter_group,
            publicly_accessible=False,
            storage_encrypted=True,
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
        secret = self.instance.secret
        if secret is None:  # pragma: no cover - from_generated_secret always creates one
            raise RuntimeError("RDS instance has no generated secret")
        self.secret: secretsmanager.ISecret = secret
        self.connections = self.instance.connections

        acknowledge(
            self.instance,
            "AwsSolutions-RDS11",
            "The port is not a secret: the security group admits only the task security "
            "group, and DB_PORT is injected from the secret, so obscurity would add nothing.",
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
            self.instance.node.find_child("Secret"),
            "AwsSolutions-SMG4",
            "ECS injects the secret only at task start, so an automatic rotation would "
            "break new connections of running tasks; rotation is a runbook step (rotate, then "
            "force a new deployment), see docs/runbook.md.",
        )
