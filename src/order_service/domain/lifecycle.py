"""The order lifecycle: what one event does to one order (the contract's table, in order)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from order_service.domain.events import Cancelled, OrderEvent, Paid, Placed, Shipped, Status


class Outcome(StrEnum):
    """What became of one message, and so what the consumer does with it (delete, defer, copy
    to the DLQ, or leave for redelivery).

    APPLIED, DUPLICATE, REJECTED, DEFERRED are the lifecycle's, decided in this module
    (`decide`; an event id already recorded is a DUPLICATE in `domain/batch.py`). INVALID and
    TRANSIENT are not about the order: `service/processing.py` decides them, INVALID for a body
    that does not parse or that the database refuses on its own, TRANSIENT for a database that
    is unavailable (the message is left alone and comes back).
    """

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    DEFERRED = "deferred"
    INVALID = "invalid"
    TRANSIENT = "transient"


@dataclass(frozen=True, slots=True)
class OrderState:
    """What the lifecycle needs to know of a stored order."""

    order_id: UUID
    status: Status
    placed_digest: str
    currency: str
    total_amount: Decimal
    payment: Paid | None = None
    shipment: Shipped | None = None
    cancel_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason: str | None = None
    state: OrderState | None = None  # the order after the event (set when applied)


def _applied(state: OrderState) -> Decision:
    return Decision(Outcome.APPLIED, state=state)


def decide(event: OrderEvent, order: OrderState | None) -> Decision:
    """Outcome of an event whose event_id is not recorded yet (duplicates by id are decided
    before this, by the batch)."""
    data = event.data
    if isinstance(data, Placed):
        if order is None:
            return _applied(
                OrderState(
                    order_id=event.order_id,
                    status=Status.PLACED,
                    placed_digest=data.digest(),
                    currency=data.currency,
                    total_amount=data.total_amount,
                )
            )
        if order.placed_digest == data.digest():
            return Decision(Outcome.DUPLICATE)
        return Decision(Outcome.REJECTED, "conflict: order already placed with different content")
    if order is None:
        return Decision(Outcome.DEFERRED, "order not placed yet")
    if isinstance(data, Cancelled):
        if order.status is Status.CANCELLED:
            return Decision(Outcome.DUPLICATE)
        if order.status is Status.SHIPPED:
            return Decision(Outcome.REJECTED, "order already shipped")
        return _applied(replace(order, status=Status.CANCELLED, cancel_reason=data.reason))
    if order.status is Status.CANCELLED:
        return Decision(Outcome.REJECTED, "order is cancelled")
    if isinstance(data, Paid):
        return _decide_paid(data, order)
    return _decide_shipped(data, order)


def _decide_paid(data: Paid, order: OrderState) -> Decision:
    if order.status is Status.PLACED:
        if data.amount == order.total_amount and data.currency == order.currency:
            return _applied(replace(order, status=Status.PAID, payment=data))
        return Decision(Outcome.REJECTED, "payment amount or currency differs from the order")
    if order.payment == data:
        return Decision(Outcome.DUPLICATE)
    return Decision(Outcome.REJECTED, "order already paid by another payment")


def _decide_shipped(data: Shipped, order: OrderState) -> Decision:
    if order.status is Status.PAID:
        return _applied(replace(order, status=Status.SHIPPED, shipment=data))
    if order.status is Status.PLACED:
        return Decision(Outcome.DEFERRED, "order not paid yet")
    if order.shipment == data:
        return Decision(Outcome.DUPLICATE)
    return Decision(Outcome.REJECTED, "order already shipped with another shipment")
