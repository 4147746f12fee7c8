"""Batches of queue messages for the tests that drive the store directly (no queue): one
`Message` per event, and whole order lifecycles written through the batch path."""

from __future__ import annotations

import uuid
from typing import Any

from order_service.service.ports import Message, OrderStore
from order_service.service.processing import BatchProcessor
from tests.factories import body, cancelled, paid, placed, shipped


def messages(*events: dict[str, Any]) -> list[Message]:
    """One message per event, as a receive would hand them over (first delivery)."""
    return [Message(str(uuid.uuid4()), f"rh-{i}", body(e)) for i, e in enumerate(events)]


async def lifecycles(store: OrderStore, n: int) -> list[str]:
    """`n` orders placed, paid and shipped, the first three then cancelled (rejected: a
    shipped order cannot be): 3n applied events, so 3n outbox rows when the outbox is on."""
    orders = [str(uuid.uuid4()) for _ in range(n)]
    for step in (placed, paid, shipped):
        await BatchProcessor(store).process(messages(*(step(o) for o in orders)))
    await BatchProcessor(store).process(messages(*(cancelled(o) for o in orders[:3])))
    return orders
