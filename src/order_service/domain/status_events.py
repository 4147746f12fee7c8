"""The order status events other systems receive: one per applied event, built from the order's
new state (pure). The payload is the whole message body: a consumer needs nothing else, and
orders an order's events by `sequence` (1, 2, 3 ... without gaps), deduplicating by `id`.
docs/contract/ORDER_STATUS_EVENTS.md and order-status-event.schema.json describe it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from order_service.domain.batch import AppliedChange
from order_service.domain.events import EventType, Status
from order_service.domain.lifecycle import OrderState

STATUS_EVENT_SCHEMA_VERSION = 1
AGGREGATE_TYPE = "order"
# One type per status reached, namespaced apart from the incoming `order.paid` and so on: an
# SNS filter policy on `type` selects the changes a subscriber cares about.
STATUS_EVENT_TYPES = {status: f"order.status.{status.value.lower()}" for status in Status}


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: UUID
    order_id: UUID
    type: str
    sequence: int
    payload: dict[str, Any]

    def payload_json(self) -> str:
        return json.dumps(self.payload, separators=(",", ":"), sort_keys=True)


def status_payload(row_id: UUID, sequence: int, change: AppliedChange) -> dict[str, Any]:
    event = change.event
    return payload_of(
        row_id, sequence, change.state, event.event_id, event.event_type, event.occurred_at
    )


def payload_of(
    row_id: UUID,
    sequence: int,
    state: OrderState,
    event_id: UUID,
    event_type: EventType,
    occurred_at: datetime,
) -> dict[str, Any]:
    """The status event of one applied event: the order's state right after it."""
    return {
        "schema_version": STATUS_EVENT_SCHEMA_VERSION,
        "id": str(row_id),
        "type": STATUS_EVENT_TYPES[state.status],
        "order_id": str(state.order_id),
        "sequence": sequence,
        "status": state.status.value,
        "currency": state.currency,
        "total_amount": _money(state.total_amount),
        "payment": _payment(state),
        "shipment": (
            {"carrier": state.shipment.carrier, "tracking_number": state.shipment.tracking_number}
            if state.shipment
            else None
        ),
        "cancel_reason": state.cancel_reason,
        "event_id": str(event_id),
        "event_type": event_type.value,
        "occurred_at": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


def outbox_rows(applied: Iterable[AppliedChange]) -> list[OutboxRow]:
    """One row per applied change of a plan, with the sequence the planner numbered it with
    (domain/batch.py). Built only when the outbox is written: a row is a payload and an id,
    nothing is decided here."""
    rows = []
    for change in applied:
        row_id = uuid.uuid4()
        rows.append(
            OutboxRow(
                row_id,
                change.state.order_id,
                STATUS_EVENT_TYPES[change.state.status],
                change.sequence,
                status_payload(row_id, change.sequence, change),
            )
        )
    return rows


def _money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _payment(state: OrderState) -> dict[str, str] | None:
    if state.payment is None:
        return None
    return {
        "payment_id": state.payment.payment_id,
        "amount": _money(state.payment.amount),
        "currency": state.payment.currency,
    }
