"""The queue type, in one place: what a FIFO queue changes for the worker, and which pairs of a
main queue and its DLQ can work.

SQS requires a FIFO queue's name to end in `.fifo`, so the name alone says the type before any
call; the worker still reads the attributes at start-up (`SqsQueue.describe`), which also give
a FIFO queue's deduplication scope and throughput mode.
"""

from __future__ import annotations

from dataclasses import dataclass

FIFO_SUFFIX = ".fifo"
# What SQS assumes when a FIFO queue omits them (and what an emulator may not return).
DEFAULT_DEDUPLICATION_SCOPE = "queue"
DEFAULT_THROUGHPUT_LIMIT = "perQueue"


def is_fifo_name(url_or_arn: str) -> bool:
    return url_or_arn.rstrip("/").endswith(FIFO_SUFFIX)


def queue_name(queue_url: str) -> str:
    """A queue's name: the last segment of its URL (SQS's QueueName, a span's destination)."""
    return queue_url.rstrip("/").rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class QueueType:
    fifo: bool
    deduplication_scope: str = DEFAULT_DEDUPLICATION_SCOPE
    throughput_limit: str = DEFAULT_THROUGHPUT_LIMIT

    @classmethod
    def from_attributes(cls, attributes: dict[str, str]) -> QueueType:
        if attributes.get("FifoQueue", "false").lower() != "true":
            return cls(fifo=False)
        return cls(
            fifo=True,
            deduplication_scope=attributes.get("DeduplicationScope") or DEFAULT_DEDUPLICATION_SCOPE,
            throughput_limit=attributes.get("FifoThroughputLimit") or DEFAULT_THROUGHPUT_LIMIT,
        )

    @property
    def name(self) -> str:
        return "fifo" if self.fifo else "standard"

    def describe(self) -> str:
        """For the start-up line and /ready: the type, and a FIFO queue's modes."""
        if not self.fifo:
            return "standard"
        high = (
            self.deduplication_scope == "messageGroup"
            and self.throughput_limit == "perMessageGroupId"
        )
        mode = "high throughput" if high else "throughput per queue"
        return (
            f"fifo ({mode}: deduplication per {self.deduplication_scope}, "
            f"limit {self.throughput_limit})"
        )


def pairing_problem(queue_url: str, queue: QueueType, dlq_url: str, dlq: QueueType) -> str | None:
    """Why this main queue cannot dead-letter into this DLQ, naming both, or None. SQS refuses
    such a redrive policy too, and the worker's own copy would be refused at each invalid
    message (a FIFO DLQ needs a group id, which a standard queue's messages may not have)."""
    if queue.fifo == dlq.fifo:
        return None
    return (
        f"SQS_QUEUE_URL {queue_url} is a {queue.name} queue but SQS_DLQ_URL {dlq_url} is a "
        f"{dlq.name} queue: the main queue and its DLQ must be of the same type"
    )
