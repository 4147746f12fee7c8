"""The catch-up of changes applied without the outbox (domain/status_catch_up.py): the state
each late status event reports is the state the lifecycle itself reached after that event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from order_service.domain.events import (
    Cancelled,
    EventType,
    Line,
    OrderEvent,
    Paid,
    Placed,
    Shipped,
)
from order_service.domain.lifecycle import OrderState, Outcome, decide
from order_service.domain.status_catch_up import AppliedEvent, plan_catch_up, state_after
from order_service.domain.status_events import payload_of

ORDER = uuid.uuid4()
T0 = datetime(2026, 12, 7, tzinfo=UTC)
DATA = {
    EventType.PLACED: Placed("c-1", "EUR", (Line("SKU", 2, Decimal("5.00")),), Decimal("10.00")),
    EventType.PAID: Paid("pay-1", Decimal("10.00"), "EUR"),
    EventType.SHIPPED: Shipped("DHL", "TRACK-1"),
    EventType.CANCELLED: Cancelled("customer asked"),
}
PATHS = [
    [EventType.PLACED],
    [EventType.PLACED, EventType.PAID],
    [EventType.PLACED, EventType.PAID, EventType.SHIPPED],
    [EventType.PLACED, EventType.CANCELLED],
    [EventType.PLACED, EventType.PAID, EventType.CANCELLED],
]


def events_of(path: list[EventType]) -> list[OrderEvent]:
    return [
        OrderEvent(uuid.uuid4(), t, T0 + timedelta(minutes=i), ORDER, DATA[t])
        for i, t in enumerate(path)
    ]


def replay(events: list[OrderEvent]) -> list[OrderState]:
    """The lifecycle's own state after each event."""
    states: list[OrderState] = []
    for event in events:
        decision = decide(event, states[-1] if states else None)
        assert decision.outcome is Outcome.APPLIED and decision.state is not None
        states.append(decision.state)
    return states


def applied(events: list[OrderEvent]) -> list[AppliedEvent]:
    return [AppliedEvent(e.event_id, e.event_type, e.occurred_at) for e in events]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: "-".join(t.value for t in p))
def test_the_state_after_each_event_is_rebuilt_from_the_state_now(path):
    states = replay(events_of(path))
    for event_type, state in zip(path, states, strict=True):
        assert state_after(states[-1], event_type) == state


@pytest.mark.parametrize("path", PATHS, ids=lambda p: "-".join(t.value for t in p))
def test_every_change_applied_without_the_outbox_gets_its_event_numbered_from_one(path):
    events = events_of(path)
    states = replay(events)
    rows = plan_catch_up(states[-1], 0, applied(events), published_event_ids=())
    assert [r.sequence for r in rows] == list(range(1, len(path) + 1))
    for row, event, state in zip(rows, events, states, strict=True):
        assert row.order_id == ORDER
        expected = payload_of(row.id, row.sequence, state, *_event_fields(event))
        assert row.payload == expected


def test_only_the_events_without_a_status_event_are_caught_up_after_the_last_sequence():
    # The new build published placed (1) and shipped (2); an old build applied paid between.
    events = events_of([EventType.PLACED, EventType.PAID, EventType.SHIPPED])
    states = replay(events)
    published = {events[0].event_id, events[2].event_id}
    rows = plan_catch_up(states[-1], 2, applied(events), published)
    assert len(rows) == 1
    assert rows[0].sequence == 3
    assert rows[0].payload["event_id"] == str(events[1].event_id)
    assert rows[0].payload["status"] == "PAID" and rows[0].type == "order.status.paid"
    assert rows[0].payload["shipment"] is None


def test_nothing_when_every_applied_event_was_counted():
    events = events_of([EventType.PLACED, EventType.PAID])
    states = replay(events)
    assert plan_catch_up(states[-1], 2, applied(events), published_event_ids=()) == []
    assert plan_catch_up(states[-1], 3, applied(events), published_event_ids=()) == []


def test_the_most_recent_unpublished_when_retention_deleted_published_rows():
    # Placed was published and its row deleted by retention since; paid and shipped are new.
    events = events_of([EventType.PLACED, EventType.PAID, EventType.SHIPPED])
    states = replay(events)
    rows = plan_catch_up(states[-1], 1, applied(events), published_event_ids=())
    assert [r.payload["event_type"] for r in rows] == ["order.paid", "order.shipped"]
    assert [r.sequence for r in rows] == [2, 3]


def _event_fields(event: OrderEvent) -> tuple[uuid.UUID, EventType, datetime]:
    return event.event_id, event.event_type, event.occurred_at


@pytest.mark.parametrize("path", PATHS, ids=lambda p: "-".join(t.value for t in p))
def test_the_events_are_numbered_in_the_lifecycles_order_whatever_order_they_come_in(path):
    # Neither order_events' timestamps nor its ids say which event an older build applied
    # first: the lifecycle does.
    events = events_of(path)
    states = replay(events)
    rows = plan_catch_up(states[-1], 0, applied(events)[::-1], published_event_ids=())
    assert [r.payload["event_type"] for r in rows] == [t.value for t in path]
