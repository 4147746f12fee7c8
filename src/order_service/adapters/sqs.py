"""The SQS adapter on aiobotocore: the same botocore as boto3 (credentials chain, retries,
AWS_ENDPOINT_URL_SQS), asynchronous, maintained alongside botocore's releases."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from order_service.adapters.spans import NO_SPANS, Spans
from order_service.domain.queue_type import QueueType, is_fifo_name
from order_service.errors import QueueUnavailable
from order_service.metrics import Metrics
from order_service.producer import GroupBy, SendKeys, send_keys
from order_service.service.ports import Message, Receive

_BATCH = 10  # the most SQS takes in one batch call
_TOO_LARGE = {"InvalidParameterValue", "MessageTooLong", "InvalidMessageContents"}
# After these a FIFO receive is retried with a new attempt id (AWS's rule): the same id would
# be refused or throttled again. After any other error (network, timeout, 5xx) it keeps its id.
_THROTTLED = {"ThrottlingException", "RequestThrottled", "Throttling", "OverLimit"}


T = TypeVar("T")


def in_batches(items: Sequence[T]) -> list[Sequence[T]]:
    return [items[i : i + _BATCH] for i in range(0, len(items), _BATCH)]


class SqsQueue:
    """One queue and its DLQ. Every method raises QueueUnavailable on transport errors.

    `spans` (adapters/spans.py): the worker's calls are spans (receive, delete, change
    visibility, the DLQ copy, send), receive asks for the producers' trace context, and sends
    carry the current one; with the no-op spans (tracing off) none of that costs anything.

    A FIFO queue (its name ends in .fifo, as SQS requires) is received with attempt ids
    (`receiver`) through `receive_client`, a client without the SDK's retries: the SDK would
    resend an id after a throttle, which AWS's rule forbids, so the poller retries instead."""

    def __init__(
        self,
        client: Any,
        queue_url: str,
        dlq_url: str,
        metrics: Metrics,
        *,
        spans: Spans = NO_SPANS,
        receive_client: Any = None,
    ) -> None:
        self._client = client
        self._receive_client = receive_client or client
        self.queue_url = queue_url
        self.dlq_url = dlq_url
        self.fifo = is_fifo_name(queue_url)
        self.dlq_fifo = is_fifo_name(dlq_url)
        self._metrics = metrics
        self._spans = spans
        # MessageGroupId: a FIFO queue's order, or a fair queue's tenant, kept on the DLQ copy;
        # and the producers' trace context when traced.
        self._attributes = spans.receive_attributes(["ApproximateReceiveCount", "MessageGroupId"])

    async def call(self, action: str, client: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Every request of this adapter (and of the DLQ's, sqs_dlq.py): counted on /metrics,
        transport errors as QueueUnavailable."""
        self._metrics.sqs_requests.labels(action).inc()
        try:
            response: dict[str, Any] = await getattr(client or self._client, action)(**kwargs)
        except (BotoCoreError, ClientError, OSError) as exc:
            self._metrics.errors.labels("sqs").inc()
            raise QueueUnavailable(f"{action}: {exc}") from exc
        return response

    def receiver(self) -> Receive:
        """A poller's receive: on a FIFO queue with its own attempt ids, else `receive`."""
        return _AttemptIds(self) if self.fifo else self.receive

    async def receive(
        self, max_messages: int = 10, wait_seconds: int = 20, *, attempt_id: str | None = None
    ) -> list[Message]:
        attempt = {"ReceiveRequestAttemptId": attempt_id} if attempt_id else {}
        span = self._spans.messaging("receive", "receive", self.queue_url, "ReceiveMessage")
        with span:
            response = await self.call(
                "receive_message",
                self._receive_client if attempt_id else None,
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_seconds,
                **self._attributes,
                **attempt,
            )
            received = response.get("Messages", [])
            span.set_attribute("messaging.batch.message_count", len(received))
        return [
            Message(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m["Body"],
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                trace_carrier=carrier,
                group_id=m.get("Attributes", {}).get("MessageGroupId"),
            )
            # The no-op spans' carriers never end: () for every message, at no cost per one.
            for m, carrier in zip(received, self._spans.carriers(received), strict=False)
        ]

    async def delete(self, messages: Sequence[Message]) -> list[tuple[Message, str]]:
        """Deletes in batches of 10; returns the messages SQS did not delete, with its code."""
        failed: list[tuple[Message, str]] = []
        span = self._spans.messaging(
            "delete", "settle", self.queue_url, "DeleteMessageBatch", len(messages)
        )
        with span:
            for chunk in in_batches(messages):
                response = await self.call(
                    "delete_message_batch",
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m.receipt_handle}
                        for i, m in enumerate(chunk)
                    ],
                )
                failed += [
                    (chunk[int(f["Id"])], f.get("Code", "?")) for f in response.get("Failed", [])
                ]
            if failed:
                span.set_attribute("order_service.failed_count", len(failed))
        return failed

    async def change_visibility(
        self, messages: Sequence[Message], timeouts: Sequence[int]
    ) -> list[tuple[Message, str]]:
        failed: list[tuple[Message, str]] = []
        pairs = list(zip(messages, timeouts, strict=True))
        span = self._spans.messaging(
            "change_visibility",
            "settle",
            self.queue_url,
            "ChangeMessageVisibilityBatch",
            len(pairs),
        )
        with span:
            for chunk in in_batches(pairs):
                response = await self.call(
                    "change_message_visibility_batch",
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": t}
                        for i, (m, t) in enumerate(chunk)
                    ],
                )
                failed += [
                    (chunk[int(f["Id"])][0], f.get("Code", "?")) for f in response.get("Failed", [])
                ]
            if failed:
                span.set_attribute("order_service.failed_count", len(failed))
        return failed

    async def send_to_dlq(self, message: Message, reason: str) -> bool:
        """Copies an invalid message to the DLQ with why; False if the DLQ refuses its size.
        The copy keeps the producer's group (a FIFO group, or a fair queue's tenant); on a FIFO
        DLQ its deduplication id is the source message's id, so a copy retried within SQS's
        5 minutes (the delete after it failed, the worker was killed) is dropped, not doubled."""
        keys: dict[str, str] = {}
        if message.group_id:
            keys["MessageGroupId"] = message.group_id
        if self.dlq_fifo:
            keys.setdefault("MessageGroupId", message.message_id)
            keys["MessageDeduplicationId"] = message.message_id
        attributes = {
            "invalid_reason": {"DataType": "String", "StringValue": reason[:256] or "invalid"},
            "source_message_id": {"DataType": "String", "StringValue": message.message_id},
        }
        span = self._spans.messaging("send", "send", self.dlq_url, "SendMessage", 1, "producer")
        with span:
            span.set_attribute("messaging.message.id", message.message_id)
            # Whoever redrives it continues this trace.
            attributes |= _context_attributes(self._spans.current_context())
            try:
                await self.call(
                    "send_message",
                    QueueUrl=self.dlq_url,
                    MessageBody=message.body or " ",
                    MessageAttributes=attributes,
                    **keys,
                )
            except QueueUnavailable as exc:
                cause = exc.__cause__
                code = cause.response["Error"]["Code"] if isinstance(cause, ClientError) else None
                if code in _TOO_LARGE:
                    span.set_attribute("order_service.dlq_refused", str(code))
                    return False
                raise
        return True

    async def send(
        self, queue_url: str, bodies: Sequence[str], group_by: GroupBy | None = None
    ) -> None:
        """Sends in batches of 10, with the group and deduplication ids a producer sets
        (order_service.producer: on a FIFO queue always the order; `group_by` on a standard
        one). Traced, each batch is a `send` span whose context every message of it carries
        (traceparent and tracestate: 2 of SQS's 10 attributes)."""
        keys = send_keys(bodies, fifo=is_fifo_name(queue_url), group_by=group_by)
        for chunk in in_batches(list(zip(bodies, keys, strict=True))):
            span = self._spans.messaging(
                "send", "send", queue_url, "SendMessageBatch", len(chunk), "producer"
            )
            with span:
                headers = span.context_headers()
                context = {"MessageAttributes": _context_attributes(headers)} if headers else {}
                response = await self.call(
                    "send_message_batch",
                    QueueUrl=queue_url,
                    Entries=[
                        {"Id": str(i), "MessageBody": b, **keys_entry(k), **context}
                        for i, (b, k) in enumerate(chunk)
                    ],
                )
            if response.get("Failed"):
                raise QueueUnavailable(f"send_message_batch failed: {response['Failed']}")

    async def describe(self) -> QueueSetup:
        """The main queue's and the DLQ's types and the main queue's redrive policy, as SQS
        has them (read once at start-up)."""
        names = ["RedrivePolicy", "FifoQueue", "DeduplicationScope", "FifoThroughputLimit"]
        main = await self.call(
            "get_queue_attributes", QueueUrl=self.queue_url, AttributeNames=names
        )
        dlq = await self.call("get_queue_attributes", QueueUrl=self.dlq_url, AttributeNames=names)
        attributes = main.get("Attributes", {})
        policy = attributes.get("RedrivePolicy")
        return QueueSetup(
            queue=QueueType.from_attributes(attributes),
            dlq=QueueType.from_attributes(dlq.get("Attributes", {})),
            max_receive_count=int(json.loads(policy)["maxReceiveCount"]) if policy else None,
        )

    async def depth(self, queue_url: str) -> tuple[int, int]:
        """(visible, in flight) messages of a queue, approximately, as SQS reports them."""
        response = await self.call(
            "get_queue_attributes",
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        attributes = response["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    async def ping(self) -> None:
        await self.depth(self.queue_url)


@dataclass
class QueueSetup:
    queue: QueueType
    dlq: QueueType
    max_receive_count: int | None  # of the main queue's redrive policy; None without one


class _AttemptIds:
    """One poller's receives on a FIFO queue. A receive retried after a network error or a
    timeout carries the same ReceiveRequestAttemptId, so SQS returns the messages the lost
    answer held instead of hiding them (and their groups) for a visibility timeout; after a
    throttle, or once an answer came, the next receive gets a new id."""

    def __init__(self, queue: SqsQueue) -> None:
        self._queue = queue
        self._pending: str | None = None

    async def __call__(self, max_messages: int, wait_seconds: int) -> list[Message]:
        self._pending = self._pending or uuid.uuid4().hex
        try:
            messages = await self._queue.receive(
                max_messages, wait_seconds, attempt_id=self._pending
            )
        except QueueUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and cause.response["Error"]["Code"] in _THROTTLED:
                self._pending = None
            raise
        self._pending = None
        return messages


def _context_attributes(headers: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Trace context headers as SQS message attributes."""
    return {name: {"DataType": "String", "StringValue": value} for name, value in headers.items()}


def keys_entry(keys: SendKeys) -> dict[str, str]:
    entry = {}
    if keys.group_id:
        entry["MessageGroupId"] = keys.group_id
    if keys.deduplication_id:
        entry["MessageDeduplicationId"] = keys.deduplication_id
    return entry


@contextlib.asynccontextmanager
async def sqs_client(
    region: str, max_connections: int = 10, read_timeout: int = 30, sdk_retries: int = 4
) -> Any:
    """An SQS client; endpoint and credentials come from the SDK's own variables and chain.
    `sdk_retries` (botocore's `max_attempts`: retries after the first attempt) 0: none (a FIFO
    queue's receives, retried by the poller)."""
    config = AioConfig(
        max_pool_connections=max_connections,
        connect_timeout=5,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": sdk_retries},
    )
    async with get_session().create_client("sqs", region_name=region, config=config) as client:
        yield client
