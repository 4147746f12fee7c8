"""The whole app per environment: resources, outputs, cdk-nag and cfn-lint."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from aws_cdk import App

import app as app_module
from order_infra.config import CONTAINER_NAME, DB_SSLMODE, ENVIRONMENTS, RDS_CA_BUNDLE_PATH
from order_infra.tracing import XRAY_ACTIONS
from tests.infra.infra_support import IMAGE_DIGEST, RUNS, template_json
from tools.checks import INFRA_DIR, SynthReport, cfn_lint

ENVS = list(ENVIRONMENTS)
EXPECTED_OUTPUTS = {
    "ClusterName",
    "ServiceName",
    "MigrationTaskDefinitionArn",
    "PrivateSubnetIds",
    "TaskSecurityGroupId",
    "QueueUrl",
    "DeadLetterQueueUrl",
    "AlarmTopicArn",
}
# Every acknowledged AwsSolutions rule; a new one must be added here on purpose.
ALLOWED_ACKNOWLEDGEMENTS = {
    "AwsSolutions::AwsSolutions-SMG4",
    "AwsSolutions::AwsSolutions-RDS3",
    "AwsSolutions::AwsSolutions-RDS10",
    "AwsSolutions::AwsSolutions-RDS11",
    "AwsSolutions::AwsSolutions-ECS2",
    "AwsSolutions::AwsSolutions-EC23",
    "AwsSolutions::AwsSolutions-S1",
    "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
    # Issue 26: Enhanced Monitoring's streams are named by RDS (database_operations.py).
    "AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:logs:eu-west-1:<AWS::AccountId>"
    ":log-group:RDSOSMetrics:log-stream:*]",
    "CloudFormation-Validate::W3010",  # acknowledged by aws-cdk-lib itself (literal AZs)
}
# The rotation schedule's ecs:TagResource on its cluster's tasks (credential_rotation.py),
# whose ARN names the partition and region of each environment.
ALLOWED_ACKNOWLEDGEMENT_PATTERNS = [
    re.compile(
        r"AwsSolutions::AwsSolutions-IAM5\[Resource::arn:(aws|<AWS::Partition>):ecs:"
        r"[a-z0-9-]+:\*:task/<ComputeCluster4F8E5F81>/\*\]"
    )
]


@pytest.mark.parametrize("label", list(RUNS))
def test_no_unacknowledged_cdk_nag_findings(
    synthesized: dict[str, SynthReport], label: str
) -> None:
    report = synthesized[label]
    assert report.violations == []
    assert report.validation_error is None
    assert report.templates


@pytest.mark.parametrize("label", list(RUNS))
def test_every_acknowledgement_is_known_and_reasoned(
    synthesized: dict[str, SynthReport], label: str
) -> None:
    for ack in synthesized[label].acknowledged:
        assert len(ack.reason) >= 40, ack
        if label != "bootstrap":
            assert ack.rule in ALLOWED_ACKNOWLEDGEMENTS or any(
                p.fullmatch(ack.rule) for p in ALLOWED_ACKNOWLEDGEMENT_PATTERNS
            ), ack


@pytest.mark.parametrize("label", list(RUNS))
def test_cfn_lint_is_clean(synthesized: dict[str, SynthReport], label: str) -> None:
    for template in synthesized[label].templates.values():
        assert cfn_lint(template, RUNS[label].region) == []


@pytest.mark.parametrize("env", ENVS)
def test_environment_shape(synthesized: dict[str, SynthReport], env: str) -> None:
    config = ENVIRONMENTS[env]
    resources = template_json(synthesized[env])["Resources"].values()
    by_type: dict[str, list[dict]] = {}
    for resource in resources:
        by_type.setdefault(resource["Type"], []).append(resource.get("Properties", {}))
    assert len(by_type["AWS::EC2::Subnet"]) == 3 * len(config.availability_zones)
    assert len(by_type["AWS::EC2::NatGateway"]) == config.nat_gateways
    (db,) = by_type["AWS::RDS::DBInstance"]
    assert db["MultiAZ"] is config.db_multi_az
    assert db["DeletionProtection"] is config.db_deletion_protection
    (target,) = by_type["AWS::ApplicationAutoScaling::ScalableTarget"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (config.min_tasks, config.max_tasks)
    assert len(by_type["AWS::CloudWatch::Alarm"]) >= 11 + 1  # + the outbox relay's lag
    assert len(by_type["AWS::CloudWatch::Dashboard"]) == 1
    (service,) = by_type["AWS::ECS::Service"]
    assert ("CapacityProviderStrategy" in service) is config.fargate_spot


@pytest.mark.parametrize("env", ENVS)
def test_outputs_are_only_what_ci_and_ops_need(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    assert set(template_json(synthesized[env])["Outputs"]) == EXPECTED_OUTPUTS


@pytest.mark.parametrize("env", ENVS)
def test_image_comes_from_the_bootstrap_repository(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    resources = template_json(synthesized[env])["Resources"].values()
    assert not [r for r in resources if r["Type"] == "AWS::ECR::Repository"]
    task_defs = [r["Properties"] for r in resources if r["Type"] == "AWS::ECS::TaskDefinition"]
    assert len(task_defs) == 3  # the worker, the migration, the credential rotation
    for props in task_defs:
        parts = _container(props, CONTAINER_NAME)["Image"]["Fn::Join"][1]
        # Issue 26: by the digest pushed and scanned, never by a tag that could name another.
        assert parts[-1] == f"/order-service@{IMAGE_DIGEST}"


def test_first_deploy_uses_the_placeholder_in_dummy_mode(
    synthesized: dict[str, SynthReport],
) -> None:
    resources = template_json(synthesized["dev-dummy"])["Resources"].values()
    for props in (r["Properties"] for r in resources if r["Type"] == "AWS::ECS::TaskDefinition"):
        container = _container(props, CONTAINER_NAME)
        assert container["Image"].startswith("public.ecr.aws/docker/library/")
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert env["WORKER_MODE"] == "dummy"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({}, "missing environment"),
        ({"env": "qa"}, "unknown environment 'qa'"),
        ({"env": "dev", "imageDigest": "sha256:" + "0" * 63}, "invalid imageDigest"),
        ({"env": "dev", "imageDigest": "sha256:" + "0" * 65}, "invalid imageDigest"),
        ({"env": "dev", "imageDigest": "sha256:" + "A" * 64}, "invalid imageDigest"),
        ({"env": "dev", "imageDigest": "0" * 40}, "invalid imageDigest"),  # a SHA, not a digest
        ({"env": "dev", "imageTag": "0" * 40}, "-c imageTag is gone"),
        ({"env": "dev"}, "missing -c imageDigest=sha256:<digest> \\(or -c dummy=true"),
        ({"env": "dev", "dummy": "true", "imageDigest": IMAGE_DIGEST}, "not both"),
        ({"env": "dev", "dummy": "yes"}, "invalid dummy"),
    ],
)
def test_app_rejects_bad_context(context: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        app_module.build(App(context=context))


def _role_actions(template: dict, role_fragment: str) -> set[str]:
    found: set[str] = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        if role_fragment not in str(resource["Properties"]["Roles"]):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            value = statement["Action"]
            found.update([value] if isinstance(value, str) else value)
    return found


@pytest.mark.parametrize("env", ENVS)
def test_stack_grants_the_worker_exactly_what_consuming_needs(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    template = template_json(synthesized[env])
    # The trace collector's, where tracing is on (test_infra_trace_collector.py).
    tracing = set(XRAY_ACTIONS) if ENVIRONMENTS[env].tracing is not None else set()
    assert (
        _role_actions(template, "WorkerTaskTaskRole")
        == {
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
            "sqs:SendMessage",
            # The outbox relay: the status topic and its key only (test_infra_status_events.py).
            "sns:Publish",
            "kms:Decrypt",
            "kms:GenerateDataKey",
            # Its database login, read at each new connection (DB_SECRET_ARN, issue 26).
            "secretsmanager:GetSecretValue",
            "secretsmanager:DescribeSecret",
        }
        | tracing
    )
    # The migration reads the application secret under its lock (grant_read: these two).
    assert _role_actions(template, "MigrationTaskTaskRole") == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    }


@pytest.mark.parametrize("env", ENVS)
def test_only_the_alb_reaches_the_health_port(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    resources = template_json(synthesized[env])["Resources"]
    ingress = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::EC2::SecurityGroupIngress" and r["Properties"].get("FromPort") == 8080
    ]
    (rule,) = ingress
    assert "LoadBalancerSecurityGroup" in rule["SourceSecurityGroupId"]["Fn::GetAtt"][0]
    (service,) = [r for r in resources.values() if r["Type"] == "AWS::ECS::Service"]
    (balancer,) = service["Properties"]["LoadBalancers"]
    assert balancer["ContainerPort"] == 8080


def test_synth_without_image_digest_fails_with_one_line() -> None:
    # What `cdk synth -c env=dev` runs: the app with its context in CDK_CONTEXT_JSON.
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=INFRA_DIR,
        env={**os.environ, "CDK_CONTEXT_JSON": json.dumps({"env": "dev"})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert lines == [
        "error: missing -c imageDigest=sha256:<digest> "
        "(or -c dummy=true for a first deploy's placeholder)"
    ]


def _container(task_definition: dict[str, Any], name: str) -> dict[str, Any]:
    (container,) = [c for c in task_definition["ContainerDefinitions"] if c["Name"] == name]
    return dict(container)


def _containers(template: dict[str, Any], family: str) -> dict[str, Any]:
    """The application container of the task definition whose family ends with `family`."""
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::ECS::TaskDefinition" and props["Family"].endswith(family):
            return _container(props, CONTAINER_NAME)
    raise AssertionError(family)


def _secret_sources(container: dict[str, Any]) -> dict[str, str]:
    """Variable -> the secret's resource (AppSecret, or the RDS-managed master secret)."""
    sources = {}
    for secret in container["Secrets"]:
        text = json.dumps(secret["ValueFrom"])
        sources[secret["Name"]] = (
            "app"
            if "DatabaseAppSecret" in text
            else ("master" if "MasterUserSecret.SecretArn" in text else text)
        )
    return sources


