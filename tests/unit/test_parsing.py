"""Strict parsing, the schema, and the money rules."""

from __future__ import annotations

import json
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import pytest

from order_service.domain.events import OrderEvent, Placed
from order_service.domain.parsing import MAX_BODY_BYTES, Invalid, parse_body
from tests.factories import body, paid, placed

EXAMPLES = Path(__file__).parents[2] / "docs" / "contract" / "examples"


def invalid(text: str) -> str:
    result = parse_body(text)
    assert isinstance(result, Invalid), result
    return result.reason


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_every_contract_example_parses(path):
    assert isinstance(parse_body(path.read_text()), OrderEvent)


def test_sns_envelope_is_unwrapped_and_inner_rules_apply():
    envelope = json.loads((EXAMPLES / "sns-envelope.order.placed.json").read_text())
    inner = json.loads(envelope["Message"])
    assert parse_body(json.dumps(envelope)) == parse_body(json.dumps(inner))
    inner["data"]["total_amount"] = "1.00"
    envelope["Message"] = json.dumps(inner)
    assert "total_amount" in invalid(json.dumps(envelope))


def test_money_is_decimal():
    event = parse_body(body(placed()))
    assert isinstance(event, OrderEvent) and isinstance(event.data, Placed)
    assert event.data.total_amount == Decimal("28.99")
    assert all(isinstance(i.unit_price, Decimal) for i in event.data.items)


def test_total_must_equal_sum_of_lines_to_the_cent():
    assert "total_amount" in invalid(body(placed(total_amount="29.00")))
    assert "total_amount" in invalid(body(placed(total_amount="28.98")))


def test_same_sku_on_several_lines_is_fine():
    lines = [{"sku": "A", "quantity": 1, "unit_price": "1.00"}] * 3
    assert isinstance(parse_body(body(placed(items=lines, total_amount="3.00"))), OrderEvent)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"a": 1, "a": 2}', "duplicate key"),
        ('{"schema_version": NaN}', "NaN"),
        ('{"schema_version": Infinity}', "Infinity"),
        ('{"schema_version": -Infinity}', "Infinity"),
        ("[]", "not a JSON object"),
        ('"text"', "not a JSON object"),
        ("null", "not a JSON object"),
        ("{} {}", "Extra data"),
        ('{"a": 1} x', "Extra data"),
        ("", "not JSON"),
        ("{", "not JSON"),
        ('{"a": "\\u0000"}', "NUL"),
        ('{"a\\u0000": 1}', "NUL"),
        ('{"a": "\\ud800"}', "surrogate"),
        ('{"a": "\\udfff x"}', "surrogate"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
    ],
)
def test_not_strictly_valid_json_is_invalid(text, why):
    assert why in invalid(text)


def test_nul_inside_a_valid_event_is_invalid():
    assert "NUL" in invalid(body(placed(customer_id="cust\u0000")))


def test_integer_with_too_many_digits_is_invalid():
    assert "not JSON" in invalid('{"x": ' + "9" * 5000 + "}")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.pop("event_id"),
        lambda e: e.update(extra=1),
        lambda e: e.update(schema_version=2),
        lambda e: e.update(schema_version=True),
        lambda e: e.update(event_id="not-a-uuid"),
        lambda e: e.update(event_type="order.refunded"),
        lambda e: e.update(occurred_at="2026-11-26T09:15:00"),
        lambda e: e.update(occurred_at="2026-02-30T09:15:00Z"),
        lambda e: e.update(occurred_at="2016-12-31T23:59:60Z"),
        lambda e: e.update(occurred_at="1969-12-31T23:59:59.999999Z"),
        lambda e: e.update(occurred_at="9999-01-01T00:00:00Z"),
        lambda e: e.update(event_id="{" + e["event_id"] + "}"),
        lambda e: e["data"].update(currency="eur"),
        lambda e: e["data"].update(currency="EURO"),
        lambda e: e["data"].update(currency="EUR\n"),
        lambda e: e["data"].update(total_amount=28.99),
        lambda e: e["data"].update(total_amount="28.999"),
        lambda e: e["data"].update(total_amount="-28.99"),
        lambda e: e["data"].update(items=[]),
        lambda e: e["data"]["items"][0].update(quantity=0),
        lambda e: e["data"]["items"][0].update(quantity=-1),
        lambda e: e["data"]["items"][0].update(quantity=1.5),
        lambda e: e["data"]["items"][0].update(quantity="2"),
        lambda e: e["data"]["items"][0].update(extra=True),
        lambda e: e["data"].pop("customer_id"),
    ],
)
def test_schema_violations_are_invalid(mutate):
    event = placed()
    mutate(event)
    assert invalid(body(event))


def test_paid_needs_its_fields():
    event = paid()
    del event["data"]["payment_id"]
    assert "schema" in invalid(body(event))


def test_body_over_256_kib_is_invalid_and_at_the_limit_is_judged_on_content():
    event = placed()
    head, tail = body(event)[:-1] + ', "pad": "', '"}'
    at_limit = head + "x" * (MAX_BODY_BYTES - len(head) - len(tail)) + tail
    assert len(at_limit.encode()) == MAX_BODY_BYTES
    assert "schema" in invalid(at_limit)  # within the size, refused for the unknown field
    assert "larger" in invalid(at_limit + " ")


@pytest.mark.parametrize("written", ["2.0", "2e0", "20E-1", "2.000", "0.2e1"])
def test_a_number_whose_value_is_an_integer_is_that_integer(written):
    """JSON Schema 2020-12's integer: the schema cannot tell 2.0 from 2, so neither does the
    parser (ORDER_EVENTS.md, Ranges and forms)."""
    text = body(placed()).replace('"quantity": 2', f'"quantity": {written}', 1)
    text = text.replace('"schema_version": 1', '"schema_version": 1.0')
    event = parse_body(text)
    assert isinstance(event, OrderEvent) and isinstance(event.data, Placed)
    assert type(event.data.items[0].quantity) is int and event.data.items[0].quantity == 2


@pytest.mark.parametrize("written", ["2.5", "2.0000000000000001", "1e999999999", "true"])
def test_a_number_that_is_not_an_integer_is_not_a_quantity(written):
    text = body(placed()).replace('"quantity": 2', f'"quantity": {written}', 1)
    assert "quantity must be integer" in invalid(text)


@pytest.mark.parametrize(
    ("written", "utc"),
    [
        ("2026-11-26t09:15:00z", "2026-11-26T09:15:00+00:00"),
        ("2026-11-26T09:15:00.123456789Z", "2026-11-26T09:15:00.123456+00:00"),
        ("2026-11-26T09:15:00.9999999Z", "2026-11-26T09:15:00.999999+00:00"),
        ("2026-11-26T09:15:00-00:00", "2026-11-26T09:15:00+00:00"),
        ("1970-01-01T00:00:00+14:00", "1969-12-31T10:00:00+00:00"),
        ("9998-12-31T23:59:59-23:59", "9999-01-01T23:58:59+00:00"),
    ],
)
def test_every_rfc_3339_form_in_range_is_read_as_its_instant(written, utc):
    event = parse_body(body({**placed(), "occurred_at": written}))
    assert isinstance(event, OrderEvent)
    assert event.occurred_at.astimezone(UTC).isoformat() == utc


def test_out_of_range_dates_are_invalid_with_a_reason_that_says_the_range():
    reason = invalid(body({**placed(), "occurred_at": "0001-01-01T00:00:00+14:00"}))
    assert "1970-01-01 to 9998-12-31" in reason and len(reason) <= 256
