"""In-memory stand-ins for the ports, for unit tests of the consuming loop and fault injection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from order_service.bootstrap import consumer_config
from order_service.domain.batch import Plan, Snapshot
from order_service.domain.events import OrderEvent
from order_service.domain.lifecycle import OrderState
from order_service.errors import StoreUnavailable
from order_service.service.consumer import ConsumerConfig
from order_service.service.ports import Message
from order_service.settings import Settings


class FakeQueue:
    def __init__(self, messages: Sequence[Message] = (), *, dlq_accepts: bool = True) -> None:
        self.available = list(messages)
        self.deleted: list[Message] = []
        self.visibility: list[tuple[str, int]] = []
        self.dead_letters: list[tuple[Message, str]] = []
        self.dlq_accepts = dlq_accepts
        self.refuse_delete: set[str] = set()

    async def receive(self, max_messages: int = 10, wait_seconds: int = 20) -> list[Message]:
        if not self.available:
            await asyncio.sleep(0.01)
            return []
        taken, self.available = self.available[:max_messages], self.available[max_messages:]
        return taken

    def receiver(self):  # no attempt ids: the SQS adapter's concern
        return self.receive

    async def delete(self, messages: Sequence[Message]) -> list[tuple[Message, str]]:
        failed = [
            (m, "ReceiptHandleIsInvalid") for m in messages if m.message_id in self.refuse_delete
        ]
        self.deleted += [m for m in messages if m.message_id not in self.refuse_delete]
        return failed

    async def change_visibility(
        self, messages: Sequence[Message], timeouts: Sequence[int]
    ) -> list[tuple[Message, str]]:
        self.visibility += [(m.message_id, t) for m, t in zip(messages, timeouts, strict=True)]
        return []

    async def send_to_dlq(self, message: Message, reason: str) -> bool:
        if self.dlq_accepts:
            self.dead_letters.append((message, reason))
        return self.dlq_accepts


class FakeStore:
    """Keeps orders in a dict; can be slow or down, to inject faults."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.orders: dict = {}
        self.recorded: set = set()
        self.quarantined: list[tuple[str, str, str]] = []
        self.delay = delay
        self.down = False
        self.probes = 0  # readiness probes answered or refused: the worker has been up that long
        self.batches_started = 0

    async def run_batch(
        self, events: Sequence[OrderEvent], planner: Callable[[Snapshot], Plan]
    ) -> Plan:
        if self.down:
            raise StoreUnavailable("database down (fake)")
        self.batches_started += 1
        await asyncio.sleep(self.delay)
        plan = planner(Snapshot(frozenset(self.recorded), dict(self.orders)))
        states: list[OrderState] = [n.state for n in plan.new_orders] + plan.changed_orders
        self.orders.update({s.order_id: s for s in states})
        self.recorded |= {r.event.event_id for r in plan.records}
        return plan

    async def quarantine(self, message_id: str, body: str, reason: str) -> None:
        self.quarantined.append((message_id, body, reason))

    async def ready(self) -> None:
        self.probes += 1
        if self.down:
            raise StoreUnavailable("database down (fake)")

    probe = ready


def make_config(
    *,
    visibility_timeout: int | None = None,
    retry_base_seconds: float | None = None,
    retry_max_seconds: float | None = None,
    max_receive_count: int | None = None,
    **overrides: Any,
) -> ConsumerConfig:
    """The consuming loop's config as the settings' defaults give it, with test overrides."""
    config = consumer_config(Settings.model_construct())
    policy = config.redelivery
    changes = {
        "visibility_timeout": visibility_timeout,
        "retry_base_seconds": retry_base_seconds,
        "retry_max_seconds": retry_max_seconds,
        "max_receive_count": max_receive_count,
    }
    policy = replace(policy, **{k: v for k, v in changes.items() if v is not None})
    return replace(config, redelivery=policy, **overrides)
