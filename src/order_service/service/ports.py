"""What the processing needs from the outside world, as protocols, and the values they carry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

from order_service.domain.batch import Plan, Snapshot
from order_service.domain.events import OrderEvent
from order_service.domain.lifecycle import Outcome
from order_service.errors import StoreUnavailable, TopicUnavailable


@dataclass(frozen=True, slots=True)
class Message:
    """One received queue message."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1
    # The producer's trace context as received (traceparent, tracestate, AWSTraceHeader): only
    # asked of SQS, and so only present, when tracing is on.
    trace_carrier: tuple[tuple[str, str], ...] = ()
    # The producer's MessageGroupId: a FIFO queue's ordering key, or a fair queue's tenant on
    # a standard one; None when the producer set none.
    group_id: str | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """A message's outcome; `fault` says which fault of the system held a transient one."""

    message: Message
    outcome: Outcome
    reason: str | None = None
    event: OrderEvent | None = None
    fault: StoreUnavailable | None = None


class OrderStore(Protocol):
    async def run_batch(
        self, events: Sequence[OrderEvent], planner: Callable[[Snapshot], Plan]
    ) -> Plan:
        """In one transaction: lock the events' orders and ids, read a snapshot, let
        `planner` decide, write the plan and commit. Raises StoreUnavailable or StoreError."""
        ...

    async def probe(self) -> None:
        """Check what a batch needs (schema revision, a writable transaction, the tables and
        privileges) with a known-good batch that is rolled back. Raises StoreUnavailable."""
        ...

    async def quarantine(self, message_id: str, body: str, reason: str) -> None:
        """Keep a message that the DLQ refused, so that it is never dropped."""
        ...


class BatchSpan(Protocol):
    def outcomes(self, results: Sequence[Result]) -> None:
        """One event per settled message: its outcome and what it was about."""
        ...


class BatchSpans(Protocol):
    """The tracing port: the `process` span of each batch, current while the batch runs, so
    that its statements, its acknowledgement and its log lines are its children. Implemented
    in adapters/spans.py, on OpenTelemetry and as a no-op (tracing off) that the composition
    root injects: the consuming loop never asks which."""

    def process(self, messages: Sequence[Message]) -> AbstractContextManager[BatchSpan]: ...


Receive = Callable[[int, int], Awaitable[list[Message]]]


class MessageQueue(Protocol):
    async def receive(self, max_messages: int = 10, wait_seconds: int = 20) -> list[Message]: ...

    def receiver(self) -> Receive:
        """One poller's receive: (max_messages, wait_seconds). Each poller takes its own, so
        that a FIFO queue's retried receive can carry its own attempt id."""
        ...

    async def delete(self, messages: Sequence[Message]) -> list[tuple[Message, str]]: ...

    async def change_visibility(
        self, messages: Sequence[Message], timeouts: Sequence[int]
    ) -> list[tuple[Message, str]]: ...

    async def send_to_dlq(self, message: Message, reason: str) -> bool: ...


# The way out (issue 14): what the outbox relay (service/relay.py) needs.
PUBLISH_BATCH_MAX = 10  # the most PublishBatch takes in one call


@dataclass(frozen=True, slots=True)
class PendingRow:
    id: UUID
    order_id: UUID
    type: str
    sequence: int
    payload: str  # the message body, as stored
    created_at: datetime
    traceparent: str | None = None  # of the batch that wrote the row, when it was traced
    customer_id: str | None = None  # the order's: a fair downstream queue's tenant


@dataclass(frozen=True, slots=True)
class PublishResult:
    """One PublishBatch's answer: the rows SNS accepted, those it refused for good (for what
    they hold: such a row is parked, with SNS's reason) and why the others failed (they are
    sent again, their orders wait)."""

    accepted: frozenset[UUID]
    refused: Mapping[UUID, str] = field(default_factory=dict)
    failure: TopicUnavailable | None = None


@dataclass(frozen=True, slots=True)
class OutboxGauges:
    """Measured from the table: the relay's lag and what is parked."""

    oldest_unpublished_seconds: float  # of rows the relay can publish (0: none waiting)
    parked: int  # rows SNS refused for good, waiting for an operator


class Claim(Protocol):
    rows: Sequence[PendingRow]  # every unpublished row of the claimed orders, by order, sequence
    full: bool  # as many orders as asked for: more may be waiting

    async def mark_published(self, ids: Sequence[UUID]) -> None:
        """Published rows kept, marked, until the retention deletes them."""
        ...

    async def delete_published(self, ids: Sequence[UUID]) -> None:
        """Published rows deleted at once (no retention)."""
        ...

    async def park(self, refused: Mapping[UUID, str]) -> None:
        """Parks rows SNS refused for good: their orders are claimed no more until an
        operator retries them (`order-service outbox retry`)."""
        ...


class Outbox(Protocol):
    def claim(self, max_orders: int) -> AbstractAsyncContextManager[Claim]: ...

    async def delete_published(self, older_than_seconds: float) -> int: ...

    async def check_schema(self) -> None:
        """Raises StoreUnavailable (kind in service/pause.py's SCHEMA_FAULTS) when this build
        may not write to the schema."""
        ...

    async def catch_up(self, max_orders: int) -> int:
        """Writes the status events that changes applied without the outbox lack (an older
        build's); how many."""
        ...

    async def gauges(self) -> OutboxGauges: ...


class Topic(Protocol):
    async def publish(self, rows: Sequence[PendingRow]) -> PublishResult: ...