def _execution_role_secret_resources(template: dict[str, Any], role_fragment: str) -> str:
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        if role_fragment not in str(resource["Properties"]["Roles"]):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if "secretsmanager:GetSecretValue" in statement["Action"]:
                found.append(json.dumps(statement["Resource"]))
    return " ".join(found)


@pytest.mark.parametrize("env", ENVS)
def test_the_worker_reads_only_the_application_secret_and_at_each_login(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    """No credential is injected into the worker (it would be the one of the task's start,
    stale after a rotation): it gets the application secret's ARN and reads it itself."""
    template = template_json(synthesized[env])
    worker = _containers(template, "-worker")
    assert "Secrets" not in worker
    environment = {e["Name"]: e["Value"] for e in worker["Environment"]}
    assert environment["DB_SECRET_ARN"] == {"Ref": "DatabaseAppSecret2E50FD00"}
    assert not {"DB_USER", "DB_PASSWORD"} & set(environment)
    assert _execution_role_secret_resources(template, "ComputeExecutionRole") == ""
    readable = _execution_role_secret_resources(template, "WorkerTaskTaskRole")
    assert readable == json.dumps({"Ref": "DatabaseAppSecret2E50FD00"})
    migrate = _containers(template, "-migrate")
    # The master user's login is injected; the application secret is read by the task itself,
    # under the migrations' lock (a value injected at start may be rotations old by then).
    assert _secret_sources(migrate) == {"DB_USER": "master", "DB_PASSWORD": "master"}
    migrate_env = {e["Name"]: e["Value"] for e in migrate["Environment"]}
    assert migrate_env["DB_SECRET_ARN"] == {"Ref": "DatabaseAppSecret2E50FD00"}
    readable = _execution_role_secret_resources(template, "MigrationExecutionRole")
    assert "MasterUserSecret" in readable and "DatabaseAppSecret" not in readable
    readable = _execution_role_secret_resources(template, "MigrationTaskTaskRole")
    assert readable == json.dumps({"Ref": "DatabaseAppSecret2E50FD00"})


@pytest.mark.parametrize("env", ENVS)
def test_rds_manages_the_master_password(synthesized: dict[str, SynthReport], env: str) -> None:
    resources = template_json(synthesized[env])["Resources"].values()
    (db,) = [r["Properties"] for r in resources if r["Type"] == "AWS::RDS::DBInstance"]
    assert db["ManageMasterUserPassword"] is True
    assert "MasterUserPassword" not in db


@pytest.mark.parametrize("env", ENVS)
def test_tasks_verify_the_database_certificate(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    template = template_json(synthesized[env])
    for family in ("-worker", "-migrate"):
        environment = {e["Name"]: e["Value"] for e in _containers(template, family)["Environment"]}
        assert environment["DB_SSLMODE"] == DB_SSLMODE == "verify-full"
        assert environment["DB_SSLROOTCERT"] == RDS_CA_BUNDLE_PATH


@pytest.mark.parametrize("env", ENVS)
def test_alb_has_no_public_ingress_and_prod_is_protected(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    resources = template_json(synthesized[env])["Resources"].values()
    for resource in resources:
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            cidrs = [rule.get("CidrIp") for rule in props.get("SecurityGroupIngress", [])]
            assert "0.0.0.0/0" not in cidrs, props["GroupDescription"]
    (balancer,) = [
        r["Properties"]
        for r in resources
        if r["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer"
    ]
    attributes = {a["Key"]: a["Value"] for a in balancer["LoadBalancerAttributes"]}
    protected = attributes.get("deletion_protection.enabled") == "true"
    assert protected is ENVIRONMENTS[env].alb_deletion_protection
    if env == "prod":
        assert protected


@pytest.mark.parametrize("env", ENVS)
def test_each_environment_uses_its_own_cdk_bootstrap(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    template = template_json(synthesized[env])
    qualifier = ENVIRONMENTS[env].cdk_qualifier
    assert template["Parameters"]["BootstrapVersion"]["Default"] == (
        f"/cdk-bootstrap/{qualifier}/version"
    )
    assert len({c.cdk_qualifier for c in ENVIRONMENTS.values()}) == len(ENVIRONMENTS)


@pytest.mark.parametrize("env", ENVS)
def test_the_runbook_finds_the_alarm_topic_by_its_output(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    # Issue 19: the runbook's subscription check listed both topics (alarms and status events)
    # and errored; it reads this output, which names the alarm topic and no other.
    template = template_json(synthesized[env])
    (alarm_topic,) = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::SNS::Topic" and logical_id.startswith("Monitoring")
    ]
    assert template["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": alarm_topic}
    runbook = (INFRA_DIR.parent / "docs" / "runbook.md").read_text()
    assert "Outputs[?OutputKey=='AlarmTopicArn'].OutputValue" in runbook
    assert "ResourceType=='AWS::SNS::Topic'" not in runbook
