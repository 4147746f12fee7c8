"""The worker's own metrics in CloudWatch, as it publishes them (embedded metric format lines
in its logs: src/order_service/adapters/cloudwatch_emf.py). The names are pinned to the
worker's by tests/infra/test_infra_monitoring_worker.py."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

NAMESPACE = "OrderService"
QUEUE_DIMENSION = "QueueName"  # the worker's queue: unique per environment, known to both
OUTCOMES = ("applied", "duplicate", "rejected", "deferred", "invalid", "transient")
BATCHES = "Batches"
BATCH_SECONDS_MEAN = "BatchDurationMeanSeconds"
BATCH_SECONDS_P99 = "BatchDurationP99Seconds"
SYSTEM_FAULTS = "SystemFaults"
PAUSED = "Paused"
FAULT_KIND_DIMENSION = "FaultKind"
PUBLISH_SECONDS = 60  # the worker's default EMF_INTERVAL_SECONDS: one datapoint a minute


def outcome_metric_name(outcome: str) -> str:
    return f"Messages{outcome.capitalize()}"


def worker_metric(
    name: str, queue_name: str, *, statistic: str = "Sum", period: Duration | None = None
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={QUEUE_DIMENSION: queue_name},
        statistic=statistic,
        period=period or Duration.seconds(PUBLISH_SECONDS),
    )


def outcome_metrics(queue_name: str, period: Duration) -> dict[str, cloudwatch.Metric]:
    return {
        outcome: worker_metric(outcome_metric_name(outcome), queue_name, period=period)
        for outcome in OUTCOMES
    }
