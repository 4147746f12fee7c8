"""Strict parsing of one message body into an OrderEvent, or the reason it is invalid.

Strict means: UTF-8 JSON of at most 256 KiB, one object, no duplicate keys, no NaN or
Infinity, no trailing data, no NUL or lone surrogate in any string; then the JSON Schema of
the contract, then the rules a schema cannot express (exact total, explicit offset).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any
from uuid import UUID

import fastjsonschema

from order_service.domain.events import (
    Cancelled,
    EventData,
    EventType,
    Line,
    OrderEvent,
    Paid,
    Placed,
    Shipped,
)

MAX_BODY_BYTES = 256 * 1024
_FORBIDDEN_CHARS = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Invalid:
    """A body that can never be processed; `reason` is short enough for a message attribute."""

    reason: str


def _strict_patterns(node: Any) -> Any:
    # Python's `$` also matches before a trailing newline; JSON Schema means end of string.
    if isinstance(node, dict):
        return {
            k: (v[:-1] + r"\Z" if k == "pattern" and v.endswith("$") else _strict_patterns(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_strict_patterns(v) for v in node]
    return node


def load_schema() -> dict[str, Any]:
    text = resources.files("order_service.domain").joinpath("order-event.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _compile_validators() -> tuple[Any, dict[str, Any]]:
    """One validator for the envelope, and one for `data` per event type, both from the
    schema's own `allOf` (a non-matching `if` costs fastjsonschema an exception per event)."""
    schema = _strict_patterns(load_schema())
    envelope = fastjsonschema.compile({k: v for k, v in schema.items() if k != "allOf"})
    data: dict[str, Any] = {}
    for rule in schema["allOf"]:
        event_type = rule["if"]["properties"]["event_type"]["const"]
        definition = rule["then"]["properties"]["data"]["$ref"].rsplit("/", 1)[-1]
        root = {k: schema[k] for k in ("$schema", "$id", "$defs")}  # refs resolve against $id
        data[event_type] = fastjsonschema.compile({**root, **schema["$defs"][definition]})
    return envelope, data


_validate_envelope, _validate_data = _compile_validators()


class _Rejected(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Rejected(f"duplicate key {dup[:40]!r}")
    return obj


def _reject_constant(name: str) -> Any:
    raise _Rejected(f"{name} is not JSON")


def _check_strings(node: Any) -> None:
    if isinstance(node, str):
        if _FORBIDDEN_CHARS.search(node):
            raise _Rejected("NUL character or lone surrogate in a string")
    elif isinstance(node, dict):
        for key, value in node.items():
            _check_strings(key)
            _check_strings(value)
    elif isinstance(node, list):
        for value in node:
            _check_strings(value)


def loads_strict(text: str) -> Any:
    """json.loads that refuses what the contract calls not strictly valid (raises ValueError)."""
    value = _DECODER.decode(text)
    # Only an escape (or a character the decoder let through) can smuggle in NUL or a lone
    # surrogate: walk the strings only then.
    if "\\u" in text or _FORBIDDEN_CHARS.search(text):
        _check_strings(value)
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates,
    parse_constant=_reject_constant,
    parse_float=Decimal,
)


def _is_sns_notification(obj: dict[str, Any]) -> bool:
    return obj.get("Type") == "Notification" and isinstance(obj.get("Message"), str)


def parse_body(body: str) -> OrderEvent | Invalid:
    if (
        len(body) * 4 > MAX_BODY_BYTES
        and len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES
    ):
        return Invalid(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        obj = loads_strict(body)
        if isinstance(obj, dict) and _is_sns_notification(obj):
            obj = loads_strict(obj["Message"])
    except _Rejected as exc:
        return Invalid(f"not strict JSON: {exc}")
    except (ValueError, RecursionError) as exc:
        return Invalid(f"not JSON: {str(exc)[:120]}")
    if not isinstance(obj, dict):
        return Invalid("top level is not a JSON object")
    try:
        _validate_envelope(obj)
        _validate_data[obj["event_type"]](obj["data"], name_prefix="data.data")
    except fastjsonschema.JsonSchemaValueException as exc:
        return Invalid(f"schema: {exc.message[:200]}")
    return _to_event(obj)


def _to_event(obj: dict[str, Any]) -> OrderEvent | Invalid:
    # The schema's `const: 1` also admits 1.0 and true; the contract's version is the integer 1.
    if type(obj["schema_version"]) is not int:
        return Invalid("schema: schema_version must be the integer 1")
    try:
        occurred_at = datetime.fromisoformat(obj["occurred_at"])
    except ValueError:
        return Invalid("schema: occurred_at is not a valid date-time")
    if occurred_at.tzinfo is None:
        return Invalid("occurred_at needs an explicit offset")
    event_type = EventType(obj["event_type"])
    data = obj["data"]
    parsed: EventData
    if event_type is EventType.PLACED:
        items = tuple(
            Line(sku=i["sku"], quantity=i["quantity"], unit_price=Decimal(i["unit_price"]))
            for i in data["items"]
        )
        total = Decimal(data["total_amount"])
        if sum((i.quantity * i.unit_price for i in items), Decimal(0)) != total:
            return Invalid("total_amount is not the sum of quantity * unit_price")
        parsed = Placed(data["customer_id"], data["currency"], items, total)
    elif event_type is EventType.PAID:
        parsed = Paid(data["payment_id"], Decimal(data["amount"]), data["currency"])
    elif event_type is EventType.SHIPPED:
        parsed = Shipped(data["carrier"], data["tracking_number"])
    else:
        parsed = Cancelled(data["reason"])
    return OrderEvent(
        event_id=UUID(obj["event_id"]),
        event_type=event_type,
        occurred_at=occurred_at,
        order_id=UUID(obj["order_id"]),
        data=parsed,
    )
