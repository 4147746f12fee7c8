"""The whole app per environment: resources, outputs, cdk-nag and cfn-lint."""

from __future__ import annotations

import pytest
from aws_cdk import App

import app as app_module
from order_infra.checks import SynthReport, cfn_lint
from order_infra.config import ENVIRONMENTS
from tests.infra.infra_support import RUNS, template_json

ENVS = list(ENVIRONMENTS)
EXPECTED_OUTPUTS = {
    "ClusterName",
    "ServiceName",
    "MigrationTaskDefinitionArn",
    "PrivateSubnetIds",
    "TaskSecurityGroupId",
    "QueueUrl",
    "DeadLetterQueueUrl",
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
    "CloudFormation-Validate::W3010",  # acknowledged by aws-cdk-lib itself (literal AZs)
}


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
            assert ack.rule in ALLOWED_ACKNOWLEDGEMENTS, ack


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
    assert len(by_type["AWS::CloudWatch::Alarm"]) >= 11  # listed in test_infra_monitoring
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
    for props in task_defs:
        parts = props["ContainerDefinitions"][0]["Image"]["Fn::Join"][1]
        assert parts[-1] == "/order-service:0123456789abcdef0123456789abcdef01234567"


def test_first_deploy_uses_the_placeholder_in_dummy_mode(
    synthesized: dict[str, SynthReport],
) -> None:
    resources = template_json(synthesized["dev-dummy"])["Resources"].values()
    for props in (r["Properties"] for r in resources if r["Type"] == "AWS::ECS::TaskDefinition"):
        (container,) = props["ContainerDefinitions"]
        assert container["Image"].startswith("public.ecr.aws/")
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert env["WORKER_MODE"] == "dummy"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({}, "missing environment"),
        ({"env": "qa"}, "unknown environment 'qa'"),
        ({"env": "dev", "imageTag": "bad tag!"}, "invalid imageTag"),
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
    assert _role_actions(template, "WorkerTaskTaskRole") == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
    }
    assert _role_actions(template, "MigrationTaskTaskRole") == set()


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
