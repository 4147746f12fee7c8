"""The order events of the message contract, as immutable values."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID


class EventType(StrEnum):
    PLACED = "order.placed"
    PAID = "order.paid"
    SHIPPED = "order.shipped"
    CANCELLED = "order.cancelled"


class Status(StrEnum):
    PLACED = "PLACED"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class Placed:
    customer_id: str
    currency: str
    items: tuple[Line, ...]
    total_amount: Decimal

    def digest(self) -> str:
        """Fingerprint of what decides "same content" (amounts compared as decimals)."""
        lines = ";".join(f"{i.sku}|{i.quantity}|{i.unit_price:.2f}" for i in self.items)
        text = f"{self.customer_id}\n{self.currency}\n{lines}\n{self.total_amount:.2f}"
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Paid:
    payment_id: str
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Shipped:
    carrier: str
    tracking_number: str


@dataclass(frozen=True, slots=True)
class Cancelled:
    reason: str


EventData = Placed | Paid | Shipped | Cancelled


@dataclass(frozen=True, slots=True)
class OrderEvent:
    event_id: UUID
    event_type: EventType
    occurred_at: datetime
    order_id: UUID
    data: EventData
