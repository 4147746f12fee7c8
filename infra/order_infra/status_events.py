"""The way out: the SNS topic the outbox relay publishes order status events to, an example
subscriber queue (raw delivery) with its DLQ for a downstream team, and the relay's lag (the
age of the oldest unpublished outbox row) as an alarm and a dashboard widget.

The lag is the worker's Prometheus gauge `order_service_outbox_oldest_unpublished_seconds`,
published to CloudWatch as `OrderService/OutboxOldestUnpublishedSeconds` per queue (the
worker's metrics go out as EMF lines, namespace and QueueName dimension as its other metrics).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

METRIC_NAMESPACE = "OrderService"
LAG_METRIC = "OutboxOldestUnpublishedSeconds"
PARKED_METRIC = "OutboxParkedRows"  # rows SNS refused for good, waiting for an operator
QUEUE_DIMENSION = "QueueName"
SUBSCRIBER_MAX_RECEIVE_COUNT = 5
SUBSCRIBER_DLQ_RETENTION = Duration.days(14)


class StatusEvents(Construct):
    """Exposes `topic`, `topic_key`, `subscriber_queue`, `subscriber_dead_letter_queue`,
    `lag_alarm`, `parked_alarm` and `widgets` (for the stack's dashboard);
    `grant_publish(role)` allows sns:Publish (PublishBatch's action) on this topic only, and
    the key's use for it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic_name: str,
        queue_name: str,
        lag_alarm_seconds: int,
    ) -> None:
        super().__init__(scope, construct_id)
        # A customer-managed key: SNS can deliver to SQS from a topic under it when the key
        # lets SNS use it (an AWS-managed SNS key cannot be granted to anyone).
        self.topic_key = kms.Key(
            self,
            "TopicKey",
            enable_key_rotation=True,
            description="order-service status events topic encryption",
        )
        self.topic_key.grant(
            iam.ServicePrincipal("sns.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=topic_name,
            display_name="order status events",
            master_key=self.topic_key,
            enforce_ssl=True,
        )

        self.subscriber_dead_letter_queue = sqs.Queue(
            self,
            "SubscriberDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=SUBSCRIBER_DLQ_RETENTION,
        )
        # The example a downstream team copies: raw delivery (the body is the event), its own
        # DLQ, SSE-SQS (SNS may deliver to it without a key grant).
        self.subscriber_queue = sqs.Queue(
            self,
            "SubscriberQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.subscriber_dead_letter_queue,
                max_receive_count=SUBSCRIBER_MAX_RECEIVE_COUNT,
            ),
        )
        self.topic.add_subscription(
            subscriptions.SqsSubscription(self.subscriber_queue, raw_message_delivery=True)
        )

        self.lag_metric = cloudwatch.Metric(
            namespace=METRIC_NAMESPACE,
            metric_name=LAG_METRIC,
            dimensions_map={QUEUE_DIMENSION: queue_name},
            statistic="Maximum",
            period=Duration.minutes(1),
        )
        self.lag_alarm = cloudwatch.Alarm(
            self,
            "OutboxLagAlarm",
            alarm_description=(
                "An outbox row has waited this long to be published: the relay is failing "
                "(SNS errors, permissions) or stuck. See order-service outbox status."
            ),
            metric=self.lag_metric,
            threshold=lag_alarm_seconds,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # No data: no worker publishes metrics (it is down, which other alarms catch).
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # A parked row is never published until someone retries it (its order's later rows
        # wait behind it): one is enough to page.
        self.parked_alarm = cloudwatch.Alarm(
            self,
            "OutboxParkedAlarm",
            alarm_description=(
                "SNS refused an outbox row for good; it is parked and its order's later status "
                "events wait. See order-service outbox status, then order-service outbox retry."
            ),
            metric=cloudwatch.Metric(
                namespace=METRIC_NAMESPACE,
                metric_name=PARKED_METRIC,
                dimensions_map={QUEUE_DIMENSION: queue_name},
                statistic="Maximum",
                period=Duration.minutes(1),
            ),
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Outbox relay lag: oldest unpublished row (s)",
                left=[self.lag_metric.with_(label="oldest unpublished outbox row (s)")],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=lag_alarm_seconds, label="alarm")
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Status events published, delivery failures",
                left=[
                    self.topic.metric_number_of_messages_published(period=Duration.minutes(1)),
                    self.topic.metric_number_of_notifications_failed(period=Duration.minutes(1)),
                ],
                width=12,
            ),
        ]

    def grant_publish(self, grantee: iam.IGrantable) -> None:
        # Not topic.grant_publish: it adds kms:GenerateDataKey* (a wildcard cdk-nag refuses);
        # publishing to an encrypted topic needs exactly these of its key.
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["sns:Publish"], resource_arns=[self.topic.topic_arn]
        )
        self.topic_key.grant(grantee, "kms:Decrypt", "kms:GenerateDataKey")
