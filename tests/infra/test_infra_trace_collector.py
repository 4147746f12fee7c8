"""Tracing on AWS: the ADOT collector sidecar of the worker, on a bare stack (on and off) and in
every environment as its config says."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, Environment, RemovalPolicy, Stack, assertions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_logs as logs

from order_infra import tracing as trace_spec
from order_infra.config import CONTAINER_NAME, ENVIRONMENTS, Tracing
from order_infra.task_cluster import TaskCluster
from order_infra.tracing import (
    COLLECTOR_CONTAINER_NAME,
    COLLECTOR_CPU_UNITS,
    COLLECTOR_MEMORY_LIMITER_MIB,
    COLLECTOR_MEMORY_MIB,
    COLLECTOR_REPOSITORY,
    COLLECTOR_TAG,
    HEALTH_CHECK_PORT,
    OTLP_HTTP_PORT,
    XRAY_ACTIONS,
)
from order_infra.worker_image import WorkerImage
from order_infra.worker_service import WorkerService
from tests.infra.infra_support import IMAGE_DIGEST, template_json
from tools.checks import SynthReport

ENVS = list(ENVIRONMENTS)
TASK_CPU, TASK_MEMORY_MIB = 512, 1024


def _worker_stack(tracing: Tracing | None, *, cpu: int = TASK_CPU) -> Stack:
    stack = Stack(App(), "Test", env=Environment(region="eu-west-1"))
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["eu-west-1a", "eu-west-1b"], nat_gateways=1)
    repository = ecr.Repository.from_repository_name(stack, "Repo", "r")
    tasks = TaskCluster(
        stack,
        "TaskCluster",
        vpc=vpc,
        image=WorkerImage.from_ecr(repository, IMAGE_DIGEST),
        image_repository=repository,
        environment={"LOG_FORMAT": "json"},
        log_retention=logs.RetentionDays.ONE_WEEK,
        removal_policy=RemovalPolicy.DESTROY,
    )
    WorkerService(
        stack,
        "WorkerService",
        name_prefix="order-service-test",
        tasks=tasks,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        secrets={},
        cpu=cpu,
        memory_mib=TASK_MEMORY_MIB,
        fargate_spot=False,
        tracing=tracing,
        environment_name="test",
    )
    return stack


@pytest.fixture(scope="module")
def on() -> dict[str, Any]:
    return assertions.Template.from_stack(_worker_stack(Tracing(sampling_ratio=0.25))).to_json()


@pytest.fixture(scope="module")
def off() -> dict[str, Any]:
    return assertions.Template.from_stack(_worker_stack(None)).to_json()


def _by_type(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def _containers(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The worker task definition's containers by name."""
    (task,) = [
        r["Properties"]
        for r in _by_type(template, "AWS::ECS::TaskDefinition")
        if r["Properties"]["Family"].endswith("-worker")
    ]
    return {c["Name"]: c for c in task["ContainerDefinitions"]}


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in container.get("Environment", [])}


def _worker_role_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in _by_type(template, "AWS::IAM::Policy")
        if "WorkerTaskTaskRole" in json.dumps(policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _collector_config(container: dict[str, Any]) -> dict[str, Any]:
    """AOT_CONFIG_CONTENT with the log group's Ref written as its logical id."""
    value = _env(container)["AOT_CONFIG_CONTENT"]
    if isinstance(value, dict):  # Fn::Join around the log group's name
        value = "".join(p if isinstance(p, str) else p["Ref"] for p in value["Fn::Join"][1])
    return dict(json.loads(value))


def _otel(container: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in _env(container).items() if k.startswith("OTEL_")}


def test_off_means_one_container_no_otel_variables_and_no_xray(off: dict[str, Any]) -> None:
    containers = _containers(off)
    assert list(containers) == [CONTAINER_NAME]
    assert _otel(containers[CONTAINER_NAME]) == {}
    assert "DependsOn" not in containers[CONTAINER_NAME]
    assert "Cpu" not in containers[CONTAINER_NAME]  # the whole task, as before
    assert not [s for s in _worker_role_statements(off) if "xray" in json.dumps(s["Action"])]


def test_on_the_worker_exports_to_the_sidecar_and_samples_from_the_config(
    on: dict[str, Any],
) -> None:
    worker = _containers(on)[CONTAINER_NAME]
    assert _otel(worker) == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://localhost:{OTLP_HTTP_PORT}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": "order-service-test-worker",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
        "OTEL_PROPAGATORS": "tracecontext",
    }


def test_the_sidecar_is_pinned_non_essential_and_started_before_the_worker(
    on: dict[str, Any],
) -> None:
    containers = _containers(on)
    assert list(containers) == [CONTAINER_NAME, COLLECTOR_CONTAINER_NAME]
    collector, worker = containers[COLLECTOR_CONTAINER_NAME], containers[CONTAINER_NAME]
    assert collector["Essential"] is False
    assert worker.get("Essential", True) is True
    assert collector["Image"] == f"{COLLECTOR_REPOSITORY}:{COLLECTOR_TAG}"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", COLLECTOR_TAG)
    # START: a collector that never gets healthy must not hold the worker back.
    assert worker["DependsOn"] == [
        {"ContainerName": COLLECTOR_CONTAINER_NAME, "Condition": "START"}
    ]
    assert collector["HealthCheck"]["Command"] == ["CMD", "/healthcheck"]
    assert collector["ReadonlyRootFilesystem"] is True
    assert collector["User"] == trace_spec.COLLECTOR_USER
    assert not collector["User"].startswith("0")


