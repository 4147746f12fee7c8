"""Status events for changes that a build without the outbox applied (pure).

A build from before the outbox (before migration 0003), still running during a rollout or
rolled back to, applies events without writing outbox rows or advancing `orders.last_sequence`.
Migration 0007's triggers note each order it changes; the relay then calls `plan_catch_up` for
each such order, under the order's lock, and writes what it returns: one status event per
applied event that has none, numbered on from the order's last sequence, so that a consumer
sees no gap and no change goes unpublished. They arrive late: after any later change that a
newer build published at once (docs/contract/ORDER_STATUS_EVENTS.md says so).

Which applied events have no status event: `last_sequence` counts the applied events every
build since 0003 published, so `applied - last_sequence` are missing. They are the applied
events whose id no outbox row carries; when published rows are gone (deleted when published,
the default, or by a retention the catch-up came later than), the most recent of those are
taken.

The state each one reports is the order's state right after that event, rebuilt from the
order's current state: the lifecycle sets each field once, by one event type (payment by
order.paid, shipment by order.shipped, cancel_reason by order.cancelled), and a later event
never changes an earlier one's field, so the state after an event is the current state less
the fields of the stages after it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from order_service.domain.events import EventType, Status
from order_service.domain.lifecycle import OrderState
from order_service.domain.status_events import STATUS_EVENT_TYPES, OutboxRow, payload_of

# The order the lifecycle applies an order's events in: each type at most once per order, and
# shipped and cancelled exclude each other. Neither order_events' timestamps (a batch's start,
# the producer's clock) nor its ids say which an older build applied first; this does.
LIFECYCLE_RANK = {
    EventType.PLACED: 0,
    EventType.PAID: 1,
    EventType.SHIPPED: 2,
    EventType.CANCELLED: 2,
}
STATUS_AFTER = {
    EventType.PLACED: Status.PLACED,
    EventType.PAID: Status.PAID,
    EventType.SHIPPED: Status.SHIPPED,
    EventType.CANCELLED: Status.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class AppliedEvent:
    """One row of order_events with outcome 'applied'."""

    event_id: UUID
    event_type: EventType
    occurred_at: datetime


def state_after(current: OrderState, event_type: EventType) -> OrderState:
    """The order's state right after an applied event of `event_type`, from its state now."""
    status = STATUS_AFTER[event_type]
    return replace(
        current,
        status=status,
        # Paid before it was shipped or cancelled (the lifecycle allows no payment after).
        payment=current.payment if status is not Status.PLACED else None,
        shipment=current.shipment if status is Status.SHIPPED else None,
        cancel_reason=current.cancel_reason if status is Status.CANCELLED else None,
    )


def plan_catch_up(
    current: OrderState,
    last_sequence: int,
    applied: Sequence[AppliedEvent],
    published_event_ids: Collection[UUID],
) -> list[OutboxRow]:
    """The status events an order lacks (none when every applied event has one). `applied`:
    the order's applied events, in any order (they are put in the lifecycle's);
    `published_event_ids`: the event ids of the order's outbox rows still in the table."""
    missing = len(applied) - last_sequence
    if missing <= 0:
        return []
    in_order = sorted(applied, key=lambda e: LIFECYCLE_RANK[e.event_type])
    unpublished = [e for e in in_order if e.event_id not in published_event_ids]
    rows = []
    for sequence, event in enumerate(unpublished[-missing:], start=last_sequence + 1):
        state = state_after(current, event.event_type)
        row_id = uuid.uuid4()
        payload = payload_of(
            row_id, sequence, state, event.event_id, event.event_type, event.occurred_at
        )
        rows.append(
            OutboxRow(row_id, current.order_id, STATUS_EVENT_TYPES[state.status], sequence, payload)
        )
    return rows
