from __future__ import annotations

import pytest
from aws_cdk import App, Environment, RemovalPolicy, Stack, assertions
from aws_cdk import aws_ec2 as ec2

from order_infra.config import ENVIRONMENTS
from order_infra.database import Database
from tests.infra.infra_support import template_json
from tools.checks import SynthReport


def _database(*, multi_az: bool, deletion_protection: bool, env: str) -> assertions.Template:
    config = ENVIRONMENTS[env]  # issue 26: the environment's windows, observability, key
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
        instance_identifier="order-service-test",
        audit_log_retention=None,
        backup_window=config.db_backup_window,
        maintenance_window=config.db_maintenance_window,
        observability=config.db_observability,
        storage_key_mode=config.db_storage_key,
    )
    return assertions.Template.from_stack(stack)


@pytest.fixture(scope="module")
def dev() -> assertions.Template:
    return _database(multi_az=False, deletion_protection=False, env="dev")


@pytest.fixture(scope="module")
def prod() -> assertions.Template:
    return _database(multi_az=True, deletion_protection=True, env="prod")


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


# Issue 19: the audit trail of staging and prod, pinned value by value. pgaudit joins the
# family's default preload (pg_stat_statements); statement and parameter logging stay off so
# that the application role's password (a bind parameter of the migration) never reaches a log.
AUDIT_PARAMETERS = {
    "rds.force_ssl": "1",
    "shared_preload_libraries": "pg_stat_statements,pgaudit",
    "pgaudit.log": "ddl,role",
    "pgaudit.log_parameter": "0",
    "log_statement": "none",
    "log_connections": "1",
    "log_disconnections": "1",
}


def _database_resources(report: SynthReport) -> dict[str, dict]:
    return {
        logical_id: resource
        for logical_id, resource in template_json(report)["Resources"].items()
        if logical_id.startswith("Database")
    }


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_staging_and_prod_keep_an_audit_trail(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    config = ENVIRONMENTS[env]
    resources = _database_resources(synthesized[env])
    (parameters,) = [
        r["Properties"]["Parameters"]
        for r in resources.values()
        if r["Type"] == "AWS::RDS::DBParameterGroup"
    ]
    (instance,) = [r for r in resources.values() if r["Type"] == "AWS::RDS::DBInstance"]
    identifier = instance["Properties"]["DBInstanceIdentifier"]
    assert identifier == config.database_identifier == f"order-service-{env}"
    log_groups = {
        r["Properties"]["LogGroupName"]: (k, r)
        for k, r in resources.items()
        if r["Type"] == "AWS::Logs::LogGroup"
    }
    if config.db_audit_log_retention_days is None:
        assert env == "dev"
        assert parameters == {"rds.force_ssl": "1"}
        assert "EnableCloudwatchLogsExports" not in instance["Properties"]
        assert log_groups == {}
        return
    assert env in ("staging", "prod")
    assert parameters == AUDIT_PARAMETERS
    assert instance["Properties"]["EnableCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    # RDS creates a missing export group without a retention: these exist first, with one.
    assert sorted(log_groups) == [
        f"/aws/rds/instance/{identifier}/postgresql",
        f"/aws/rds/instance/{identifier}/upgrade",
    ]
    for logical_id, group in log_groups.values():
        assert group["Properties"]["RetentionInDays"] == config.db_audit_log_retention_days
        assert group["DeletionPolicy"] == "Retain"  # the trail outlives the stack
        assert logical_id in instance["DependsOn"]


def test_prod_keeps_its_audit_trail_a_year() -> None:
    assert ENVIRONMENTS["prod"].db_audit_log_retention_days == 365
    assert ENVIRONMENTS["staging"].db_audit_log_retention_days is not None
