"""Traces on AWS (issue 15): an ADOT collector beside the worker, sending to X-Ray.

The worker exports OTLP/HTTP to localhost (the task's containers share one network namespace);
the collector batches the spans and calls X-Ray's PutTraceSegments with the task role. The
collector is not essential and the worker waits only for it to start: a collector that fails
loses traces, never orders (infra/README.md, Tracing).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from .config import Tracing
from .nag import acknowledge

# The public image, pinned: the latest release when this was written (v0.49.0, 2026-07-15;
# github.com/aws-observability/aws-otel-collector/releases). Set COLLECTOR_DIGEST to the tag's
# image index digest (`docker buildx imagetools inspect <repository>:<tag>`) to pin the bytes
# too; synthesis never asks the registry.
COLLECTOR_REPOSITORY = "public.ecr.aws/aws-observability/aws-otel-collector"
COLLECTOR_TAG = "v0.49.0"
COLLECTOR_DIGEST: str | None = None
COLLECTOR_CONTAINER_NAME = "otel-collector"
COLLECTOR_USER = "4317:4317"  # the image's own non-root user (aoc)
# Sizing within the task: the collector's CPU share is reserved out of the task's (the worker
# gets the rest), its memory is a hard limit (a leaking collector is killed, the worker goes
# on); memory_limiter refuses spans, and GOMEMLIMIT makes Go collect, before that limit.
COLLECTOR_CPU_UNITS = 64
COLLECTOR_MEMORY_MIB = 128
COLLECTOR_MEMORY_LIMITER_MIB = 100
COLLECTOR_GOMEMLIMIT = "90MiB"
OTLP_HTTP_PORT = 4318
HEALTH_CHECK_PORT = 13133  # the image's /healthcheck binary asks 127.0.0.1:13133
# What the awsxray exporter calls, and nothing else: PutTraceSegments. PutTelemetryRecords
# is called only with the exporter's `telemetry` on (off here); GetSamplingRules/Targets only
# by X-Ray remote sampling (the awsproxy extension), while this worker samples by its own
# OTEL_TRACES_SAMPLER.
XRAY_ACTIONS = ("xray:PutTraceSegments",)


def collector_image() -> str:
    """The image reference: repository:tag, with @digest once COLLECTOR_DIGEST is set."""
    reference = f"{COLLECTOR_REPOSITORY}:{COLLECTOR_TAG}"
    return f"{reference}@{COLLECTOR_DIGEST}" if COLLECTOR_DIGEST else reference


def collector_config(*, log_group_name: str) -> dict[str, Any]:
    """The collector's configuration (AOT_CONFIG_CONTENT; JSON is YAML): OTLP/HTTP in on
    loopback only, X-Ray out, the traces linked to the worker's log group."""
    return {
        "extensions": {"health_check": {"endpoint": f"127.0.0.1:{HEALTH_CHECK_PORT}"}},
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{OTLP_HTTP_PORT}"}}}},
        "processors": {
            "memory_limiter": {
                "check_interval": "1s",
                "limit_mib": COLLECTOR_MEMORY_LIMITER_MIB,
                "spike_limit_mib": COLLECTOR_MEMORY_LIMITER_MIB // 4,
            },
            # The task's ARN, cluster and family on every trace (ECS task metadata endpoint).
            "resourcedetection": {"detectors": ["env", "ecs"], "timeout": "2s"},
            "batch/traces": {"timeout": "1s", "send_batch_size": 50},  # 50 per PutTraceSegments
        },
        "exporters": {"awsxray": {"aws_log_groups": [log_group_name]}},
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "resourcedetection", "batch/traces"],
                    "exporters": ["awsxray"],
                }
            },
        },
    }


def worker_environment(tracing: Tracing, *, service_name: str, environment: str) -> dict[str, str]:
    """The worker's standard OTEL_* variables: export to the sidecar, sample at the head."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://localhost:{OTLP_HTTP_PORT}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": service_name,
        "OTEL_RESOURCE_ATTRIBUTES": f"deployment.environment.name={environment}",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": f"{tracing.sampling_ratio:g}",
        "OTEL_PROPAGATORS": tracing.propagators,
    }


class TraceCollector(Construct):
    """The ADOT collector sidecar of the worker's task, its X-Ray permission, and the
    worker's OTEL_* variables pointing at it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tracing: Tracing,
        task_definition: ecs.FargateTaskDefinition,
        worker: ecs.ContainerDefinition,
        log_group: logs.ILogGroup,
        service_name: str,
        environment: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.container = task_definition.add_container(
            COLLECTOR_CONTAINER_NAME,
            image=ecs.ContainerImage.from_registry(collector_image()),
            essential=False,
            cpu=COLLECTOR_CPU_UNITS,
            memory_limit_mib=COLLECTOR_MEMORY_MIB,
            user=COLLECTOR_USER,
            readonly_root_filesystem=True,
            environment={
                "AOT_CONFIG_CONTENT": stack.to_json_string(
                    collector_config(log_group_name=log_group.log_group_name)
                ),
                "AWS_REGION": stack.region,
                "GOMEMLIMIT": COLLECTOR_GOMEMLIMIT,
            },
            logging=ecs.LogDriver.aws_logs(
                stream_prefix=COLLECTOR_CONTAINER_NAME, log_group=log_group
            ),
            # Informational: a non-essential container's health does not count in the task's.
            health_check=ecs.HealthCheck(
                command=["CMD", "/healthcheck"],
                interval=Duration.seconds(30),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(10),
            ),
        )
        # START, not HEALTHY: a collector that never gets healthy must not keep the worker
        # from starting. ECS stops containers in the reverse order, so the collector outlives
        # the worker's drain and receives its last spans.
        worker.add_container_dependencies(
            ecs.ContainerDependency(
                container=self.container, condition=ecs.ContainerDependencyCondition.START
            )
        )
        for name, value in worker_environment(
            tracing, service_name=service_name, environment=environment
        ).items():
            worker.add_environment(name, value)

        task_role = task_definition.task_role
        task_role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(XRAY_ACTIONS), resources=["*"])
        )
        acknowledge(
            task_role,
            "AwsSolutions-IAM5[Resource::*]",
            "xray:PutTraceSegments supports no resource-level permission (X-Ray's service "
            "authorization reference): the collector sidecar may only write trace segments.",
        )
