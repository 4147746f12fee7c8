"""The way out never stops or corrupts the way in (issue 21), against real worker processes
and their relays, real PostgreSQL and ministack SNS -> SQS through the SNS fault proxy: a
database that refuses the relay's retention, one order's row SNS refuses for good, a slow SNS,
status events holding characters SQS refuses, and a SIGTERM while the database and SNS are
blackholed. After each, the inbound invariants (harness.measure) and the outbound one (for
every order the sequences downstream are exactly 1..n, payloads the database's state, copies
only with the same id and body)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid

import pytest

from order_service.generator import generate
from tests.factories import body, paid, placed, shipped
from tests.reliability.harness import (
    FULL,
    VISIBILITY,
    applied,
    assert_invariants,
    downstream,
    measure,
    runs,
    send,
)
from tests.support.database import execute, query
from tests.support.downstream import receive_all
from tests.support.sns_proxy import SnsFaults
from tests.support.waiting import wait_for
from tests.support.worker import cli

pytestmark = [pytest.mark.slow, pytest.mark.e2e_queues(visibility=VISIBILITY)]

ORDERS = 600 if FULL else 60

REFUSE_DELETE_SQL = """
CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'order_outbox rows are kept here'; END $$;
CREATE TRIGGER refuse_delete BEFORE DELETE ON order_outbox
    FOR EACH ROW EXECUTE FUNCTION refuse_delete();
