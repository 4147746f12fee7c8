"""Strict parsing of one message body into an OrderEvent, or the reason it is invalid.

Strict means: UTF-8 JSON of at most 256 KiB, one object, no duplicate keys, no NaN or
Infinity, no trailing data, no NUL or lone surrogate in any string; then the JSON Schema of
the contract, then the rules a schema cannot express (exact total). What the schema accepts,
the parser reads (the contract's "Ranges and forms": integral numbers, every RFC 3339 form).
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
    # Where a string has a pattern, its format is checked by the pattern (uuid: the same
    # regex) and by _to_event (date-time: the calendar), so it is not compiled a second time.
    if isinstance(node, dict):
        return {
            k: (v[:-1] + r"\Z" if k == "pattern" and v.endswith("$") else _strict_patterns(v))
            for k, v in node.items()
            if not (k == "format" and "pattern" in node)
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


def _number(text: str) -> Decimal | int:
    """A JSON number written with a fraction or an exponent. JSON Schema counts one whose value
    is an integer (2.0, 2e0, 20E-1) as an integer, so it is that int; the exponent bound keeps
    1e999999999 from becoming an int of a billion digits (it stays a Decimal, not an integer)."""
    value = Decimal(text)
    if value.adjusted() < 18 and value == value.to_integral_value():
        return int(value)
    return value


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
    parse_float=_number,
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
        if exc.name == "data.occurred_at":  # its pattern is too long to quote
            return Invalid(OCCURRED_AT_REASON)
        return Invalid(f"schema: {exc.message[:200]}")
    return _to_event(obj)


OCCURRED_AT_REASON = (
    "schema: occurred_at must be an RFC 3339 date-time with an offset, dated 1970-01-01 to "
    "9998-12-31"
)


def _instant(text: str) -> datetime | None:
    """The RFC 3339 date-time the schema admitted, as Python reads it. The pattern fixed the
    layout (YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm), no leap second); what fromisoformat
    lacks is a lower-case t or z. Fraction digits past the microsecond are truncated."""
    if text[10] == "t" or text[-1] == "z":
        text = text.upper()
    try:
        return datetime.fromisoformat(text)
    except ValueError:  # a day the month has not (the pattern leaves the calendar to this)
        return None


def _to_event(obj: dict[str, Any]) -> OrderEvent | Invalid:
    occurred_at = _instant(obj["occurred_at"])
    if occurred_at is None:
        return Invalid(OCCURRED_AT_REASON)
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
