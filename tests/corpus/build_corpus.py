"""Writes the bad-input corpus: `cases/<name>.body` and `expected.json`.

The case files are kept in the repo; this script is how they were made and how to add one
(`.venv/bin/python -m tests.corpus.build_corpus`). `test_corpus.py` checks that the files on
disk are exactly what this script writes, so a hand edit of one side is caught.

Each case states the outcome the contract (docs/contract/ORDER_EVENTS.md) gives it:
- `invalid` (+ `reason`, a substring of the parser's reason): DLQ at once, never retried;
  `quarantine: true` when the DLQ cannot take the copy (size) and the quarantine table must.
- `applied`: a valid event; `requires` lists the events (same order) that must exist first,
  `stored` the columns of `orders` that must hold the given text verbatim, `instant` the
  timestamp columns of `orders` that must hold the given instant (ISO 8601, in UTC).
- `beyond_schema` (invalid cases only): the JSON Schema alone accepts this body (as the
  `jsonschema` package's Draft 2020-12 validator judges it), and the name of the contract's
  rule beyond the schema that refuses it (ORDER_EVENTS.md, "Where the schema alone says
  valid").
`sqs: false` marks bodies SQS itself refuses (so they never reach the worker).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CASES = HERE / "cases"
LIMIT = 256 * 1024
NAMESPACE = uuid.UUID("5b0c1d8e-0c5f-4a35-9a54-1f1f7d8e2c11")
INJECTIONS = (
    "'; DROP TABLE orders; --",
    "Robert'); DROP TABLE order_events;--",
    "1' OR '1'='1",
    "$1; SELECT pg_sleep(10); -- \\' \" %s %(x)s",
)


def ids(name: str) -> tuple[str, str]:
    return str(uuid.uuid5(NAMESPACE, "event:" + name)), str(uuid.uuid5(NAMESPACE, "order:" + name))


def event(name: str, event_type: str, data: dict[str, Any], **top: Any) -> dict[str, Any]:
    event_id, order_id = ids(name)
    return {
        "schema_version": 1,
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": "2026-11-26T09:15:00Z",
        "order_id": order_id,
        "data": data,
        **top,
    }


def placed_data(**data: Any) -> dict[str, Any]:
    return {
        "customer_id": "cust-1042",
        "currency": "EUR",
        "items": [
            {"sku": "BOOK-123", "quantity": 2, "unit_price": "12.50"},
            {"sku": "PEN-9", "quantity": 1, "unit_price": "3.99"},
        ],
        "total_amount": "28.99",
        **data,
    }


def placed(name: str, **data: Any) -> dict[str, Any]:
    return event(name, "order.placed", placed_data(**data))


def item(name: str, **fields: Any) -> dict[str, Any]:
    e = placed(name)
    e["data"]["items"][0].update(fields)
    return e


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def padded(text: str, size: int) -> str:
    """The JSON text with whitespace after its first `{` so that it is `size` UTF-8 bytes."""
    missing = size - len(text.encode())
    assert missing >= 0
    return "{" + " " * missing + text[1:]


def sns(message: str, kind: str = "Notification") -> str:
    return dumps(
        {
            "Type": kind,
            "MessageId": "5f1e8d9c-5b6a-4fbc-9e98-ad5dbc226a55",
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:orders",
            "Message": message,
            "Timestamp": "2026-11-26T09:15:00.120Z",
        }
    )


def cases() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def bad(name: str, body: str, reason: str, **extra: Any) -> None:
        out.append({"name": name, "body": body, "outcome": "invalid", "reason": reason, **extra})

    def good(name: str, body: str, requires: tuple[str, ...] = (), **extra: Any) -> None:
        out.append(
            {"name": name, "body": body, "outcome": "applied", "requires": list(requires), **extra}
        )

    valid = dumps(placed("template"))

    # Size: at the limit the content decides; over it, invalid whatever the content.
    good("size-at-limit-valid", padded(dumps(placed("size-at-limit-valid")), LIMIT))
    bad(
        "size-over-limit-by-one",
        padded(dumps(placed("size-over")), LIMIT + 1),
        "larger",
        sqs=False,
        beyond_schema="size",
    )
    reason = "é" * 500
    good(
        "size-at-limit-multibyte",
        padded(dumps(event("size-mb", "order.cancelled", {"reason": reason})), LIMIT),
        ("placed",),
        stored={"cancel_reason": reason},
    )
    over_mb = padded(dumps(event("size-mb-over", "order.cancelled", {"reason": reason})), LIMIT + 2)
    bad("size-over-limit-in-bytes-not-chars", over_mb, "larger", sqs=False, beyond_schema="size")
    bad(
        "size-at-limit-invalid-goes-to-quarantine",
        padded(dumps(placed("size-q", total_amount="29.00")), LIMIT),
        "total_amount",
        quarantine=True,
        beyond_schema="total",
    )

    # Malformed, truncated, trailing data.
    bad("empty", "", "not JSON", sqs=False)
    bad("whitespace-only", "   \n\t ", "not JSON")
    bad("plain-text", "not json at all", "not JSON")
    bad("truncated-half", valid[: len(valid) // 2], "not JSON")
    bad("truncated-last-brace", valid[:-1], "not JSON")
    bad("trailing-garbage", valid + "x", "not JSON")
    bad("trailing-second-object", valid + valid, "not JSON")
    bad("trailing-comma", valid[:-1] + ",}", "not JSON")
    bad("single-quotes", valid.replace('"', "'"), "not JSON")
    bad("unquoted-keys", valid.replace('"schema_version"', "schema_version"), "not JSON")
    bad("comment", "// order\n" + valid, "not JSON")
    bad("utf8-bom", "\ufeff" + valid, "not JSON")
    bad(
        "raw-control-char-in-string",
        valid.replace("cust-1042", "cust\x01-1042"),
        "not JSON",
        sqs=False,
    )

    # Not an object at the top.
    bad("top-level-array", "[" + valid + "]", "not a JSON object")
    bad("top-level-string", json.dumps(valid), "not a JSON object")
    bad("top-level-number", "1", "not a JSON object")
    bad("top-level-null", "null", "not a JSON object")
    bad("top-level-true", "true", "not a JSON object")

    # Duplicate keys, at every level.
    e = placed("dup")
    bad(
        "duplicate-key-top",
        dumps(e)[:-1] + f',"event_id":"{e["event_id"]}"}}',
        "duplicate key",
        beyond_schema="strict-json",
    )
    bad(
        "duplicate-key-data",
        dumps(e).replace('"currency":"EUR"', '"currency":"EUR","currency":"USD"'),
        "duplicate key",
        beyond_schema="strict-json",
    )
    bad(
        "duplicate-key-item",
        dumps(e).replace('"quantity":2', '"quantity":2,"quantity":2'),
        "duplicate key",
        beyond_schema="strict-json",
    )
    bad(
        "duplicate-key-in-sns-message",
        sns(dumps(e).replace('"currency":"EUR"', '"currency":"EUR","currency":"EUR"')),
        "duplicate key",
        beyond_schema="strict-json",
    )

    # NaN, Infinity, huge numbers.
    bad("nan-schema-version", valid.replace('"schema_version":1', '"schema_version":NaN'), "NaN")
    bad("infinity-quantity", valid.replace('"quantity":2', '"quantity":Infinity'), "Infinity")
    bad(
        "minus-infinity-quantity", valid.replace('"quantity":2', '"quantity":-Infinity'), "Infinity"
    )
    bad("1e400-quantity", valid.replace('"quantity":2', '"quantity":1E400'), "schema")
    bad(
        "1e400-schema-version",
        valid.replace('"schema_version":1', '"schema_version":1E400'),
        "schema",
    )
    bad(
        "int-over-2-53-quantity",
        valid.replace('"quantity":2', '"quantity":9007199254740993'),
        "schema",
    )
    bad(
        "int-over-2-53-schema-version",
        valid.replace('"schema_version":1', '"schema_version":9007199254740993'),
        "schema",
    )
    bad(
        "int-over-4300-digits",
        valid.replace('"quantity":2', '"quantity":' + "9" * 4301),
        "not JSON",
    )
    good(  # JSON Schema's integer: a number whose value is one (Ranges and forms)
        "schema-version-float",
        dumps(placed("sv-float")).replace('"schema_version":1', '"schema_version":1.0'),
    )
    bad(
        "schema-version-true",
        valid.replace('"schema_version":1', '"schema_version":true'),
        "schema",
    )
    bad(
        "schema-version-string",
        valid.replace('"schema_version":1', '"schema_version":"1"'),
        "schema",
    )

    # Deep nesting.
    bad("deep-arrays-100k", valid[:-1] + ',"x":' + "[" * 100_000 + "]" * 100_000 + "}", "not JSON")
    bad(
        "deep-objects-40k",
        valid[:-1] + ',"x":' + '{"a":' * 40_000 + "1" + "}" * 40_000 + "}",
        "not JSON",
    )
    bad("nested-64-in-data", dumps(placed("nest", x=json.loads("[" * 64 + "]" * 64))), "schema")

    # NUL and lone surrogates (as JSON escapes: SQS refuses the raw characters).
    bad("nul-in-customer-id", valid.replace("cust-1042", "cust\\u0000"), "NUL")
    bad(
        "nul-in-cancel-reason",
        dumps(event("nul", "order.cancelled", {"reason": "x"})).replace('"x"', '"a\\u0000b"'),
        "NUL",
        beyond_schema="strict-json",
    )
    bad("nul-in-key", valid[:-1] + ',"\\u0000":1}', "NUL")
    bad(
        "lone-high-surrogate-carrier",
        dumps(event("sur", "order.shipped", {"carrier": "D", "tracking_number": "T-1"})).replace(
            '"D"', '"DHL\\ud800"'
        ),
        "surrogate",
        beyond_schema="strict-json",
    )
    bad(
        "lone-low-surrogate-reason",
        dumps(event("sur2", "order.cancelled", {"reason": "x"})).replace('"x"', '"\\udfff"'),
        "surrogate",
        beyond_schema="strict-json",
    )
    bad(
        "reversed-surrogate-pair",
        dumps(event("sur3", "order.cancelled", {"reason": "x"})).replace('"x"', '"\\ude00\\ud83d"'),
        "surrogate",
        beyond_schema="strict-json",
    )
    bad("raw-nul-byte", valid.replace("cust-1042", "cust\x00"), "not JSON", sqs=False)
    emoji = "customer changed their mind \U0001f600"
    good(
        "surrogate-pair-emoji-is-valid",
        dumps(event("emoji", "order.cancelled", {"reason": "x"})).replace(
            '"x"', '"customer changed their mind \\ud83d\\ude00"'
        ),
        ("placed",),
        stored={"cancel_reason": emoji},
    )

    # Wrong types.
    bad("event-id-number", dumps({**placed("t1"), "event_id": 42}), "schema")
    bad("event-id-not-uuid", dumps({**placed("t2"), "event_id": "order-42"}), "schema")
    bad("order-id-not-uuid", dumps({**placed("t3"), "order_id": "6d1f2a7c"}), "schema")
    bad("quantity-string", dumps(item("t4", quantity="2")), "schema")
    bad("unit-price-number", dumps(item("t5", unit_price=12.5)).replace("12.5", "12.50"), "schema")
    bad("total-amount-number", dumps(placed("t6", total_amount=28.99)), "schema")
    bad(
        "items-object",
        dumps(placed("t7", items={"sku": "A", "quantity": 1, "unit_price": "1"})),
        "schema",
    )
    bad("data-array", dumps({**placed("t8"), "data": []}), "schema")
    bad("event-type-unknown", dumps({**placed("t9"), "event_type": "order.refunded"}), "schema")
    bad("schema-version-2", dumps({**placed("t10"), "schema_version": 2}), "schema")
    bad("customer-id-null", dumps(placed("t11", customer_id=None)), "schema")

    # Missing and extra fields, dates.
    for field in ("event_id", "data", "occurred_at"):
        e = placed(f"missing-{field}")
        del e[field]
        bad(f"missing-{field}", dumps(e), "schema")
    e = placed("missing-items")
    del e["data"]["items"]
    bad("missing-items", dumps(e), "schema")
    bad(
        "paid-missing-payment-id",
        dumps(event("m5", "order.paid", {"amount": "1.00", "currency": "EUR"})),
        "schema",
    )
    bad("items-empty", dumps(placed("m6", items=[], total_amount="0")), "schema")
    lines = [{"sku": "A", "quantity": 1, "unit_price": "1.00"}]
    bad("items-101", dumps(placed("m7", items=lines * 101, total_amount="101.00")), "schema")
    good("items-100-same-sku", dumps(placed("items-100", items=lines * 100, total_amount="100.00")))
    bad("extra-top-level-field", dumps({**placed("m8"), "priority": "high"}), "schema")
    bad("extra-data-field", dumps(placed("m9", coupon="X")), "schema")
    bad("extra-item-field", dumps(item("m10", discount="1.00")), "schema")
    bad(
        "occurred-at-no-offset",
        dumps({**placed("m11"), "occurred_at": "2026-11-26T09:15:00"}),
        "occurred_at",
    )
    bad(
        "occurred-at-feb-30",
        dumps({**placed("m12"), "occurred_at": "2026-02-30T09:15:00Z"}),
        "schema",
    )
    bad(
        "occurred-at-trailing-newline",
        dumps({**placed("m13"), "occurred_at": "2026-11-26T09:15:00Z\n"}),
        "schema",
        beyond_schema="python-dollar",
    )
    good(
        "occurred-at-offset-plus-0530",
        dumps({**placed("offset"), "occurred_at": "2026-11-26T14:45:00+05:30"}),
    )

    # Quantities and money.
    bad("quantity-zero", dumps(item("q1", quantity=0)), "schema")
    bad("quantity-negative", dumps(item("q2", quantity=-1)), "schema")
    bad("quantity-fractional", dumps(item("q3", quantity=1.5)), "schema")
    bad("quantity-over-10000", dumps(item("q4", quantity=10001)), "schema")
    bad("unit-price-negative", dumps(item("q5", unit_price="-12.50")), "schema")
    bad("unit-price-three-decimals", dumps(item("q6", unit_price="12.505")), "schema")
    bad("unit-price-exponent", dumps(item("q7", unit_price="1.25E1")), "schema")
    bad(
        "total-off-by-plus-one-cent",
        dumps(placed("c1", total_amount="29.00")),
        "total_amount",
        beyond_schema="total",
    )
    bad(
        "total-off-by-minus-one-cent",
        dumps(placed("c2", total_amount="28.98")),
        "total_amount",
        beyond_schema="total",
    )
    good(
        "total-one-decimal-equals",
        dumps(
            placed(
                "total-1dp",
                items=[{"sku": "A", "quantity": 3, "unit_price": "0.30"}],
                total_amount="0.9",
            )
        ),
    )
    good(
        "total-float-trap-0.1x3",
        dumps(
            placed(
                "float-trap",
                items=[{"sku": "A", "quantity": 3, "unit_price": "0.1"}],
                total_amount="0.30",
            )
        ),
    )
    for n, currency in enumerate(("eur", "EURO", "€", "EU1", "E R", "")):
        bad(
            f"currency-{n}-{currency.encode().hex() or 'empty'}",
            dumps(placed(f"cur{n}", currency=currency)),
            "schema",
        )
    bad(
        "paid-currency-lowercase",
        dumps(
            event(
                "cur-paid",
                "order.paid",
                {"payment_id": "p-1", "amount": "28.99", "currency": "usd"},
            )
        ),
        "schema",
    )

    # SQL injection: free-text fields store it verbatim; patterned fields refuse it.
    for n, text in enumerate(INJECTIONS):
        good(
            f"sql-injection-{n}-carrier",
            dumps(
                event(
                    f"sqli-carrier-{n}",
                    "order.shipped",
                    {"carrier": text, "tracking_number": "TRK-1"},
                )
            ),
            ("placed", "paid"),
            stored={"carrier": text},
        )
        good(
            f"sql-injection-{n}-cancel-reason",
            dumps(event(f"sqli-reason-{n}", "order.cancelled", {"reason": text})),
            ("placed",),
            stored={"cancel_reason": text},
        )
    text = INJECTIONS[0]
    bad("sql-injection-customer-id", dumps(placed("sqli-c", customer_id=text)), "schema")
    bad("sql-injection-sku", dumps(item("sqli-s", sku=text)), "schema")
    bad("sql-injection-currency", dumps(placed("sqli-cur", currency=text)), "schema")
    bad(
        "sql-injection-payment-id",
        dumps(
            event(
                "sqli-p", "order.paid", {"payment_id": text, "amount": "28.99", "currency": "EUR"}
            )
        ),
        "schema",
    )
    bad(
        "sql-injection-tracking-number",
        dumps(event("sqli-t", "order.shipped", {"carrier": "DHL", "tracking_number": text})),
        "schema",
    )
    bad("sql-injection-event-type", dumps({**placed("sqli-et"), "event_type": text}), "schema")
    bad("sql-injection-order-id", dumps({**placed("sqli-o"), "order_id": text}), "schema")
    bad(
        "sql-injection-unit-price",
        dumps(item("sqli-u", unit_price="1; DROP TABLE orders")),
        "schema",
    )

    ranges_and_forms(bad, good)

    # SNS envelopes.
    good("sns-envelope-valid", sns(dumps(placed("sns-valid"))))
    bad(
        "sns-envelope-total-off",
        sns(dumps(placed("sns-bad", total_amount="1.00"))),
        "total_amount",
        beyond_schema="total",
    )
    bad("sns-envelope-message-not-json", sns("not json"), "not JSON")
    bad("sns-envelope-message-trailing-data", sns(dumps(placed("sns-trail")) + "{}"), "not JSON")
    bad(
        "sns-envelope-nan-inside",
        sns(dumps(placed("sns-nan")).replace('"schema_version":1', '"schema_version":NaN')),
        "NaN",
    )
    bad(
        "sns-envelope-message-is-object",
        dumps({"Type": "Notification", "Message": placed("sns-obj")}),
        "schema",
    )
    bad(
        "sns-subscription-confirmation",
        sns(dumps(placed("sns-sub")), "SubscriptionConfirmation"),
        "schema",
    )
    bad("sns-envelope-twice", sns(sns(dumps(placed("sns-twice")))), "schema")
    return out


def at(name: str, occurred_at: str) -> str:
    return dumps({**placed(name), "occurred_at": occurred_at})


def ranges_and_forms(bad: Any, good: Any) -> None:
    """The contract's "Ranges and forms": what the schema admits is stored and read back; the
    rest is refused by the schema itself, not by the database."""
    # The range: the date as written from 1970-01-01 to 9998-12-31, whatever the offset.
    for n, value in enumerate(
        (
            "0001-01-01T00:00:00+14:00",  # before year 1 in UTC: "date value out of range"
            "0001-01-01T00:00:00Z",  # asyncpg writes it as -infinity
            "9999-12-31T23:59:59.999999Z",  # ... and this as infinity
            "9999-12-31T23:59:59-23:59",  # past year 9999 in UTC
            "9999-01-01T00:00:00Z",  # past 9999 in a reader's time zone of +14:00, nearly
            "1969-12-31T23:59:59Z",
            "1900-01-01T00:00:00Z",  # a placeholder, not an order's time
            "0000-01-01T00:00:00Z",
            "10000-01-01T00:00:00Z",
        )
    ):
        bad(f"occurred-at-out-of-range-{n}", at(f"range-{n}", value), "1970-01-01 to 9998-12-31")
    utc = "+00:00"
    for name, value, instant in (
        ("occurred-at-first-day", "1970-01-01T00:00:00Z", f"1970-01-01T00:00:00{utc}"),
        ("occurred-at-first-day-plus-14", "1970-01-01T00:00:00+14:00", f"1969-12-31T10:00:00{utc}"),
        ("occurred-at-last-day", "9998-12-31T23:59:59.999999Z", f"9998-12-31T23:59:59.999999{utc}"),
        (
            "occurred-at-last-day-minus-23-59",
            "9998-12-31T23:59:59-23:59",
            f"9999-01-01T23:58:59{utc}",
        ),
        # Every form RFC 3339 allows.
        ("occurred-at-lower-case-t-and-z", "2026-11-26t09:15:00z", f"2026-11-26T09:15:00{utc}"),
        (
            "occurred-at-nine-fraction-digits",
            "2026-11-26T09:15:00.123456789Z",
            f"2026-11-26T09:15:00.123456{utc}",
        ),
        ("occurred-at-minus-00-00", "2026-11-26T09:15:00-00:00", f"2026-11-26T09:15:00{utc}"),
        ("occurred-at-plus-23-59", "2026-11-27T09:14:00+23:59", f"2026-11-26T09:15:00{utc}"),
        ("occurred-at-feb-29-leap-year", "2028-02-29T09:15:00Z", f"2028-02-29T09:15:00{utc}"),
    ):
        good(name, at(name, value), instant={"placed_at": instant})
    # Forms RFC 3339 does not allow (Python's fromisoformat takes some of them), and the leap
    # second, which it allows and the contract does not.
    for name, value in (
        ("offset-without-colon", "2026-11-26T14:45:00+0530"),
        ("space-separator", "2026-11-26 09:15:00Z"),
        ("no-seconds", "2026-11-26T09:15Z"),
        ("comma-fraction", "2026-11-26T09:15:00,5Z"),
        ("empty-fraction", "2026-11-26T09:15:00.Z"),
        ("hour-24", "2026-11-26T24:00:00Z"),
        ("offset-24-00", "2026-11-26T09:15:00+24:00"),
        ("leap-second", "2016-12-31T23:59:60Z"),  # the contract narrows RFC 3339 here
        ("leap-second-offset-fraction", "2016-12-31T18:59:60.5-05:00"),
        ("seconds-61", "2016-12-31T23:59:61Z"),
        ("feb-29-common-year", "2026-02-29T09:15:00Z"),
        ("fullwidth-digits", "\uff12\uff10\uff12\uff16-11-26T09:15:00Z"),
        ("date-only", "2026-11-26"),
        ("number", 1764148500),
    ):
        bad(f"occurred-at-{name}", at(f"form-{name}", value), "occurred_at")  # type: ignore[arg-type]

    # Integers: JSON Schema's integer is a number whose value is one, however written.
    for name, text in (("2.0", "2.0"), ("2e0", "2e0"), ("20E-1", "20E-1"), ("2.000", "2.000")):
        body = dumps(placed(f"int-{name}")).replace('"quantity":2', f'"quantity":{text}', 1)
        good(f"quantity-{name}", body)
    good(
        "schema-version-1e0",
        dumps(placed("sv-1e0")).replace('"schema_version":1', '"schema_version":1e0'),
    )
    bad("quantity-true", dumps(item("q-true", quantity=True)), "schema")
    bad("quantity-2.5", dumps(item("q-2.5", quantity=2.5)), "schema")
    bad(
        "quantity-1e20",
        dumps(placed("q-1e20")).replace('"quantity":2', '"quantity":1e20', 1),
        "schema",
    )
    bad(  # a binary float rounds it to 1.0; the contract judges the number as written
        "quantity-2.0000000000000001",
        dumps(placed("q-near-1")).replace('"quantity":2', '"quantity":2.0000000000000001', 1),
        "schema",
        beyond_schema="binary-float",
    )

    # Ids: the canonical text of a UUID, either case.
    good(
        "event-id-upper-case", dumps({**placed("id-upper"), "event_id": ids("id-upper")[0].upper()})
    )
    canonical = ids("id-forms")[0]
    for name, value in (
        ("braces", "{" + canonical + "}"),
        ("urn", "urn:uuid:" + canonical),
        ("no-hyphens", canonical.replace("-", "")),
        ("extra-hyphen", canonical[:28] + "-" + canonical[28:]),
        ("underscore", canonical[0] + "_" + canonical[2:]),
        ("plus-sign", "+" + canonical[1:]),
        ("leading-space", " " + canonical[1:]),
        ("arabic-indic-digits", "\u0660" * 8 + canonical[8:]),
    ):
        body = dumps({**placed(f"id-{name}"), "event_id": value})
        bad(f"event-id-{name}", body, "schema")

    # Text any column holds: noncharacters and the last code point are text to PostgreSQL.
    text = "\uffff \ufffe \U0010ffff end"
    good(
        "noncharacters-in-cancel-reason",
        dumps(event("nonchar", "order.cancelled", {"reason": text})),
        ("placed",),
        stored={"cancel_reason": text},
    )

    # Python's `$` matches before a final newline; ECMA 262's (JSON Schema's) does not.
    bad(
        "currency-trailing-newline",
        dumps(placed("cur-nl", currency="EUR\n")),
        "schema",
        beyond_schema="python-dollar",
    )
    bad(
        "sku-trailing-newline",
        dumps(item("sku-nl", sku="BOOK-123\n")),
        "schema",
        beyond_schema="python-dollar",
    )


def file_name(case: dict[str, Any]) -> str:
    return f"{case['name']}.body"


def manifest(all_cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for case in all_cases:
        row = {k: v for k, v in case.items() if k != "body"}
        row["file"] = file_name(case)
        row.setdefault("sqs", True)
        rows.append(row)
    return rows


def render() -> dict[str, bytes]:
    """Every file of the corpus, by path relative to this folder."""
    all_cases = cases()
    names = [c["name"] for c in all_cases]
    assert len(names) == len(set(names)), "case names must be unique"
    files = {f"cases/{file_name(c)}": c["body"].encode("utf-8", "surrogatepass") for c in all_cases}
    files["expected.json"] = (
        json.dumps(manifest(all_cases), indent=1, ensure_ascii=True) + "\n"
    ).encode()
    return files


def main() -> None:
    CASES.mkdir(exist_ok=True)
    for old in CASES.glob("*.body"):
        old.unlink()
    for path, content in render().items():
        (HERE / path).write_bytes(content)


if __name__ == "__main__":
    main()
