"""Status events built from the order's new state: numbered on from each order's counter (by
the planner, domain/batch.py), one row per applied change."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from order_service.domain.batch import AppliedChange, Snapshot, plan_batch
from order_service.domain.events import Cancelled, EventType, Line, OrderEvent, Placed, Status
from order_service.domain.lifecycle import OrderState
from order_service.domain.status_events import outbox_rows

WHEN = datetime(2026, 11, 26, 9, 15, tzinfo=UTC)


PLACED = Placed("c", "EUR", (Line("A", 1, Decimal("2.50")),), Decimal("2.50"))


def event(order_id: uuid.UUID, status: Status, cancel_reason: str | None = None) -> OrderEvent:
    data = PLACED if status is Status.PLACED else Cancelled(cancel_reason or "")
    kind = EventType.PLACED if status is Status.PLACED else EventType.CANCELLED
    return OrderEvent(uuid.uuid4(), kind, WHEN, order_id, data)


def change(
    order_id: uuid.UUID, status: Status, cancel_reason: str | None = None, sequence: int = 1
) -> AppliedChange:
    state = OrderState(order_id, status, "d", "EUR", Decimal("2.5"), cancel_reason=cancel_reason)
    return AppliedChange(event(order_id, status, cancel_reason), state, sequence)


def test_rows_number_on_from_each_orders_last_sequence_in_decided_order():
    a, b = uuid.uuid4(), uuid.uuid4()
    events = [
        event(a, Status.PLACED),
        event(b, Status.CANCELLED, "late"),
        event(a, Status.CANCELLED, "x"),
    ]
    stored_b = OrderState(b, Status.PLACED, "d", "EUR", Decimal("2.5"))
    plan = plan_batch(events, Snapshot(frozenset(), {b: stored_b}, last_sequences={b: 4}))
    rows = outbox_rows(plan.applied)
    assert [(r.order_id, r.sequence) for r in rows] == [(a, 1), (b, 5), (a, 2)]
    assert [r.payload["sequence"] for r in rows] == [1, 5, 2]
    assert plan.last_sequences == {a: 2, b: 5}  # the orders' counters, computed once
    assert len({r.id for r in rows}) == 3


def test_an_order_without_a_counter_in_the_snapshot_starts_at_one():
    b = uuid.uuid4()
    stored_b = OrderState(b, Status.PLACED, "d", "EUR", Decimal("2.5"))
    plan = plan_batch([event(b, Status.CANCELLED, "x")], Snapshot(frozenset(), {b: stored_b}))
    assert [c.sequence for c in plan.applied] == [1] and plan.last_sequences == {b: 1}


def test_the_payload_is_the_whole_state_with_the_ids_a_consumer_needs():
    order = uuid.uuid4()
    (row,) = outbox_rows([change(order, Status.CANCELLED, "customer request", sequence=2)])
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
