"""The credential rotation in each environment's template: the task, its schedule, its three
roles under the boundary, and exactly the grants a rotation needs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from order_infra.config import CONTAINER_NAME, CREDENTIAL_ROTATION_DAYS, ENVIRONMENTS
from order_infra.permissions_boundary import boundary_grants
from tests.infra.iam_reach import action_matches
from tests.infra.infra_support import template_json

ENVS = list(ENVIRONMENTS)
APP_SECRET = {"Ref": "DatabaseAppSecret2E50FD00"}


def _of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        k: r["Properties"]
        for k, r in template["Resources"].items()
        if r["Type"] == kind and k.startswith("CredentialRotation")
    }


def _statements(template: dict[str, Any], role_fragment: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in _of(template, "AWS::IAM::Policy").values()
        if role_fragment in json.dumps(policy["Roles"])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


@pytest.mark.parametrize("env", ENVS)
def test_a_schedule_runs_the_rotation_task_in_the_private_subnets(synthesized, env) -> None:
    template = template_json(synthesized[env])
    (task,) = _of(template, "AWS::ECS::TaskDefinition").values()
    assert task["Family"] == f"order-service-{env}-rotate-credentials"
    (container,) = [c for c in task["ContainerDefinitions"] if c["Name"] == CONTAINER_NAME]
    assert container["Command"] == ["rotate-credentials"]
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert environment["DB_SECRET_ARN"] == APP_SECRET
    secrets = {s["Name"]: json.dumps(s["ValueFrom"]) for s in container["Secrets"]}
    assert set(secrets) == {"DB_USER", "DB_PASSWORD"}
    assert all("MasterUserSecret.SecretArn" in v for v in secrets.values())

    (rule,) = [r for r in _of(template, "AWS::Events::Rule").values() if "ScheduleExpression" in r]
    assert rule["ScheduleExpression"] == f"rate({CREDENTIAL_ROTATION_DAYS} days)"
    (target,) = rule["Targets"]
    ecs = target["EcsParameters"]
    assert ecs["LaunchType"] == "FARGATE" and ecs["TaskCount"] == 1
    network = ecs["NetworkConfiguration"]["AwsVpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    assert all("PrivateSubnet" in json.dumps(s) for s in network["Subnets"])
    assert "ComputeTaskSecurityGroup" in json.dumps(network["SecurityGroups"])


@pytest.mark.parametrize("env", ENVS)
def test_only_the_rotation_task_may_write_the_application_secret(synthesized, env) -> None:
    template = template_json(synthesized[env])
    assert _statements(template, "CredentialRotationTaskDefinitionTaskRole") == [
        {
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
            "Effect": "Allow",
            "Resource": APP_SECRET,
        }
    ]
    writers = [
        policy["Roles"]
        for policy in (
            r["Properties"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::IAM::Policy"
        )
        for statement in policy["PolicyDocument"]["Statement"]
        if "secretsmanager:PutSecretValue" in json.dumps(statement["Action"])
    ]
    assert writers == [[{"Ref": "CredentialRotationTaskDefinitionTaskRole60AAAAB2"}]]
    # Its execution role injects the master secret and nothing else.
    secrets = [
        s["Resource"]
        for s in _statements(template, "CredentialRotationExecutionRole")
        if "secretsmanager:GetSecretValue" in s["Action"]
    ]
    assert len(secrets) == 1 and "MasterUserSecret.SecretArn" in json.dumps(secrets)


@pytest.mark.parametrize("env", ENVS)
def test_the_schedule_may_start_only_the_rotation_task_in_its_cluster(synthesized, env) -> None:
    template = template_json(synthesized[env])
    statements = _statements(template, "CredentialRotationTaskDefinitionEventsRole")
    (run,) = [s for s in statements if s["Action"] == "ecs:RunTask"]
    assert run["Resource"] == {"Ref": "CredentialRotationTaskDefinition860C3AEF"}
    assert "ComputeCluster" in json.dumps(run["Condition"])
    passed = [
        json.dumps(resource)
        for s in statements
        if s["Action"] == "iam:PassRole"
        for resource in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    assert sorted(passed) == sorted(
        json.dumps({"Fn::GetAtt": [role, "Arn"]})
        for role in (
            "CredentialRotationExecutionRole7239FDBC",
            "CredentialRotationTaskDefinitionTaskRole60AAAAB2",
        )
    )


@pytest.mark.parametrize("env", ENVS)
def test_every_rotation_role_carries_the_boundary_which_admits_what_it_does(
    synthesized, env
) -> None:
    template = template_json(synthesized[env])
    roles = _of(template, "AWS::IAM::Role")
    assert len(roles) == 3  # execution, task, the schedule's
    for role in roles.values():
        assert f"policy/order-service-{env}-boundary" in json.dumps(role["PermissionsBoundary"])
    allowed = [a for g in boundary_grants(ENVIRONMENTS[env]) for a in g.actions]
    done = {
        a
        for fragment in roles
        for s in _statements(template, fragment)
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {"ecs:RunTask", "iam:PassRole", "secretsmanager:PutSecretValue"} <= done
    assert [a for a in done if not any(action_matches(p, a) for p in allowed)] == []


@pytest.mark.parametrize("env", ENVS)
def test_a_failed_rotation_reaches_the_alarm_topic(synthesized, env) -> None:
    """A run that exits non-zero or never starts would change nothing and say nothing."""
    template = template_json(synthesized[env])
    (rule,) = [r for r in _of(template, "AWS::Events::Rule").values() if "EventPattern" in r]
    pattern = rule["EventPattern"]
    assert pattern["detail-type"] == ["ECS Task State Change"]
    assert pattern["detail"]["group"] == [f"family:order-service-{env}-rotate-credentials"]
    assert pattern["detail"]["lastStatus"] == ["STOPPED"]
    assert pattern["detail"]["$or"] == [
        {"containers": {"exitCode": [{"anything-but": 0}]}},
        {"stopCode": ["TaskFailedToStart"]},
    ]
    alarm_topic = [
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::SNS::Topic" and k.startswith("MonitoringAlarmTopic")
    ]
    assert [t["Arn"] for t in rule["Targets"]] == [{"Ref": alarm_topic[0]}]