"""
# A table of someone else's that references published rows: deleting them fails (23503).
REFERENCE_SQL = """
CREATE TABLE outbox_audit (outbox_id uuid REFERENCES order_outbox (id));
CREATE FUNCTION audit_published() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.published_at IS NOT NULL THEN
        INSERT INTO outbox_audit VALUES (NEW.id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER audit_published AFTER UPDATE ON order_outbox
    FOR EACH ROW EXECUTE FUNCTION audit_published();
"""


def stream(seed: int) -> list[str]:
    return generate(
        ORDERS, seed=seed, duplicate_rate=0.05, out_of_order_rate=0.2, invalid_rate=0.01
    ).bodies


@pytest.mark.parametrize(
    "refusal",
    ["trigger", pytest.param("foreign key", marks=pytest.mark.skipif(not FULL, reason="full"))],
)
@pytest.mark.parametrize("run", runs(1, 2))
async def test_retention_the_database_refuses_never_stops_intake_or_publishing(
    run, refusal, sqs, e2e_queues, database, start_worker, fast_env, status_topic
):
    """Published rows kept about a second (OUTBOX_RETENTION_HOURS=0.0003; with 0 there is no
    retention: the delete ends the publication, tests/integration/test_relay_faults.py): a
    relay's retention runs at its start and every minute, and the database refuses it. A first
    worker publishes the first half and stops; the next one
    starts on published rows. Before: its relay died at once, the worker exited 1, and so did
    every restart: the second half was never consumed."""
    await execute(database, REFUSE_DELETE_SQL if refusal == "trigger" else REFERENCE_SQL)
    bodies = stream(2100 + run)
    queue = await send(sqs, e2e_queues, bodies[: len(bodies) // 2])
    env = {
        **fast_env,
        "ORDER_EVENTS_TOPIC_ARN": status_topic.arn,
        "OUTBOX_RETENTION_HOURS": "0.0003",
    }
    first = start_worker(**env)
    await wait_for(lambda: published(database), 60, "status events published")
    first.signal(signal.SIGTERM)
    assert await asyncio.to_thread(first.wait, 30) == 0
    await queue.send(e2e_queues.url, bodies[len(bodies) // 2 :])
    worker = start_worker(**env)
    scenario = f"outbox: retention refused by a {refusal}"
    assert_invariants(
        await measure(scenario, "-", database, queue, bodies, fault_at=time.monotonic())
    )
    await downstream(scenario, sqs, database, status_topic)
    assert worker.process is not None and worker.process.poll() is None  # still consuming
    lines = worker.log_path.read_text().splitlines()
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    refused = [e for e in logged if e.get("kind") == "database_refused"]
    assert refused and refused[0]["level"] == "error" and "order_outbox" in refused[0]["action"]


async def published(dsn: str) -> int:
    rows = await query(dsn, "SELECT count(*) n FROM order_outbox WHERE published_at IS NOT NULL")
    return int(rows[0]["n"])


def lifecycle(order: str, carrier: str = "DHL") -> list[str]:
    return [body(e) for e in (placed(order), paid(order), shipped(order, carrier=carrier))]


@pytest.mark.parametrize("run", runs(1, 3))
async def test_one_row_refused_for_good_is_parked_and_only_its_order_waits(
    run, sqs, e2e_queues, database, start_worker, fast_env, status_topic, sns_proxy
):
    """SNS refuses one order's second row for good (InvalidParameter) from the start. Before:
    the claim's failure backed the whole relay off, every claim, for every order."""
    bad = str(uuid.uuid4())
    sns_proxy.set(SnsFaults(refuse=frozenset({(bad, 2)}), seed=run))
    bodies = lifecycle(bad) + stream(2200 + run)
    queue = await send(sqs, e2e_queues, bodies)
    env = {**fast_env, "ORDER_EVENTS_TOPIC_ARN": status_topic.arn}
    worker = start_worker(**env, AWS_ENDPOINT_URL_SNS=sns_proxy.endpoint)
    scenario = "outbox: one row refused for good (parked, retried)"
    assert_invariants(
        await measure(scenario, "-", database, queue, bodies, fault_at=time.monotonic())
    )
    expected = await applied(database)
    first = await receive_all(sqs, status_topic.downstream_url, expect=expected - 2, timeout=90)
    assert sorted(b["sequence"] for b in first if b["order_id"] == bad) == [1]
    assert {b["order_id"] for b in first} == set(await applied_orders(database))
    parked = await query(
        database,
        "SELECT sequence, park_reason FROM order_outbox "
        "WHERE aggregateid = $1 AND parked_at IS NOT NULL",
        uuid.UUID(bad),
    )
    assert [(r["sequence"], r["park_reason"][:16]) for r in parked] == [(2, "InvalidParameter")]
    status = cli("outbox", "status", env=worker.env)
    assert "parked rows:              1\n" in status.stdout, status.stdout
    assert f"order {bad} #2 order.status.paid" in status.stdout
    await wait_for(lambda: parked_gauge(worker) == 1, 30, "the parked gauge to read 1")
    # The operator fixes the cause and retries: the order's sequence completes, in order.
    sns_proxy.set(SnsFaults())
    retried = cli("outbox", "retry", "--all", env=worker.env)
    assert "given back to the relay: 1" in retried.stdout, retried
    counts = await downstream(scenario, sqs, database, status_topic, first)
    assert counts["duplicates"] == 0


def parked_gauge(worker) -> float | None:
    return ((worker.metrics() or {}).get("order_service_outbox_parked_rows") or {}).get("")


async def applied_orders(dsn: str) -> list[str]:
    rows = await query(dsn, "SELECT DISTINCT order_id FROM order_events WHERE outcome = 'applied'")
    return [str(r["order_id"]) for r in rows]


@pytest.mark.parametrize(
    ("run", "slow_rate"),
    [(0, 0.5)] + ([(r, rate) for rate in (0.25, 0.5) for r in range(1, 3)] if FULL else []),
)
async def test_a_slow_sns_never_cuts_a_claim_and_copies_only_what_sns_answered_late(
    run, slow_rate, sqs, e2e_queues, database, start_worker, fast_env, status_topic, sns_proxy
):
    """A backlog (SNS held while the worker consumes), then PublishBatch calls answered 6 s
    late (past the SDK's 5 s read timeout: it sends them again). Before: a full claim's rounds
    ran past the 30 s idle limit, the claim was cut, its marks failed and its rows went out
    again, every row about 3.5 times."""
    sns_proxy.set(SnsFaults(hold=True))
    bodies = generate(200 if not FULL else 600, seed=2300 + run, invalid_rate=0).bodies
    queue = await send(sqs, e2e_queues, bodies)
    start_worker(
        **fast_env, ORDER_EVENTS_TOPIC_ARN=status_topic.arn, AWS_ENDPOINT_URL_SNS=sns_proxy.endpoint
    )
    scenario = f"outbox: SNS answers {slow_rate:.0%} of calls 6 s late"
    assert_invariants(
        await measure(scenario, "-", database, queue, bodies, fault_at=time.monotonic())
    )
    sns_proxy.release(drop=True)  # what the relay sent while held never reached SNS
    sns_proxy.set(SnsFaults(slow_rate=slow_rate, slow_seconds=6, seed=run))
    received: list[dict] = []
    # Half the calls 6 s late: the drain of a few hundred rows took past 90 s on a busy host.
    await downstream(scenario, sqs, database, status_topic, received=received, timeout=240)
    assert sns_proxy.counts.get("fault:slow", 0)
    # A row is published again only after an answer accepting it came too late to be heard
    # (the SDK sent it again): never because its claim was cut under the relay.
    copies: dict[str, int] = {}
    for event in received:
        copies[event["id"]] = copies.get(event["id"], 0) + 1
    beyond = {i: n for i, n in copies.items() if n > 1 + sns_proxy.late.get(i, 0)}
    assert not beyond, (len(beyond), sorted(beyond.values())[-5:])


@pytest.mark.parametrize("run", runs(1, 3))
async def test_status_events_holding_characters_sqs_refuses_reach_every_subscriber(
    run, sqs, e2e_queues, database, start_worker, fast_env, status_topic, sns_proxy
):
    """Carriers holding U+FFFE and U+FFFF (JSON escapes the incoming contract accepts). Real
    SNS cannot deliver such a body to SQS; ministack's fan-out does not check, so every body
    the relay published is handed to SQS's SendMessage too, which does (as real SQS)."""
    odd = [str(uuid.uuid4()) for _ in range(5)]
    bodies = [b for o in odd for b in lifecycle(o, carrier=f"C\ufffe{run}\uffff")]
    bodies += stream(2400 + run)
    queue = await send(sqs, e2e_queues, bodies)
    start_worker(
        **fast_env, ORDER_EVENTS_TOPIC_ARN=status_topic.arn, AWS_ENDPOINT_URL_SNS=sns_proxy.endpoint
    )
    scenario = "outbox: status events holding characters SQS refuses"
    assert_invariants(
        await measure(scenario, "-", database, queue, bodies, fault_at=time.monotonic())
    )
    counts = await downstream(scenario, sqs, database, status_topic)
    assert counts["duplicates"] == 0
    scratch = (await sqs.create_queue(QueueName=f"takes-{uuid.uuid4().hex[:12]}"))["QueueUrl"]
    for published in sns_proxy.bodies:  # refused (InvalidMessageContents) if SQS can't take it
        await sqs.send_message(QueueUrl=scratch, MessageBody=published)
    assert sum("\\ufffe" in b for b in sns_proxy.bodies) >= len(odd)


@pytest.mark.parametrize("run", runs(1, 3))
async def test_sigterm_with_the_database_and_sns_blackholed_exits_within_the_grace(
    run, sqs, e2e_queues, database, pg_proxy, start_worker, fast_env, status_topic, sns_proxy
):
    """The relay waits in a claim for a PublishBatch SNS never answers; the database stops
    answering; SIGTERM. Before: 21.5 s with a 10 s grace (a ROLLBACK on the dead connection
    waited for the 10 s command timeout after the relay's cancel)."""
    grace = 10
    bodies = stream(2500 + run)
    first, second = bodies[: len(bodies) // 2], bodies[len(bodies) // 2 :]
    queue = await send(sqs, e2e_queues, first)
    sns_proxy.set(SnsFaults(hold=True))
    worker = start_worker(
        **fast_env,
        DATABASE_URL=pg_proxy.dsn,
        SHUTDOWN_GRACE_SECONDS=str(grace),
        ORDER_EVENTS_TOPIC_ARN=status_topic.arn,
        AWS_ENDPOINT_URL_SNS=sns_proxy.endpoint,
    )
    await wait_for(lambda: sns_proxy.held > 0, 60, "a PublishBatch held")
    pg_proxy.blackholed = True
    await queue.send(e2e_queues.url, second)
    await asyncio.sleep(2)  # batches under way against a server that never answers
    worker.signal(signal.SIGTERM)
    stopped = time.monotonic()
    assert await asyncio.to_thread(worker.wait, grace + 30) == 0
    # The relay is ended within the grace whatever it waits for; the consumer's own hand-back
    # and the exit take the rest (the bound of the database-only scenario, test_database_faults).
    assert time.monotonic() - stopped < grace + 2  # gone before ECS's stop timeout
    pg_proxy.blackholed = False
    sns_proxy.release(drop=True)
    fault_at = time.monotonic()
    start_worker(**fast_env, ORDER_EVENTS_TOPIC_ARN=status_topic.arn)
    scenario = "outbox: SIGTERM, database and SNS blackholed"
    assert_invariants(await measure(scenario, "-", database, queue, bodies, fault_at=fault_at))
    await downstream(scenario, sqs, database, status_topic)
