"""The worker's own metrics in CloudWatch, as it publishes them (embedded metric format lines
in its logs: src/order_service/adapters/cloudwatch_emf.py). The names are pinned to the
worker's by tests/infra/test_infra_monitoring_worker.py."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs

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


class WorkerMetrics:
    """The worker's EMF metrics for this queue, and the math the alarms use."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self.queue = queue
        self.queue_name = queue.queue_name

    def metric(self, name: str, *, statistic: str = "Sum") -> cloudwatch.Metric:
        return worker_metric(name, self.queue_name, statistic=statistic)

    def outcomes(self, period: Duration) -> dict[str, cloudwatch.Metric]:
        return outcome_metrics(self.queue_name, period)

    def invalid_percent(self, period: Duration) -> cloudwatch.MathExpression:
        outcomes = self.outcomes(period)
        total = " + ".join(outcomes)
        return cloudwatch.MathExpression(
            expression=f"100 * invalid / IF(({total}) > 0, {total}, 1)",
            using_metrics=dict(outcomes),
            label="Invalid (% of processed)",
            period=period,
        )

    def lag_seconds(self) -> cloudwatch.MathExpression:
        """Seconds to process what is queued and held (visible + in flight) at the last
        minute's rate; a rate of zero with a backlog counts as one message a minute."""
        outcomes = self.outcomes(Duration.minutes(1))
        processed = " + ".join(outcomes)
        return cloudwatch.MathExpression(
            expression=f"(visible + held) * 60 / IF(({processed}) > 0, {processed}, 1)",
            using_metrics={
                **outcomes,
                "visible": self.queue.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=Duration.minutes(1)
                ),
                "held": self.queue.metric_approximate_number_of_messages_not_visible(
                    statistic="Maximum", period=Duration.minutes(1)
                ),
            },
            label="Processing lag (s to drain at the current rate)",
            period=Duration.minutes(1),
        )

    def widgets(self) -> list[cloudwatch.IWidget]:
        outcomes = self.outcomes(Duration.minutes(1))
        return [
            cloudwatch.GraphWidget(
                title="Worker: messages by outcome (per minute)",
                left=list(outcomes.values()),
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Worker: invalid (%), processing lag (s)",
                left=[self.invalid_percent(Duration.minutes(1))],
                right=[self.lag_seconds()],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Worker: batch duration (s), system faults, paused",
                left=[
                    self.metric(BATCH_SECONDS_MEAN, statistic="Average"),
                    self.metric(BATCH_SECONDS_P99, statistic="Maximum"),
                ],
                right=[
                    self.metric(SYSTEM_FAULTS),
                    self.metric(PAUSED, statistic="Maximum"),
                ],
                width=8,
            ),
        ]
