"""The status events' schema: its examples pass (one per status), what the code builds passes,
and what a consumer must be able to rely on is refused when missing."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import jsonschema
import pytest

from order_service.domain.batch import AppliedChange
from order_service.domain.events import (
    Cancelled,
    EventType,
    Line,
    OrderEvent,
    Paid,
    Placed,
    Shipped,
    Status,
)
from order_service.domain.lifecycle import OrderState
from order_service.domain.status_events import STATUS_EVENT_TYPES, outbox_rows
from tests.support.status_contract import examples, validate_status_event


def test_one_example_per_status_and_each_validates():
    found = examples()
    assert set(found) == set(STATUS_EVENT_TYPES.values())
    for name, body in found.items():
        validate_status_event(body)
        assert body["type"] == name == STATUS_EVENT_TYPES[Status(body["status"])]


def lifecycle_payloads() -> list[dict]:
    order = uuid.uuid4()
    when = datetime(2026, 11, 26, 11, 15, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    placed = Placed("c", "JPY", (Line("A", 3, Decimal("0.10")),), Decimal("0.30"))
    state = OrderState(order, Status.PLACED, "d", "JPY", Decimal("0.3"))
    paid = replace(state, status=Status.PAID, payment=Paid("p", Decimal("0.30"), "JPY"))
    steps = [
        (EventType.PLACED, placed, state),
        (EventType.PAID, paid.payment, paid),
        (
            EventType.SHIPPED,
            Shipped("UPS", "1Z"),
            replace(paid, status=Status.SHIPPED, shipment=Shipped("UPS", "1Z")),
        ),
    ]
    changes = [
        AppliedChange(OrderEvent(uuid.uuid4(), kind, when, order, data), after, sequence)  # type: ignore[arg-type]
        for sequence, (kind, data, after) in enumerate(steps, start=1)
    ]
    cancelled = replace(paid, status=Status.CANCELLED, cancel_reason="fraud")
    changes.append(
        AppliedChange(
            OrderEvent(uuid.uuid4(), EventType.CANCELLED, when, order, Cancelled("fraud")),
            cancelled,
            len(changes) + 1,
        )
    )
    return [row.payload for row in outbox_rows(changes)]


def test_what_the_code_builds_validates_including_offsets_and_microseconds():
    payloads = lifecycle_payloads()
    for payload in payloads:
        validate_status_event(payload)
    assert payloads[0]["occurred_at"] == "2026-11-26T09:15:00.123456Z"


@pytest.mark.parametrize(
    "spoil",
    [
        lambda b: b.pop("sequence"),
        lambda b: b.update(sequence=0),
        lambda b: b.update(status="paid"),
        lambda b: b.update(total_amount=28.99),
        lambda b: b.update(payment=None),  # a PAID order has its payment
        lambda b: b.update(type="order.status.shipped"),
        lambda b: b.update(extra=1),
        lambda b: b.update(occurred_at="2026-11-26T09:15:00+02:00"),
    ],
)
def test_a_consumer_can_rely_on_what_the_schema_refuses(spoil):
    body = examples()["order.status.paid"]
    spoil(body)
    with pytest.raises(jsonschema.ValidationError):
        validate_status_event(body)
