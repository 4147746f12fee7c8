"""Every case of the bad-input corpus gets the outcome the contract gives it: through the
parser, and (every case SQS accepts) through the real worker process."""

from __future__ import annotations

import json
import re
from datetime import UTC
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from order_service.adapters.sqs import SqsQueue
from order_service.domain.events import OrderEvent
from order_service.domain.parsing import Invalid, load_schema, parse_body
from order_service.metrics import Metrics
from tests.corpus import build_corpus
from tests.factories import body, paid, placed
from tests.support.database import query
from tests.support.waiting import wait_for

HERE = Path(__file__).parent
CASES: list[dict[str, Any]] = json.loads((HERE / "expected.json").read_text())
CONTRACT = HERE.parents[1] / "docs" / "contract"


def text_of(case: dict[str, Any]) -> str:
    return (HERE / "cases" / case["file"]).read_bytes().decode("utf-8")


def test_the_corpus_has_at_least_60_cases_and_the_files_are_what_the_builder_writes():
    assert len(CASES) >= 60
    on_disk = {
        str(p.relative_to(HERE)): p.read_bytes()
        for p in [HERE / "expected.json", *sorted((HERE / "cases").glob("*.body"))]
    }
    assert on_disk == build_corpus.render()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_parser_gives_each_case_its_contract_outcome(case):
    result = parse_body(text_of(case))
    if case["outcome"] == "invalid":
        assert isinstance(result, Invalid), result
        assert case["reason"] in result.reason
        assert len(result.reason) <= 256  # fits a message attribute
    else:
        assert isinstance(result, OrderEvent), result
        fields = {"cancel_reason": "reason", "carrier": "carrier"}
        for column, text in case.get("stored", {}).items():
            assert getattr(result.data, fields[column]) == text
        for column, instant in case.get("instant", {}).items():
            assert column == "placed_at"  # the placed event's occurred_at
            assert result.occurred_at.astimezone(UTC).isoformat() == instant


