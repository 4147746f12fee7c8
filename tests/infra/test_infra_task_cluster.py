"""The worker service and the migration task on their shared cluster, on a bare stack."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Environment, RemovalPolicy, Stack, assertions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager

from order_infra.migration_task import MigrationTask
from order_infra.stack import DB_CREDENTIAL_KEYS
from order_infra.task_cluster import TaskCluster
from order_infra.worker_image import WorkerImage
from order_infra.worker_service import WorkerService
from tests.infra.infra_support import IMAGE_DIGEST

Match = assertions.Match


def _tasks(*, placeholder: bool, spot: bool) -> assertions.Template:
    stack = Stack(App(), "Test", env=Environment(region="eu-west-1"))
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["eu-west-1a", "eu-west-1b"], nat_gateways=1)
    repository = ecr.Repository.from_repository_name(stack, "Repo", "r")
    image = (
        WorkerImage.placeholder() if placeholder else WorkerImage.from_ecr(repository, IMAGE_DIGEST)
    )
    tasks = TaskCluster(
        stack,
        "TaskCluster",
        vpc=vpc,
        image=image,
        image_repository=repository,
        environment={"LOG_FORMAT": "json", "SQS_QUEUE_URL": "url"},
        log_retention=logs.RetentionDays.ONE_WEEK,
        removal_policy=RemovalPolicy.DESTROY,
    )
    secret = secretsmanager.Secret(stack, "Secret")
    secrets = {
        env: ecs.Secret.from_secrets_manager(secret, key) for env, key in DB_CREDENTIAL_KEYS.items()
    }
    WorkerService(
        stack,
        "WorkerService",
        name_prefix="order-service-test",
        tasks=tasks,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        secrets=secrets,
        cpu=256,
        memory_mib=512,
        fargate_spot=spot,
    )
    MigrationTask(
        stack,
        "MigrationTask",
        name_prefix="order-service-test",
        tasks=tasks,
        secrets=secrets,
        cpu=256,
        memory_mib=512,
    )
    return assertions.Template.from_stack(stack)


@pytest.fixture(scope="module")
def normal() -> assertions.Template:
    return _tasks(placeholder=False, spot=False)


@pytest.fixture(scope="module")
def dummy() -> assertions.Template:
    return _tasks(placeholder=True, spot=True)


def _task_definition(template: assertions.Template, family_suffix: str) -> dict[str, Any]:
    found = template.find_resources(
        "AWS::ECS::TaskDefinition",
        {"Properties": {"Family": Match.string_like_regexp(f"{family_suffix}$")}},
    )
    (resource,) = found.values()
    return dict(resource["Properties"])


def test_tasks_run_arm64_linux_non_root_read_only(normal: assertions.Template) -> None:
    for family in ("worker", "migrate"):
        props = _task_definition(normal, family)
        assert props["RuntimePlatform"] == {
            "CpuArchitecture": "ARM64",
            "OperatingSystemFamily": "LINUX",
        }
        (container,) = props["ContainerDefinitions"]
        assert container["ReadonlyRootFilesystem"] is True
        assert container["User"] == "10001:10001"
        assert container["StopTimeout"] >= 30
        assert {m["ContainerPath"] for m in container["MountPoints"]} == {"/tmp"}


def test_worker_and_migration_commands(normal: assertions.Template) -> None:
    (worker,) = _task_definition(normal, "worker")["ContainerDefinitions"]
    (migrate,) = _task_definition(normal, "migrate")["ContainerDefinitions"]
    assert worker["Command"] == ["worker"]
    assert migrate["Command"] == ["migrate"]
    assert "EntryPoint" not in worker  # the image's exec-form `order-service`
    assert worker["HealthCheck"]["Command"] == ["CMD", "order-service", "healthcheck"]
    assert worker["PortMappings"][0]["ContainerPort"] == 8080


def test_db_credentials_are_secrets_never_plain_env(normal: assertions.Template) -> None:
    (worker,) = _task_definition(normal, "worker")["ContainerDefinitions"]
    assert {s["Name"] for s in worker["Secrets"]} == set(DB_CREDENTIAL_KEYS)
    env = {e["Name"]: e["Value"] for e in worker["Environment"]}
    assert not set(env) & set(DB_CREDENTIAL_KEYS)
    assert env["WORKER_MODE"] == "normal"


def test_dummy_mode_runs_placeholder_that_answers_health(dummy: assertions.Template) -> None:
    (worker,) = _task_definition(dummy, "worker")["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in worker["Environment"]}
    assert env["WORKER_MODE"] == "dummy"
    assert worker["Image"].startswith("public.ecr.aws/")
    assert "/health" in worker["Command"][0]


def test_service_private_with_circuit_breaker(normal: assertions.Template) -> None:
    normal.has_resource_properties(
        "AWS::ECS::Service",
        {
            "NetworkConfiguration": {
                "AwsvpcConfiguration": Match.object_like({"AssignPublicIp": "DISABLED"})
            },
            "DeploymentConfiguration": Match.object_like(
                {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}}
            ),
        },
    )
    normal.has_resource_properties(
        "AWS::ECS::Cluster",
        {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]},
    )


def test_fargate_spot_is_an_option(dummy: assertions.Template, normal: assertions.Template) -> None:
    dummy.has_resource_properties(
        "AWS::ECS::Service",
        {"CapacityProviderStrategy": [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]},
    )
    normal.has_resource_properties(
        "AWS::ECS::Service", {"CapacityProviderStrategy": Match.absent()}
    )


def statements(template: assertions.Template, role_fragment: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = str(policy["Properties"]["Roles"])
        if role_fragment in roles:
            out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def actions(found: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for statement in found:
        value = statement["Action"]
        names.update([value] if isinstance(value, str) else value)
    return names


def test_task_roles_get_nothing_from_the_units(normal: assertions.Template) -> None:
    # Queue access is a cross-unit grant: the stack adds it (test_infra_stack).
    assert statements(normal, "WorkerTaskTaskRole") == []
    assert statements(normal, "MigrationTaskTaskRole") == []


@pytest.mark.parametrize("mode", ["normal", "dummy"])
def test_execution_role_pulls_logs_and_reads_the_secret_only(
    mode: str, request: pytest.FixtureRequest
) -> None:
    # Dummy mode too: the first CI migration runs the real image with this execution role.
    template: assertions.Template = request.getfixturevalue(mode)
    assert actions(statements(template, "ExecutionRole")) == {
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
        "ecr:GetAuthorizationToken",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    }
