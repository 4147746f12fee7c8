"""The order-events queue and its dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_sqs as sqs
from constructs import Construct

MAX_RECEIVE_COUNT = 5
# The contract caps an event at 256 KiB; the DLQ takes SQS's maximum (1 MiB) so that an
# invalid message plus its reason attributes always fits.
QUEUE_MAX_MESSAGE_BYTES = 256 * 1024
DLQ_MAX_MESSAGE_BYTES = 1024 * 1024
QUEUE_RETENTION = Duration.days(4)
DLQ_RETENTION = Duration.days(14)  # SQS's maximum, and longer than the main queue's


class Messaging(Construct):
    """Main queue with redrive to a DLQ; both SSE-SQS encrypted and TLS-only. The stack keeps
    them (`removal_policy`) wherever it keeps the database: the orders waiting in them and the
    dead letters are data like the rows."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        visibility_timeout: Duration,
        removal_policy: RemovalPolicy,
        fifo: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        # FIFO: both queues (SQS refuses a redrive between types), in high-throughput mode;
        # the producers' MessageDeduplicationId dedupes (the contract: the event id), never
        # the body's hash.
        ordering = (
            {
                "fifo": True,
                "content_based_deduplication": False,
                "deduplication_scope": sqs.DeduplicationScope.MESSAGE_GROUP,
                "fifo_throughput_limit": sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
            }
            if fifo
            else {}
        )

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
            max_message_size_bytes=DLQ_MAX_MESSAGE_BYTES,
            removal_policy=removal_policy,
            **ordering,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=QUEUE_RETENTION,
            max_message_size_bytes=QUEUE_MAX_MESSAGE_BYTES,
            # The worker heartbeats visibility back to this value every third of it, so a slow
            # batch keeps its messages and a crashed task frees them within a minute.
            visibility_timeout=visibility_timeout,
            receive_message_wait_time=Duration.seconds(20),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVE_COUNT
            ),
            removal_policy=removal_policy,
            **ordering,
        )
