"""The SQS adapter against a real SQS-compatible endpoint (ministack), same client code."""

from __future__ import annotations

import asyncio

from order_service.adapters.sqs import SqsQueue
from order_service.metrics import Metrics
from order_service.service.ports import Message
from tests.support.queues import receive_messages


async def test_send_receive_delete(sqs, queues):
    queue = SqsQueue(sqs, queues.url, queues.dlq_url, metrics=Metrics())
    await queue.send(queues.url, [f"m{i}" for i in range(25)])
    got = await receive_messages(queue, 25)
    assert sorted(m.body for m in got) == sorted(f"m{i}" for i in range(25))
    assert all(m.receive_count == 1 for m in got)
    assert await queue.delete(got) == []
    assert await queue.depth(queues.url) == (0, 0)


async def test_stale_receipt_handle_is_reported_not_ignored(sqs, queues):
    queue = SqsQueue(sqs, queues.url, queues.dlq_url, metrics=Metrics())
    await queue.send(queues.url, ["a"])
    (message,) = await receive_messages(queue, 1)
    stale = Message(message.message_id, "not-a-receipt-handle", message.body)
    failed = await queue.delete([message, stale])
    assert [(m.receipt_handle, code) for m, code in failed] == [
        ("not-a-receipt-handle", "ReceiptHandleIsInvalid")
    ]


async def test_visibility_zero_returns_a_message_at_once_with_its_receive_count(sqs, queues):
    queue = SqsQueue(sqs, queues.url, queues.dlq_url, metrics=Metrics())
    await queue.send(queues.url, ["b"])
    (first,) = await receive_messages(queue, 1)
    assert await queue.change_visibility([first], [0]) == []
    (second,) = await receive_messages(queue, 1)
    assert second.message_id == first.message_id and second.receive_count == 2


async def test_dead_letter_copy_carries_the_reason(sqs, queues):
    queue = SqsQueue(sqs, queues.url, queues.dlq_url, metrics=Metrics())
    message = Message("m-1", "rh", "not json")
    assert await queue.send_to_dlq(message, "not JSON: Expecting value") is True
    response = await sqs.receive_message(
        QueueUrl=queues.dlq_url,
        MaxNumberOfMessages=1,
        WaitTimeSeconds=1,
        MessageAttributeNames=["All"],
    )
    (copy,) = response["Messages"]
    assert copy["Body"] == "not json"
    assert copy["MessageAttributes"]["invalid_reason"]["StringValue"] == "not JSON: Expecting value"
    assert copy["MessageAttributes"]["source_message_id"]["StringValue"] == "m-1"


async def test_redrive_policy_moves_a_message_after_five_receives(sqs, queues):
    queue = SqsQueue(sqs, queues.url, queues.dlq_url, metrics=Metrics())
    await queue.send(queues.url, ["never processed"])
    for _ in range(5):
        (m,) = await receive_messages(queue, 1)
        await queue.change_visibility([m], [0])
    await asyncio.sleep(0)
    assert await queue.receive(10, 1) == []
    assert (await queue.depth(queues.dlq_url))[0] == 1
