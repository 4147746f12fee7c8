"""What the processing needs from the outside world, as protocols."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from order_service.domain.batch import Plan, Snapshot
from order_service.domain.events import OrderEvent

if TYPE_CHECKING:
    from order_service.service.processing import Message


class OrderStore(Protocol):
    async def run_batch(
        self, events: Sequence[OrderEvent], planner: Callable[[Snapshot], Plan]
    ) -> Plan:
        """In one transaction: lock the events' orders and ids, read a snapshot, let
        `planner` decide, write the plan and commit. Raises StoreUnavailable or StoreError."""
        ...

    async def quarantine(self, message_id: str, body: str, reason: str) -> None:
        """Keep a message that the DLQ refused, so that it is never dropped."""
        ...


class MessageQueue(Protocol):
    async def receive(self, max_messages: int = 10, wait_seconds: int = 20) -> list[Message]: ...

    async def delete(self, messages: Sequence[Message]) -> list[tuple[Message, str]]: ...

    async def change_visibility(
        self, messages: Sequence[Message], timeouts: Sequence[int]
    ) -> list[tuple[Message, str]]: ...

    async def send_to_dlq(self, message: Message, reason: str) -> bool: ...
