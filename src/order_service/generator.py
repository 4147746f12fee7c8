"""A synthetic stream of order events: lifecycles with duplicates, out-of-order delivery and a
few invalid bodies. Deterministic for a seed. Used by `send`, `dev`, the tests and benchmarks.

Every generated lifecycle ends in a status that does not depend on delivery order (an order is
never both shipped and cancelled), so a test can check each order's final status whatever order
the queue delivers in.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

INVALID_BODIES = (
    "not json at all",
    '{"schema_version": 1, "event_id": "x"}',
    '{"a": 1, "a": 2}',
    "[1, 2, 3]",
    '{"schema_version": NaN}',
)


@dataclass
class EventStream:
    bodies: list[str] = field(default_factory=list)
    final_status: dict[str, str] = field(default_factory=dict)  # order_id -> status
    line_counts: dict[str, int] = field(default_factory=dict)  # order_id -> lines
    event_ids: set[str] = field(default_factory=set)  # distinct valid events
    invalid: int = 0
    duplicates: int = 0


def _event(
    rng: random.Random, kind: str, order_id: str, at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "event_type": f"order.{kind}",
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
        "order_id": order_id,
        "data": data,
    }


def lifecycle(rng: random.Random, start: datetime, lines: int = 3) -> list[dict[str, Any]]:
    """One order's events in causal order: placed, then maybe paid, shipped or cancelled."""
    order_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    prices = [
        (f"SKU-{rng.randrange(1000)}", rng.randint(1, 5), Decimal(rng.randrange(100, 10000)) / 100)
        for _ in range(lines)
    ]
    items = [{"sku": s, "quantity": q, "unit_price": f"{p:.2f}"} for s, q, p in prices]
    total = sum((q * p for _, q, p in prices), Decimal(0))
    currency = rng.choice(("EUR", "USD", "GBP"))
    events = [
        _event(
            rng,
            "placed",
            order_id,
            start,
            {
                "customer_id": f"cust-{rng.randrange(10_000)}",
                "currency": currency,
                "items": items,
                "total_amount": f"{total:.2f}",
            },
        )
    ]
    roll = rng.random()
    if roll < 0.8:
        events.append(
            _event(
                rng,
                "paid",
                order_id,
                start + timedelta(seconds=5),
                {
                    "payment_id": f"pay-{rng.getrandbits(40):x}",
                    "amount": f"{total:.2f}",
                    "currency": currency,
                },
            )
        )
        if roll < 0.5:
            events.append(
                _event(
                    rng,
                    "shipped",
                    order_id,
                    start + timedelta(hours=1),
                    {
                        "carrier": rng.choice(("DHL", "UPS", "La Poste")),
                        "tracking_number": f"TRK{rng.getrandbits(48):X}",
                    },
                )
            )
        elif roll < 0.6:
            events.append(
                _event(
                    rng,
                    "cancelled",
                    order_id,
                    start + timedelta(minutes=9),
                    {"reason": "customer request"},
                )
            )
    elif roll < 0.9:
        events.append(
            _event(
                rng, "cancelled", order_id, start + timedelta(minutes=3), {"reason": "out of stock"}
            )
        )
    return events


_STATUS = {
    "order.placed": "PLACED",
    "order.paid": "PAID",
    "order.shipped": "SHIPPED",
    "order.cancelled": "CANCELLED",
}


def generate(
    orders: int,
    *,
    seed: int = 0,
    duplicate_rate: float = 0.05,
    out_of_order_rate: float = 0.1,
    invalid_rate: float = 0.01,
    lines: int = 3,
) -> EventStream:
    rng = random.Random(seed)
    stream = EventStream()
    start = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    events: list[dict[str, Any]] = []
    for n in range(orders):
        order_events = lifecycle(rng, start + timedelta(seconds=n), lines)
        order_id = order_events[0]["order_id"]
        stream.final_status[order_id] = _STATUS[order_events[-1]["event_type"]]
        stream.line_counts[order_id] = lines
        events.extend(order_events)
    stream.event_ids = {e["event_id"] for e in events}
    bodies = [json.dumps(e, separators=(",", ":")) for e in events]
    # Out of order: move a share of events earlier by a few places.
    for i in range(len(bodies)):
        if i > 0 and rng.random() < out_of_order_rate:
            j = max(0, i - rng.randint(1, 6))
            bodies.insert(j, bodies.pop(i))
    result: list[str] = []
    for body in bodies:
        result.append(body)
        if rng.random() < duplicate_rate:
            result.append(body)
            stream.duplicates += 1
        if rng.random() < invalid_rate:
            result.append(rng.choice(INVALID_BODIES))
            stream.invalid += 1
    stream.bodies = result
    return stream