def differences_listed_in_the_contract() -> set[str]:
    """The names in the contract's table of what the schema alone accepts and the worker
    refuses (ORDER_EVENTS.md, "Where the schema alone says valid")."""
    text = (CONTRACT / "ORDER_EVENTS.md").read_text()
    section = text.split("## Where the schema alone says valid", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z-]+)` \|", section, re.MULTILINE))


def published_schema_says_valid(text: str) -> bool:
    """What a producer's validator says: the body as Python's json module loads it (the SNS
    envelope unwrapped, as the contract says), judged by the published schema with the
    `jsonschema` package's Draft 2020-12 validator, format checking on."""
    try:
        obj = json.loads(text)
        notification = isinstance(obj, dict) and obj.get("Type") == "Notification"
        if notification and isinstance(obj.get("Message"), str):
            obj = json.loads(obj["Message"])
    except (ValueError, RecursionError):
        return False
    return VALIDATOR.is_valid(obj)


VALIDATOR = jsonschema.Draft202012Validator(
    json.loads((CONTRACT / "order-event.schema.json").read_text()),
    format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
)


def test_the_validator_checks_date_times_and_uuids_and_the_contract_copy_is_the_shipped_one():
    # Without rfc3339-validator installed, jsonschema skips "date-time" silently.
    assert not VALIDATOR.evolve(schema={"format": "date-time"}).is_valid("2026-02-30T09:15:00Z")
    assert not VALIDATOR.evolve(schema={"format": "uuid"}).is_valid("not-a-uuid")
    assert json.loads((CONTRACT / "order-event.schema.json").read_text()) == load_schema()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_published_schema_and_the_parser_judge_each_case_alike_or_the_contract_says_why(
    case,
):
    schema_valid = published_schema_says_valid(text_of(case))
    parser_valid = isinstance(parse_body(text_of(case)), OrderEvent)
    assert parser_valid == (case["outcome"] == "applied")
    if "beyond_schema" in case:
        # Only ever this way round: the schema accepts, a rule it cannot state refuses.
        assert schema_valid and not parser_valid
        assert case["beyond_schema"] in differences_listed_in_the_contract()
    else:
        assert schema_valid == parser_valid


def test_every_difference_the_contract_lists_has_a_case():
    used = {c["beyond_schema"] for c in CASES if "beyond_schema" in c}
    assert used == differences_listed_in_the_contract()


def prerequisites(case: dict[str, Any], order_id: str) -> list[str]:
    events = {"placed": placed(order_id), "paid": paid(order_id)}
    return [body(events[kind]) for kind in case["requires"]]


@pytest.mark.slow
async def test_every_case_sqs_accepts_gets_its_outcome_from_the_worker_process(
    sqs, e2e_queues, database, start_worker
):
    sendable = [c for c in CASES if c["sqs"]]
    parsed = {c["name"]: parse_body(text_of(c)) for c in sendable}
    valid = [c for c in sendable if c["outcome"] == "applied"]
    order_of = {c["name"]: str(parsed[c["name"]].order_id) for c in valid}
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    start_worker()

    # The state each valid case needs (its order placed, or paid) first, then the corpus.
    setup = [b for c in valid for b in prerequisites(c, order_of[c["name"]])]
    await queue.send(e2e_queues.url, setup)

    async def setup_applied() -> bool:
        rows = await query(database, "SELECT count(*) n FROM order_events")
        return rows[0]["n"] == len(setup)

    await wait_for(setup_applied, 60, "the prerequisite events")
    for case in sendable:  # one by one: a batch send of 10 would pass SQS's 256 KiB limit
        await queue.send(e2e_queues.url, [text_of(case)])

    async def drained() -> bool:
        return await queue.depth(e2e_queues.url) == (0, 0)

    await wait_for(drained, 90, "the corpus to drain")

    applied = {
        str(r["event_id"])
        for r in await query(database, "SELECT event_id FROM order_events WHERE outcome='applied'")
    }
    for case in valid:
        assert str(parsed[case["name"]].event_id) in applied, case["name"]
        if case.get("stored"):
            columns = ", ".join(case["stored"])
            rows = await query(
                database, f"SELECT {columns} FROM orders WHERE order_id='{order_of[case['name']]}'"
            )
            assert dict(rows[0]) == case["stored"], case["name"]
        for column, instant in case.get("instant", {}).items():
            rows = await query(
                database, f"SELECT {column} FROM orders WHERE order_id='{order_of[case['name']]}'"
            )
            assert rows[0][column].astimezone(UTC).isoformat() == instant, case["name"]
    assert len(applied) == len(setup) + len(valid)

    # Every invalid body is in the DLQ (with its reason) or in the quarantine table: never
    # dropped. The case at the size limit belongs in quarantine (its DLQ copy, with the
    # attributes, passes 256 KiB), but ministack does not enforce SQS's size limit and takes it.
    invalid = [c for c in sendable if c["outcome"] == "invalid"]
    kept = [r["body"] for r in await query(database, "SELECT body FROM quarantined_messages")]
    while len(kept) < len(invalid):
        response = await sqs.receive_message(
            QueueUrl=e2e_queues.dlq_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            WaitTimeSeconds=1,
        )
        messages = response.get("Messages", [])
        assert messages, f"DLQ and quarantine hold {len(kept)} of {len(invalid)}"
        for m in messages:
            assert m["MessageAttributes"]["invalid_reason"]["StringValue"]
            kept.append(m["Body"])
            await sqs.delete_message(QueueUrl=e2e_queues.dlq_url, ReceiptHandle=m["ReceiptHandle"])
    assert sorted(kept) == sorted(text_of(c) or " " for c in invalid)


@pytest.mark.slow
async def test_an_invalid_body_the_dlq_refuses_for_its_size_is_quarantined_not_dropped(
    sqs, e2e_queues, database, start_worker, proxy
):
    """The proxy enforces SQS's size limit on the DLQ copy (body plus the reason attributes),
    answering as SQS does; ministack alone takes any size."""
    from tests.support.sqs_proxy import Faults

    case = next(c for c in CASES if c.get("quarantine"))
    proxy.set(Faults(enforce_size_limit=True))
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    await queue.send(e2e_queues.url, [text_of(case)])
    start_worker(AWS_ENDPOINT_URL_SQS=proxy.endpoint)

    async def drained() -> bool:
        return await queue.depth(e2e_queues.url) == (0, 0)

    await wait_for(drained, 60, "the message to be handled")
    rows = await query(database, "SELECT body, reason FROM quarantined_messages")
    assert [r["body"] for r in rows] == [text_of(case)]
    assert case["reason"] in rows[0]["reason"]
    assert await queue.depth(e2e_queues.dlq_url) == (0, 0)
    assert proxy.counts.get("fault:too-large") == 1
