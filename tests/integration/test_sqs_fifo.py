"""The SQS adapter on FIFO queues and fair (grouped standard) queues, against ministack with the
production client code: start-up attributes, the DLQ copy's group and deduplication ids, the
manual redrive, and the attempt ids of retried receives (through the fault proxy)."""

from __future__ import annotations

import itertools
import uuid

import pytest

from order_service.adapters.sqs import SqsQueue, sqs_client
from order_service.adapters.sqs_dlq import DeadLetterQueue
from order_service.domain.queue_type import QueueType
from order_service.errors import QueueUnavailable
from order_service.metrics import Metrics
from tests.factories import body, paid, placed
from tests.support.queues import dead_letters, receive_messages
from tests.support.sqs_proxy import Faults


async def test_describe_reads_both_types_and_the_high_throughput_mode(sqs, fifo_queues, queues):
    setup = await SqsQueue(sqs, fifo_queues.url, fifo_queues.dlq_url, metrics=Metrics()).describe()
    high = QueueType(True, "messageGroup", "perMessageGroupId")
    assert (setup.queue, setup.dlq, setup.max_receive_count) == (high, high, 5)
    assert "high throughput" in setup.queue.describe()
    setup = await SqsQueue(sqs, queues.url, queues.dlq_url, metrics=Metrics()).describe()
    assert (setup.queue, setup.dlq) == (QueueType(False), QueueType(False))


async def test_fifo_attributes_an_emulator_omits_mean_the_defaults():
    assert QueueType.from_attributes({"FifoQueue": "true"}) == QueueType(True, "queue", "perQueue")
    assert QueueType.from_attributes({}) == QueueType(False)


async def test_send_groups_by_order_with_the_event_id_as_deduplication_id(sqs, fifo_queues):
    queue = SqsQueue(sqs, fifo_queues.url, fifo_queues.dlq_url, metrics=Metrics())
    order = str(uuid.uuid4())
    first, second = body(placed(order)), body(paid(order))
    await queue.send(fifo_queues.url, [first, second, first])  # the resend is dropped by SQS
    got = await receive_messages(queue, 2)
    assert [m.body for m in got] == [first, second]
    assert {m.group_id for m in got} == {order}


async def test_the_dlq_copy_on_fifo_keeps_the_group_and_a_retried_copy_is_not_doubled(
    sqs, fifo_queues
):
    queue = SqsQueue(sqs, fifo_queues.url, fifo_queues.dlq_url, metrics=Metrics())
    order = str(uuid.uuid4())
    await queue.send(fifo_queues.url, [body(placed(order)), "not json"])
    _, invalid = await receive_messages(queue, 2)
    assert invalid.group_id == order
    assert await queue.send_to_dlq(invalid, "not JSON") is True
    assert await queue.send_to_dlq(invalid, "not JSON") is True  # the delete after it was lost
    (copy,) = await dead_letters(sqs, fifo_queues.dlq_url)
    assert copy["Body"] == "not json"
    assert copy["Attributes"]["MessageGroupId"] == order
    assert copy["Attributes"]["MessageDeduplicationId"] == invalid.message_id
    attributes = {k: v["StringValue"] for k, v in copy["MessageAttributes"].items()}
    assert attributes == {"invalid_reason": "not JSON", "source_message_id": invalid.message_id}


async def test_the_dlq_copy_on_a_fair_queue_keeps_the_tenant(sqs, queues):
    queue = SqsQueue(sqs, queues.url, queues.dlq_url, metrics=Metrics())
    await sqs.send_message(QueueUrl=queues.url, MessageBody="{", MessageGroupId="cust-7")
    (tenant,) = await receive_messages(queue, 1)
    assert tenant.group_id == "cust-7"
    assert await queue.send_to_dlq(tenant, "not JSON") is True
    (copy,) = await dead_letters(sqs, queues.dlq_url)
    assert copy["Attributes"]["MessageGroupId"] == "cust-7"
    assert "MessageDeduplicationId" not in copy["Attributes"]


async def test_manual_redrive_into_fifo_keeps_groups_and_order_with_fresh_deduplication_ids(
    sqs, fifo_queues
):
    queue = SqsQueue(sqs, fifo_queues.url, fifo_queues.dlq_url, metrics=Metrics())
    orders = [str(uuid.uuid4()) for _ in range(3)]
    bodies = [body(step(o)) for o in orders for step in (placed, paid)]
    await queue.send(fifo_queues.url, bodies)
    received = await receive_messages(queue, len(bodies))
    for m in received:
        assert await queue.send_to_dlq(m, "test")
    await queue.delete(received)
    letters = await DeadLetterQueue(queue).receive(10, 60)
    assert {letter.group_id for letter in letters} == set(orders)
    result = await DeadLetterQueue(queue).redrive(letters)
    assert (result.moved, result.errors) == (len(bodies), [])
    back = await receive_messages(queue, len(bodies))
    assert sorted((m.group_id, m.body) for m in back) == sorted(
        (m.group_id, m.body) for m in received
    )
    for order in orders:
        assert [m.body for m in back if m.group_id == order] == [
            m.body for m in received if m.group_id == order
        ]


async def test_manual_redrive_reports_what_sqs_refused_and_leaves_it_in_the_dlq(sqs, fifo_queues):
    """The main queue now takes smaller messages than one in the DLQ: SQS refuses that entry.
    Before, the fallback counted only what moved and reported success."""
    await sqs.set_queue_attributes(
        QueueUrl=fifo_queues.url, Attributes={"MaximumMessageSize": "1024"}
    )
    await sqs.send_message(
        QueueUrl=fifo_queues.dlq_url,
        MessageBody="x" * 2000,
        MessageGroupId="o-1",
        MessageDeduplicationId="d-1",
    )
    queue = SqsQueue(sqs, fifo_queues.url, fifo_queues.dlq_url, metrics=Metrics())
    letters = await DeadLetterQueue(queue).receive(10, 60)
    result = await DeadLetterQueue(queue).redrive(letters)
    assert result.moved == 0 and len(result.errors) == 1
    assert "InvalidParameterValue" in result.errors[0]
    assert (await queue.depth(fifo_queues.dlq_url))[0] == 1  # made visible again at once


@pytest.mark.parametrize(
    ("script", "same"),
    [
        # Lost answers and resets keep the id (SQS returns the same messages); a throttle and
        # an answer each end it.
        (["lost-answer", "reset"], [True, True, False]),
        (["throttle", "reset"], [False, True, False]),
    ],
)
async def test_a_retried_fifo_receive_keeps_its_attempt_id_unless_throttled(
    script, same, sqs_server, fifo_queues, proxy, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", proxy.endpoint)
    proxy.set(Faults(script={"ReceiveMessage": list(script)}))
    async with sqs_client("us-east-1", sdk_retries=0) as client:
        queue = SqsQueue(
            client, fifo_queues.url, fifo_queues.dlq_url, receive_client=client, metrics=Metrics()
        )
        receive = queue.receiver()
        for _ in script:
            with pytest.raises(QueueUnavailable):
                await receive(10, 0)
        await receive(10, 0)
        await receive(10, 0)
    ids = proxy.attempt_ids
    assert len(ids) == len(script) + 2 and all(ids)
    assert [a == b for a, b in itertools.pairwise(ids)] == same
