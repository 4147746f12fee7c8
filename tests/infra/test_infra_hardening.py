"""Issue 26: what the production review asked of the synthesized templates (containers,
network, database)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from aws_cdk import App, Environment, assertions

from order_infra.alarm_routing import AlarmRouting
from order_infra.config import ENVIRONMENTS, DatabaseObservability
from order_infra.policy_grants import ENVIRONMENT_TAG
from order_infra.stack import OrderServiceStack
from tests.infra.iam_reach import (
    Target,
    action_matches,
    as_list,
    condition_allows,
    iam_match,
    statements,
)
from tests.infra.infra_support import IMAGE_DIGEST, RUNS, template_json
from tools.checks import SynthReport
from tools.policy_scan import SAMPLE_ACCOUNT, iam_policies, load_template

STACK_RUNS = [label for label in RUNS if label != "bootstrap"]


def container_definitions(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        container
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::ECS::TaskDefinition"
        for container in resource["Properties"]["ContainerDefinitions"]
    ]


@pytest.mark.parametrize("label", STACK_RUNS)
def test_every_container_drops_every_linux_capability(
    synthesized: dict[str, SynthReport], label: str
) -> None:
    containers = container_definitions(template_json(synthesized[label]))
    names = sorted(c["Name"] for c in containers)
    # The worker, the migration, the credential rotation (all three from the worker image)
    # and (with tracing) the collector: none escapes the check.
    assert names.count("worker") == 3, names
    for container in containers:
        capabilities = container.get("LinuxParameters", {}).get("Capabilities", {})
        assert capabilities.get("Drop") == ["ALL"], container["Name"]
        assert not capabilities.get("Add"), container["Name"]


def test_the_collector_is_among_the_containers_checked(synthesized: dict[str, SynthReport]) -> None:
    # dev traces every order: its worker task holds the collector sidecar.
    names = {c["Name"] for c in container_definitions(template_json(synthesized["dev"]))}
    assert len(names) == 2, names


# --- Item 6: prod's database observability, windows and storage key.


def _resources(report: SynthReport, kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template_json(report)["Resources"].items() if r["Type"] == kind}


def _instance(report: SynthReport) -> dict[str, Any]:
    (instance,) = _resources(report, "AWS::RDS::DBInstance").values()
    return dict(instance["Properties"])


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_every_environment_names_its_backup_and_maintenance_windows(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    props = _instance(synthesized[env])
    assert props["PreferredBackupWindow"] == ENVIRONMENTS[env].db_backup_window
    assert props["PreferredMaintenanceWindow"] == ENVIRONMENTS[env].db_maintenance_window


def test_prod_has_performance_insights_enhanced_monitoring_and_its_own_key(
    synthesized: dict[str, SynthReport],
) -> None:
    report = synthesized["prod"]
    props = _instance(report)
    assert props["EnablePerformanceInsights"] is True
    assert props["DatabaseInsightsMode"] == "standard"
    assert props["PerformanceInsightsRetentionPeriod"] == 7  # standard mode's free history
    assert props["MonitoringInterval"] == 60
    (key_id,) = _resources(report, "AWS::KMS::Key").keys() - {
        k for k in _resources(report, "AWS::KMS::Key") if k.startswith(("Monitoring", "Status"))
    }
    assert props["StorageEncrypted"] is True
    assert props["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert props["PerformanceInsightsKMSKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    key = _resources(report, "AWS::KMS::Key")[key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"  # a snapshot outlives the stack, not its key
    role_id = props["MonitoringRoleArn"]["Fn::GetAtt"][0]
    role = _resources(report, "AWS::IAM::Role")[role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    assert "ManagedPolicyArns" not in role  # inline, so the boundary test judges it
    assert "order-service-prod-boundary" in json.dumps(role["PermissionsBoundary"])


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_dev_and_staging_keep_them_off_and_say_why(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    props = _instance(synthesized[env])
    for absent in ("EnablePerformanceInsights", "MonitoringInterval", "KmsKeyId"):
        assert absent not in props, absent
    config = ENVIRONMENTS[env]
    assert config.db_observability.off_reason
    assert config.db_storage_key == "aws-managed"
    assert set(_resources(synthesized[env], "AWS::KMS::Key")) == {
        k for k in _resources(synthesized[env], "AWS::KMS::Key") if not k.startswith("Database")
    }


@pytest.mark.parametrize(
    ("observability", "message"),
    [
        ({"performance_insights": False, "enhanced_monitoring_seconds": 0}, "say why"),
        ({"performance_insights": True, "enhanced_monitoring_seconds": 0}, "say why"),
        ({"performance_insights": True, "enhanced_monitoring_seconds": 45}, "not in"),
        (
            {"performance_insights": True, "enhanced_monitoring_seconds": 60, "off_reason": "x"},
            "both are on",
        ),
    ],
)
def test_observability_off_needs_a_reason_and_a_real_interval(
    observability: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        DatabaseObservability(**observability)


@pytest.mark.parametrize(
    ("backup", "maintenance", "message"),
    [
        ("02:00-03:00", "sun:02:30-sun:03:30", "overlaps"),
        ("03:00-03:30", "sun:03:29-sun:04:00", "overlaps"),  # one minute
        ("23:30-00:30", "mon:00:00-mon:00:45", "overlaps"),  # across midnight
        ("00:00-00:30", "sun:23:45-mon:00:15", "overlaps"),  # across the week's end
        ("02:00-02:29", "sun:03:00-sun:03:30", "at least 30 minutes"),
        ("02:00-02:30", "sun:03:00-sun:03:29", "at least 30 minutes"),
        ("2:00-02:30", "sun:03:00-sun:03:30", "expected hh:mm-hh:mm"),
        ("02:00-02:30", "sunday:03:00-sunday:03:30", "expected ddd:hh:mm"),
    ],
)
def test_windows_rds_would_refuse_are_refused_at_synth(
    backup: str, maintenance: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(
            ENVIRONMENTS["prod"], db_backup_window=backup, db_maintenance_window=maintenance
        )


def test_adjacent_windows_and_a_bad_key_mode() -> None:
    # Touching is not overlapping: 02:00-02:30 then 02:30 on Sunday is what RDS accepts.
    dataclasses.replace(
        ENVIRONMENTS["prod"],
        db_backup_window="02:00-02:30",
        db_maintenance_window="sun:02:30-sun:03:00",
    )
    with pytest.raises(ValueError, match="db_storage_key 'kms'"):
        dataclasses.replace(ENVIRONMENTS["prod"], db_storage_key="kms")


def test_an_instance_moved_onto_the_key_by_the_runbook_keeps_its_template() -> None:
    # "customer-restored": the key exists (the snapshot copy was encrypted with it), the
    # instance's template names no key, so CloudFormation does not try to replace it.
    config = dataclasses.replace(
        ENVIRONMENTS["prod"],
        db_storage_key="customer-restored",
        alarms=AlarmRouting(subscriber="arn:aws:sns:eu-west-1:210987654321:pager"),
    )
    stack = OrderServiceStack(
        App(),
        "Test",
        config=config,
        image_digest=IMAGE_DIGEST,
        env=Environment(region=config.region),
    )
    template = assertions.Template.from_stack(stack).to_json()
    keys = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::KMS::Key"}
    assert any(k.startswith("DatabaseStorageKey") for k in keys)
    (instance,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::RDS::DBInstance"]
    assert "KmsKeyId" not in instance["Properties"]
    assert instance["Properties"]["StorageEncrypted"] is True


# --- Item 7: the VPC's default security group allows nothing.


@pytest.mark.parametrize("label", STACK_RUNS)
def test_the_default_security_group_is_emptied(
    synthesized: dict[str, SynthReport], label: str
) -> None:
    report = synthesized[label]
    (restrict,) = _resources(report, "Custom::VpcRestrictDefaultSG").values()
    (vpc_id,) = _resources(report, "AWS::EC2::VPC")
    assert restrict["Properties"]["DefaultSecurityGroupId"] == {
        "Fn::GetAtt": [vpc_id, "DefaultSecurityGroup"]
    }
    (function,) = _resources(report, "AWS::Lambda::Function").values()
    assert "DependsOn" not in function  # the GetAtt of its role orders them (cfn-lint W3005)
    role = _resources(report, "AWS::IAM::Role")[function["Properties"]["Role"]["Fn::GetAtt"][0]]
    env = RUNS[label].context["env"]
    assert f"order-service-{env}-boundary" in json.dumps(role["Properties"]["PermissionsBoundary"])


def _execution_and_boundary(
    synthesized: dict[str, SynthReport], env: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    (bootstrap,) = synthesized["bootstrap"].templates.values()
    region = ENVIRONMENTS[env].region
    policies = [p for p in iam_policies(load_template(bootstrap), bootstrap.name, region)]
    mine = [p for p in policies if p.name.startswith(f"Deploy{env}")]
    execution = [p.document for p in mine if "CloudFormationExecution" in p.name]
    boundary = [p.document for p in mine if "PermissionsBoundary" in p.name]
    assert execution and boundary
    return execution, boundary


def may(documents: list[dict[str, Any]], action: str, target: Target) -> bool:
    """Some Allow of these policies names the action and the resource, its conditions on the
    resource met (the caller's side assumed met, as in iam_reach)."""
    return any(
        statement.get("Effect") == "Allow"
        and any(action_matches(a, action) for a in as_list(statement["Action"]))
        and any(iam_match(str(r), target.arn) for r in as_list(statement.get("Resource", [])))
        and condition_allows(statement.get("Condition", {}), target)
        for document in documents
        for statement in statements(document)
    )


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_the_execution_policy_runs_the_custom_resource_and_the_key_of_its_own_only(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    execution, _ = _execution_and_boundary(synthesized, env)
    config = ENVIRONMENTS[env]
    region, account = config.region, SAMPLE_ACCOUNT
    other = "prod" if env != "prod" else "dev"
    other_stack = ENVIRONMENTS[other].stack_name

    def function(stack: str) -> Target:
        name = f"{stack}-CustomVpcRestrictDefaultSGCustomR-AbCdEf012345"
        return Target(f"arn:aws:lambda:{region}:{account}:function:{name}")

    for action in (
        "lambda:CreateFunction",
        "lambda:GetFunction",
        "lambda:InvokeFunction",
        "lambda:TagResource",
        "lambda:UpdateFunctionCode",
        "lambda:DeleteFunction",
    ):
        assert may(execution, action, function(config.stack_name)), action
        assert not may(execution, action, function(other_stack)), (action, other)
    asset = Target(
        f"arn:aws:s3:::cdk-{config.cdk_qualifier}-assets-{account}-{region}/0a1b2c3d.zip"
    )
    other_asset = Target(
        f"arn:aws:s3:::cdk-{ENVIRONMENTS[other].cdk_qualifier}-assets-{account}-{region}/0a.zip"
    )
    assert may(execution, "s3:GetObject", asset)
    assert not may(execution, "s3:GetObject", other_asset)
    own_role = Target(f"arn:aws:iam::{account}:role/{config.stack_name}-CustomVpcRole-AbCdEf")
    assert may(execution, "iam:PassRole", own_role)
    key = f"arn:aws:kms:{region}:{account}:key/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
    assert may(execution, "kms:CreateGrant", Target(key, {ENVIRONMENT_TAG: env}))
    assert not may(execution, "kms:CreateGrant", Target(key, {ENVIRONMENT_TAG: other}))
    assert not may(execution, "kms:CreateGrant", Target(key))


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_the_boundary_lets_a_role_change_only_untagged_security_groups(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    """The custom resource's role revokes the default group's rules, and restores them on
    delete. A default group carries no tag (EC2 makes it with the VPC), so the boundary allows
    these four actions on untagged groups: every group a stack makes is tagged, and is out of
    reach. Left (one account for every environment): another VPC's default group, which
    nothing uses (CICD.md, the closing note of issue 26)."""
    _, boundary = _execution_and_boundary(synthesized, env)
    region = ENVIRONMENTS[env].region
    group = f"arn:aws:ec2:{region}:{SAMPLE_ACCOUNT}:security-group/sg-0123456789abcdef0"
    actions = (
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupEgress",
    )
    for action in actions:
        assert may(boundary, action, Target(group)), action
        for owner in ENVIRONMENTS:
            assert not may(boundary, action, Target(group, {ENVIRONMENT_TAG: owner})), owner
    assert not may(boundary, "ec2:DeleteSecurityGroup", Target(group))
