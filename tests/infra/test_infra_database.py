from __future__ import annotations

import pytest
from aws_cdk import App, Environment, RemovalPolicy, Stack, assertions
from aws_cdk import aws_ec2 as ec2

from order_infra.database import Database


def _database(*, multi_az: bool, deletion_protection: bool) -> assertions.Template:
    stack = Stack(App(), "Test", env=Environment(region="eu-west-1"))
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        availability_zones=["eu-west-1a", "eu-west-1b"],
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="Isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ],
    )
    Database(
        stack,
        "Database",
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        database_name="orders",
        port=5432,
        instance_type="t4g.micro",
        allocated_storage_gib=20,
        max_allocated_storage_gib=50,
        multi_az=multi_az,
        deletion_protection=deletion_protection,
        backup_retention_days=7,
        removal_policy=RemovalPolicy.SNAPSHOT,
    )
    return assertions.Template.from_stack(stack)


@pytest.fixture(scope="module")
def dev() -> assertions.Template:
    return _database(multi_az=False, deletion_protection=False)


@pytest.fixture(scope="module")
def prod() -> assertions.Template:
    return _database(multi_az=True, deletion_protection=True)


def test_postgres_16_private_encrypted_backed_up(dev: assertions.Template) -> None:
    dev.has_resource_properties(
        "AWS::RDS::DBInstance",
        {
            "Engine": "postgres",
            "EngineVersion": assertions.Match.string_like_regexp(r"^16\.\d+$"),
            "PubliclyAccessible": False,
            "StorageEncrypted": True,
            "BackupRetentionPeriod": 7,
            "DBName": "orders",
            "MultiAZ": False,
            "DeletionProtection": False,
        },
    )


def test_prod_is_multi_az_with_deletion_protection(prod: assertions.Template) -> None:
    prod.has_resource_properties(
        "AWS::RDS::DBInstance", {"MultiAZ": True, "DeletionProtection": True}
    )


def test_tls_is_forced(dev: assertions.Template) -> None:
    dev.has_resource_properties(
        "AWS::RDS::DBParameterGroup", {"Family": "postgres16", "Parameters": {"rds.force_ssl": "1"}}
    )


def test_credentials_are_generated_into_secrets_manager(dev: assertions.Template) -> None:
    dev.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {"GenerateSecretString": assertions.Match.object_like({"GenerateStringKey": "password"})},
    )


def test_security_group_starts_closed(dev: assertions.Template) -> None:
    dev.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)
    dev.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "SecurityGroupIngress": assertions.Match.absent(),
            "GroupDescription": assertions.Match.string_like_regexp("PostgreSQL"),
        },
    )
