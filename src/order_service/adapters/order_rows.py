"""An `orders` row as the lifecycle's OrderState (the columns of queries.sql's load_orders)."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import asyncpg

from order_service.domain.events import Paid, Shipped, Status
from order_service.domain.lifecycle import OrderState


def order_state(row: asyncpg.Record) -> OrderState:
    payment = (
        Paid(row["payment_id"], Decimal(row["paid_amount"]), row["paid_currency"])
        if row["payment_id"] is not None
        else None
    )
    shipment = Shipped(row["carrier"], row["tracking_number"]) if row["carrier"] else None
    order_id: UUID = row["order_id"]
    return OrderState(
        order_id=order_id,
        status=Status(row["status"]),
        placed_digest=row["placed_digest"],
        currency=row["currency"],
        total_amount=row["total_amount"],
        payment=payment,
        shipment=shipment,
        cancel_reason=row["cancel_reason"],
    )
