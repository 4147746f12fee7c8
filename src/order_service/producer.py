"""What a producer sets beside each body (docs/contract/ORDER_EVENTS.md, "Queue types"): the
message group and, on a FIFO queue, the deduplication id. Pure; used by the SQS adapter's
`send` (`order-service send`, the demo producer of `make run`, the tests and benchmarks).

- FIFO queue: `MessageGroupId` = `order_id` (each order's events in the producer's order, the
  orders apart from one another) and `MessageDeduplicationId` = `event_id` (SQS drops a resend
  within 5 minutes).
- Standard queue: no group unless asked for; `customer` makes it a fair queue with the
  customer as the tenant, `order` one tenant per order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

GroupBy = Literal["order", "customer"]
# A body with no order_id (an invalid one) on a FIFO queue, which needs a group for each.
UNKEYED_GROUP = "unkeyed"


@dataclass(frozen=True, slots=True)
class SendKeys:
    group_id: str | None = None
    deduplication_id: str | None = None


def send_keys(bodies: Sequence[str], *, fifo: bool, group_by: GroupBy | None) -> list[SendKeys]:
    """One SendKeys per body. On a FIFO queue the group is always the order. A body that is
    not an event (no order_id) joins the group of the body before it, as the generator's
    invalid bodies follow an event of that order; its deduplication id is its content's hash.
    `customer`: the customer of the order's `order.placed` among these bodies (the others do
    not carry it), else the order."""
    if not fifo and group_by is None:
        return [SendKeys() for _ in bodies]  # nothing to set: no body is read
    fields = [_fields(b) for b in bodies]
    customers = {
        f["order_id"]: f["customer_id"] for f in fields if f.get("order_id") and f["customer_id"]
    }
    by: GroupBy | None = "order" if fifo else group_by
    keys: list[SendKeys] = []
    previous = UNKEYED_GROUP
    for body, f in zip(bodies, fields, strict=True):
        order_id = f.get("order_id")
        group = None
        if by is not None:
            group = order_id or previous
            if by == "customer" and order_id:
                group = customers.get(order_id, order_id)
            previous = group
        deduplication = None
        if fifo:
            deduplication = f.get("event_id") or _content_hash(body)
        keys.append(SendKeys(group, deduplication))
    return keys


def _fields(body: str) -> dict[str, str | None]:
    """order_id, event_id and a placed event's customer_id, when the body has them as text."""
    try:
        event: Any = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
        return {"customer_id": None}
    if not isinstance(event, dict):
        return {"customer_id": None}
    data = event.get("data")
    customer = data.get("customer_id") if isinstance(data, dict) else None

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) and 0 < len(value) <= 128 else None

    return {
        "order_id": text(event.get("order_id")),
        "event_id": text(event.get("event_id")),
        "customer_id": text(customer),
    }


def _content_hash(body: str) -> str:
    # surrogatepass: a lone surrogate (which SQS refuses anyway) must not crash the producer.
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