def test_the_sidecar_fits_in_the_task(on: dict[str, Any]) -> None:
    containers = _containers(on)
    collector, worker = containers[COLLECTOR_CONTAINER_NAME], containers[CONTAINER_NAME]
    assert worker["Cpu"] + collector["Cpu"] == TASK_CPU
    assert collector["Memory"] == COLLECTOR_MEMORY_MIB < TASK_MEMORY_MIB // 2
    assert "Memory" not in worker  # the worker may use what the collector does not
    # The collector refuses spans before the hard limit kills it.
    assert COLLECTOR_MEMORY_LIMITER_MIB < COLLECTOR_MEMORY_MIB


def test_a_task_too_small_for_the_sidecar_fails_synthesis() -> None:
    with pytest.raises(ValueError, match="too little beside the trace collector"):
        _worker_stack(Tracing(sampling_ratio=1.0), cpu=COLLECTOR_CPU_UNITS + 64)


def test_the_sidecar_logs_to_the_workers_group_under_its_own_prefix(on: dict[str, Any]) -> None:
    containers = _containers(on)
    collector = containers[COLLECTOR_CONTAINER_NAME]["LogConfiguration"]["Options"]
    worker = containers[CONTAINER_NAME]["LogConfiguration"]["Options"]
    assert collector["awslogs-group"] == worker["awslogs-group"]  # same retention and keys
    assert collector["awslogs-stream-prefix"] == COLLECTOR_CONTAINER_NAME
    assert worker["awslogs-stream-prefix"] == "worker"
    assert len(_by_type(on, "AWS::Logs::LogGroup")) == 1


def test_the_collector_takes_otlp_on_loopback_and_sends_to_xray(on: dict[str, Any]) -> None:
    collector = _containers(on)[COLLECTOR_CONTAINER_NAME]
    config = _collector_config(collector)
    receivers = config["receivers"]["otlp"]["protocols"]
    assert receivers == {"http": {"endpoint": f"127.0.0.1:{OTLP_HTTP_PORT}"}}
    assert config["extensions"]["health_check"]["endpoint"] == f"127.0.0.1:{HEALTH_CHECK_PORT}"
    assert config["service"]["extensions"] == ["health_check"]
    (pipeline,) = config["service"]["pipelines"].values()
    assert pipeline["receivers"] == ["otlp"]
    assert pipeline["exporters"] == ["awsxray"]
    assert pipeline["processors"][0] == "memory_limiter"  # first, as the collector advises
    assert set(pipeline["processors"]) == set(config["processors"])
    # Traces link to the worker's log lines (X-Ray's CloudWatch Logs correlation).
    (log_group_id,) = [k for k, r in on["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"]
    assert config["exporters"]["awsxray"]["aws_log_groups"] == [log_group_id]
    assert "PortMappings" not in collector  # nothing outside the task talks to it


def test_the_task_role_may_write_trace_segments_and_nothing_more(on: dict[str, Any]) -> None:
    xray = [s for s in _worker_role_statements(on) if "xray" in json.dumps(s["Action"])]
    assert xray == [{"Action": "xray:PutTraceSegments", "Effect": "Allow", "Resource": "*"}]
    assert XRAY_ACTIONS == ("xray:PutTraceSegments",)


def test_a_digest_pins_the_image_by_content(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = "sha256:" + "0" * 64
    monkeypatch.setattr(trace_spec, "COLLECTOR_DIGEST", digest)
    assert trace_spec.collector_image() == (f"{COLLECTOR_REPOSITORY}:{COLLECTOR_TAG}@{digest}")


@pytest.mark.parametrize("ratio", [0, -0.1, 1.01])
def test_a_sampling_ratio_outside_0_to_1_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match="sampling_ratio"):
        Tracing(sampling_ratio=ratio)


@pytest.mark.parametrize("env", ENVS)
def test_each_environment_traces_as_its_config_says(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    template = template_json(synthesized[env])
    tracing = ENVIRONMENTS[env].tracing
    containers = _containers(template)
    worker = containers[CONTAINER_NAME]
    xray = {
        action
        for statement in _worker_role_statements(template)
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
        if action.startswith("xray:")
    }
    if tracing is None:
        assert list(containers) == [CONTAINER_NAME]
        assert _otel(worker) == {}
        assert xray == set()
    else:
        assert list(containers) == [CONTAINER_NAME, COLLECTOR_CONTAINER_NAME]
        assert float(_otel(worker)["OTEL_TRACES_SAMPLER_ARG"]) == tracing.sampling_ratio
        assert _otel(worker)["OTEL_SERVICE_NAME"] == f"order-service-{env}-worker"
        assert xray == set(XRAY_ACTIONS)
        assert _env(containers[COLLECTOR_CONTAINER_NAME])["AWS_REGION"] == (
            ENVIRONMENTS[env].region
        )


def test_the_migration_task_is_never_traced(synthesized: dict[str, SynthReport]) -> None:
    for env in ENVS:
        template = template_json(synthesized[env])
        (migrate,) = [
            r["Properties"]
            for r in _by_type(template, "AWS::ECS::TaskDefinition")
            if r["Properties"]["Family"].endswith("-migrate")
        ]
        (container,) = migrate["ContainerDefinitions"]
        assert _otel(container) == {}
