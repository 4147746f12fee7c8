"""PostgreSQL 16 on RDS: isolated, encrypted, TLS-only, credentials in Secrets Manager.

Two credentials: the master user's, whose password RDS itself generates, keeps in Secrets
Manager and rotates (only the migration task reads it), and the application role's, a secret
of its own that the worker reads and the migrations turn into a DML-only role.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy, SecretValue
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from .config import DB_APP_USERNAME
from .nag import acknowledge

# An explicit minor version: a bare "16" is deprecated for new instances (cfn-lint W3691).
ENGINE = rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_13)
MASTER_USERNAME = "orders_admin"
APP_USERNAME = DB_APP_USERNAME


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
            # Replaced below by a password RDS manages: the L2 has no option for it yet.
            credentials=rds.Credentials.from_password(
                MASTER_USERNAME, SecretValue.unsafe_plain_text("replaced-by-rds-managed")
            ),
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
            "The migration sets the application role's password from this secret; a rotation "
            "is a runbook step (new value, run the migration, force a new deployment), since "
            "ECS injects the secret only at task start. RDS rotates the master secret itself.",
        )
