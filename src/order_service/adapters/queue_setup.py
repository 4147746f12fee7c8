"""The queues as SQS has them, read once at start-up: their types, checked as a pair, and the
redrive policy this run applies (the queue's maxReceiveCount wins over this build's: it is
what SQS applies)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import structlog

from order_service.adapters.sqs import QueueSetup, SqsQueue
from order_service.domain.queue_type import QueueType, pairing_problem
from order_service.domain.redelivery import RedeliveryPolicy
from order_service.errors import ConfigError, QueueUnavailable

log = structlog.get_logger("order_service.worker")


async def read_queues(queue: SqsQueue, policy: RedeliveryPolicy) -> tuple[str, RedeliveryPolicy]:
    """The queues' types and the redrive policy, read once at start-up: (the main queue's type
    as /ready says it, the policy for this run). The queue's maxReceiveCount wins at run time:
    it is what SQS applies. A main queue and a DLQ of different types stop start-up
    (ConfigError); unreadable, their names say the types (SQS requires .fifo on a FIFO one)."""
    try:
        setup = await asyncio.wait_for(queue.describe(), 10)
    except (QueueUnavailable, TimeoutError) as exc:
        log.warning("could not read the queues' attributes", error=str(exc))
        setup = QueueSetup(QueueType(queue.fifo), QueueType(queue.dlq_fifo), None)
        count: int | None = policy.max_receive_count
    else:
        count = setup.max_receive_count
        log.info("queues", queue_type=setup.queue.describe(), dlq_type=setup.dlq.describe())
    problem = pairing_problem(queue.queue_url, setup.queue, queue.dlq_url, setup.dlq)
    if problem is None and setup.queue.fifo != queue.fifo:
        problem = f"SQS_QUEUE_URL {queue.queue_url}: FifoQueue does not match its name"
    if problem is not None:
        raise ConfigError(problem)
    return setup.queue.describe(), _with_receive_count(policy, count)


def _with_receive_count(policy: RedeliveryPolicy, count: int | None) -> RedeliveryPolicy:
    if count is None:
        log.warning("the queue has no redrive policy: deferred events are retried until expiry")
        return policy
    if count != policy.max_receive_count:
        log.warning(
            "the queue's maxReceiveCount differs from this build's; the queue's applies",
            queue=count,
            expected=policy.max_receive_count,
        )
    return replace(policy, max_receive_count=count)
