"""The reference model: what the database must hold after a stream of message bodies, computed
without the worker's lifecycle code (only its parser decides which bodies are valid).

It holds for streams whose final status does not depend on delivery order, as the generator's
are: an order is cancelled if any cancellation arrives before a shipment could (the generator
never ships a cancelled order), else shipped, else paid, else placed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from order_service.domain.events import OrderEvent
from order_service.domain.parsing import parse_body

_RANK = {"order.placed": 0, "order.paid": 1, "order.shipped": 2, "order.cancelled": 3}
_STATUS = {0: "PLACED", 1: "PAID", 2: "SHIPPED", 3: "CANCELLED"}


@dataclass
class Expected:
    event_ids: set[str] = field(default_factory=set)  # distinct valid events
    status: dict[str, str] = field(default_factory=dict)  # order_id -> final status
    lines: dict[str, int] = field(default_factory=dict)  # order_id -> lines of its order
    invalid_bodies: list[str] = field(default_factory=list)  # one per message sent
    messages: int = 0


def expected_state(bodies: Iterable[str]) -> Expected:
    out = Expected()
    ranks: dict[str, int] = {}
    for text in bodies:
        out.messages += 1
        parsed = parse_body(text)
        if not isinstance(parsed, OrderEvent):
            out.invalid_bodies.append(text)
            continue
        out.event_ids.add(str(parsed.event_id))
        obj = json.loads(text)
        if obj.get("Type") == "Notification":
            obj = json.loads(obj["Message"])
        order_id = str(parsed.order_id)
        rank = _RANK[obj["event_type"]]
        if rank == 0:
            out.lines[order_id] = len(obj["data"]["items"])
            ranks.setdefault(order_id, 0)
        else:
            ranks[order_id] = max(ranks.get(order_id, 0), rank)
    # An order whose placed event never came stays absent (its other events are deferred to
    # the DLQ); the generator always sends it.
    out.status = {o: _STATUS[r] for o, r in ranks.items() if o in out.lines}
    return out
