"""Status events built from the order's new state: numbered on from each order's counter."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from order_service.domain.batch import AppliedChange
from order_service.domain.events import Cancelled, EventType, Line, OrderEvent, Placed, Status
from order_service.domain.lifecycle import OrderState
from order_service.domain.status_events import last_sequences_after, outbox_rows

WHEN = datetime(2026, 11, 26, 9, 15, tzinfo=UTC)


def change(order_id: uuid.UUID, status: Status, cancel_reason: str | None = None) -> AppliedChange:
    placed = Placed("c", "EUR", (Line("A", 1, Decimal("2.50")),), Decimal("2.50"))
    data = placed if status is Status.PLACED else Cancelled(cancel_reason or "")
    kind = EventType.PLACED if status is Status.PLACED else EventType.CANCELLED
    state = OrderState(order_id, status, "d", "EUR", Decimal("2.5"), cancel_reason=cancel_reason)
    return AppliedChange(OrderEvent(uuid.uuid4(), kind, WHEN, order_id, data), state)


def test_rows_number_on_from_each_orders_last_sequence_in_decided_order():
    a, b = uuid.uuid4(), uuid.uuid4()
    changes = [
        change(a, Status.PLACED),
        change(b, Status.CANCELLED, "late"),
        change(a, Status.CANCELLED, "x"),
    ]
    rows = outbox_rows(changes, {b: 4})
    assert [(r.order_id, r.sequence) for r in rows] == [(a, 1), (b, 5), (a, 2)]
    assert last_sequences_after(changes, {b: 4}) == {a: 2, b: 5}
    assert len({r.id for r in rows}) == 3


def test_the_payload_is_the_whole_state_with_the_ids_a_consumer_needs():
    order = uuid.uuid4()
    (row,) = outbox_rows([change(order, Status.CANCELLED, "customer request")], {order: 1})
    payload = row.payload
    assert payload == {
        "schema_version": 1,
        "id": str(row.id),
        "type": "order.status.cancelled",
        "order_id": str(order),
        "sequence": 2,
        "status": "CANCELLED",
        "currency": "EUR",
        "total_amount": "2.50",
        "payment": None,
        "shipment": None,
        "cancel_reason": "customer request",
        "event_id": payload["event_id"],
        "event_type": "order.cancelled",
        "occurred_at": "2026-11-26T09:15:00Z",
    }
    assert row.type == payload["type"] and '"sequence":2' in row.payload_json()
