"""Strict parsing, the schema, and the money rules."""

from __future__ import annotations

import json
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
        lambda e: e.update(schema_version=1.0),
        lambda e: e.update(schema_version=True),
        lambda e: e.update(event_id="not-a-uuid"),
        lambda e: e.update(event_type="order.refunded"),
        lambda e: e.update(occurred_at="2026-11-26T09:15:00"),
        lambda e: e.update(occurred_at="2026-02-30T09:15:00Z"),
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
