"""What runs beside the worker when tracing is on (issue 15), as plain values: the ADOT
collector's image, size and configuration, the worker's OTEL_* variables and the X-Ray actions.
trace_collector.py builds the sidecar from them; the docs' figures read them without the CDK.
"""

from __future__ import annotations

from typing import Any

from .config import Tracing

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
