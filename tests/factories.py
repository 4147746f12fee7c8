"""Building order events for tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

ORDER = "6d1f2a7c-3b4e-4f5a-8c9d-0e1f2a3b4c5d"


def placed(order_id: str = ORDER, **data: Any) -> dict[str, Any]:
    body = {
        "customer_id": "cust-1042",
        "currency": "EUR",
        "items": [
            {"sku": "BOOK-123", "quantity": 2, "unit_price": "12.50"},
            {"sku": "PEN-9", "quantity": 1, "unit_price": "3.99"},
        ],
        "total_amount": "28.99",
    }
    return event("order.placed", order_id, {**body, **data})


def paid(order_id: str = ORDER, **data: Any) -> dict[str, Any]:
    return event(
        "order.paid",
        order_id,
        {"payment_id": "pay-1", "amount": "28.99", "currency": "EUR", **data},
    )


def shipped(order_id: str = ORDER, **data: Any) -> dict[str, Any]:
    return event("order.shipped", order_id, {"carrier": "DHL", "tracking_number": "TRK-1", **data})


def cancelled(order_id: str = ORDER, **data: Any) -> dict[str, Any]:
    return event("order.cancelled", order_id, {"reason": "customer request", **data})


def event(event_type: str, order_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": "2026-11-26T09:15:00Z",
        "order_id": order_id,
        "data": data,
    }


def body(obj: Any) -> str:
    return json.dumps(obj)
