"""The operator's commands on the DLQ (`order-service dlq inspect|redrive`), through the SQS
adapter's requests: list, release, SQS's own move task, and the manual redrive that keeps each
message's attributes and group."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from order_service.adapters.sqs import SqsQueue, in_batches, keys_entry
from order_service.errors import QueueUnavailable
from order_service.producer import SendKeys

# What SendMessage takes of an attribute that ReceiveMessage returned.
_ATTRIBUTE_FIELDS = ("DataType", "StringValue", "BinaryValue")


class MoveTaskRefused(QueueUnavailable):
    """The endpoint refused StartMessageMoveTask (it may not offer it); the error code."""


@dataclass(frozen=True)
class DeadLetter:
    """A message of the DLQ as an operator handles it: with its message attributes (the
    worker's `invalid_reason` and `source_message_id`), as SQS returned them."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, dict[str, Any]]
    group_id: str | None = None  # the producer's MessageGroupId, kept by the worker's copy

    def attribute_values(self) -> dict[str, str | None]:
        return {name: value.get("StringValue") for name, value in self.attributes.items()}


@dataclass
class RedriveResult:
    moved: int = 0
    errors: list[str] = field(default_factory=list)  # one per message SQS refused to take


class DeadLetterQueue:
    """The DLQ of `queue`, and the way back to it."""

    def __init__(self, queue: SqsQueue) -> None:
        self._queue = queue

    async def receive(self, max_messages: int, visibility_timeout: int) -> list[DeadLetter]:
        """Up to `max_messages` of the DLQ, hidden for `visibility_timeout` seconds."""
        response = await self._queue.call(
            "receive_message",
            QueueUrl=self._queue.dlq_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=1,
            VisibilityTimeout=visibility_timeout,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["MessageGroupId"],
        )
        return [
            DeadLetter(
                m["MessageId"],
                m["ReceiptHandle"],
                m["Body"],
                m.get("MessageAttributes", {}),
                m.get("Attributes", {}).get("MessageGroupId"),
            )
            for m in response.get("Messages", [])
        ]

    async def release(self, letters: Sequence[DeadLetter]) -> None:
        """Makes received DLQ messages visible again at once."""
        for chunk in in_batches(letters):
            await self._queue.call(
                "change_message_visibility_batch",
                QueueUrl=self._queue.dlq_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                    for i, m in enumerate(chunk)
                ],
            )

    async def start_redrive(self) -> str:
        """Starts SQS's own move of the DLQ back to the main queue; its task handle."""
        arns = []
        for url in (self._queue.dlq_url, self._queue.queue_url):
            response = await self._queue.call(
                "get_queue_attributes", QueueUrl=url, AttributeNames=["QueueArn"]
            )
            arns.append(response["Attributes"]["QueueArn"])
        try:
            task = await self._queue.call(
                "start_message_move_task", SourceArn=arns[0], DestinationArn=arns[1]
            )
        except QueueUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError):
                raise MoveTaskRefused(cause.response["Error"]["Code"]) from cause
            raise
        handle: str = task["TaskHandle"]
        return handle

    async def redrive(self, letters: Sequence[DeadLetter]) -> RedriveResult:
        """Sends each to the main queue with its attributes and group, then deletes from the
        DLQ those sent (a message is never lost; at worst sent twice, a duplicate for the
        worker). Into a FIFO queue each gets a fresh deduplication id: SQS would drop a resend
        of the worker's earlier message of the same id for 5 minutes. The entries SQS refused
        stay in the DLQ and are made visible again at once."""
        result = RedriveResult()
        for chunk in in_batches(letters):
            response = await self._queue.call(
                "send_message_batch",
                QueueUrl=self._queue.queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "MessageBody": m.body,
                        **_attributes_entry(m),
                        **keys_entry(self._redrive_keys(m)),
                    }
                    for i, m in enumerate(chunk)
                ],
            )
            refused = [(chunk[int(f["Id"])], f) for f in response.get("Failed", [])]
            result.errors += [
                f"{m.message_id}: {f.get('Code')} {f.get('Message', '')}".strip()
                for m, f in refused
            ]
            if refused:
                await self.release([m for m, _ in refused])
            sent = [chunk[int(s["Id"])] for s in response.get("Successful", [])]
            if sent:
                await self._queue.call(
                    "delete_message_batch",
                    QueueUrl=self._queue.dlq_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m.receipt_handle}
                        for i, m in enumerate(sent)
                    ],
                )
            result.moved += len(sent)
        return result

    def _redrive_keys(self, letter: DeadLetter) -> SendKeys:
        if not self._queue.fifo:
            return SendKeys(letter.group_id)
        return SendKeys(letter.group_id or letter.message_id, uuid.uuid4().hex)


def _attributes_entry(letter: DeadLetter) -> dict[str, Any]:
    if not letter.attributes:
        return {}
    return {
        "MessageAttributes": {
            name: {k: v for k, v in value.items() if k in _ATTRIBUTE_FIELDS}
            for name, value in letter.attributes.items()
        }
    }
