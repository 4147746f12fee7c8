"""The queue type read at start-up: a main queue and a DLQ of different types stop the worker
with one line naming both; an unreadable pair is judged by its names."""

from __future__ import annotations

import pytest

from order_service.adapters.queue_setup import read_queues
from order_service.adapters.sqs import QueueSetup
from order_service.domain.queue_type import QueueType, is_fifo_name, pairing_problem
from order_service.domain.redelivery import RedeliveryPolicy
from order_service.errors import ConfigError, QueueUnavailable

MAIN = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
DLQ = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders-dlq"


class Described:
    """A queue pair as SQS describes it (a fake for the attributes alone)."""

    def __init__(self, setup: QueueSetup | None, queue_url: str = MAIN, dlq_url: str = DLQ):
        self._setup = setup
        self.queue_url, self.dlq_url = queue_url, dlq_url
        self.fifo, self.dlq_fifo = is_fifo_name(queue_url), is_fifo_name(dlq_url)

    async def describe(self) -> QueueSetup:
        if self._setup is None:
            raise QueueUnavailable("GetQueueAttributes: unreachable")
        return self._setup


def test_names_say_the_type_as_sqs_requires():
    assert is_fifo_name(MAIN + ".fifo") and is_fifo_name(MAIN + ".fifo/")
    assert not is_fifo_name(MAIN) and not is_fifo_name(MAIN + "-fifo")


def test_a_pair_of_different_types_names_both_queues():
    problem = pairing_problem(MAIN, QueueType(False), DLQ + ".fifo", QueueType(True))
    assert problem is not None and MAIN in problem and DLQ + ".fifo" in problem
    assert pairing_problem(MAIN, QueueType(True), DLQ, QueueType(True)) is None


async def test_attributes_that_disagree_stop_start_up_naming_both():
    queue = Described(QueueSetup(QueueType(False), QueueType(True), 5))
    with pytest.raises(ConfigError, match="same type") as raised:
        await read_queues(queue, RedeliveryPolicy())  # type: ignore[arg-type]
    assert MAIN in str(raised.value) and DLQ in str(raised.value)


async def test_the_queue_type_and_receive_count_come_from_the_attributes():
    high = QueueType(True, "messageGroup", "perMessageGroupId")
    queue = Described(QueueSetup(high, high, 3), MAIN + ".fifo", DLQ + ".fifo")
    described, policy = await read_queues(queue, RedeliveryPolicy())  # type: ignore[arg-type]
    assert described.startswith("fifo (high throughput") and policy.max_receive_count == 3


async def test_unreadable_attributes_fall_back_to_the_names():
    queue = Described(None, MAIN + ".fifo", DLQ)
    with pytest.raises(ConfigError, match="same type"):
        await read_queues(queue, RedeliveryPolicy())  # type: ignore[arg-type]
    described, policy = await read_queues(Described(None), RedeliveryPolicy())  # type: ignore[arg-type]
    assert described == "standard" and policy == RedeliveryPolicy()
