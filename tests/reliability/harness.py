"""What every fault run shares: sending a stream, draining, the invariant check, recording
the figures, and the database-side holds that make a kill land at a chosen point."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg

from order_service.adapters.sqs import SqsQueue
from order_service.metrics import Metrics
from tests.reliability.model import expected_state
from tests.support.database import execute, query
from tests.support.downstream import check_downstream, receive_all
from tests.support.status_contract import validate_status_event
from tests.support.waiting import wait_for

FULL = os.environ.get("RELIABILITY_FULL") == "1"
# Seconds, the least the settings allow: a killed worker's messages return fast (each module's
# queues through its `e2e_queues` mark, the worker through `fast_env`).
VISIBILITY = 5
RESULTS = Path(os.environ.get("RELIABILITY_RESULTS", "/tmp/order-service-reliability.jsonl"))


def runs(fast: int, full: int) -> list[int]:
    return list(range(full if FULL else fast))


@dataclass
class Figures:
    scenario: str
    kill_point: str  # "deterministic", "timing", or "-"
    messages: int
    events: int
    lost: int  # valid events sent and never recorded
    double_applied: int  # order lines beyond the order's own, or rows no event explains
    mismatches: int  # orders whose status or lines differ from the reference model
    dlq_mismatch: int  # invalid bodies missing from the DLQ, plus DLQ bodies not invalid
    dlq_extra_copies: int  # second copies of an invalid body (crash between DLQ send and delete)
    queue_left: int  # messages still in the main queue
    recover_seconds: float
    drained: bool

    @property
    def ok(self) -> bool:
        return self.drained and not (
            self.lost
            or self.double_applied
            or self.mismatches
            or self.dlq_mismatch
            or self.queue_left
        )


async def send(sqs: Any, queues: Any, bodies: Sequence[str]) -> SqsQueue:
    queue = SqsQueue(sqs, queues.url, queues.dlq_url, metrics=Metrics())
    await queue.send(queues.url, bodies)
    return queue


async def recorded(dsn: str) -> int:
    rows = await query(dsn, "SELECT count(*) n FROM order_events")
    return int(rows[0]["n"])


async def wait_progress(dsn: str, total: int, share: float, timeout: float = 90) -> None:
    async def enough() -> bool:
        return await recorded(dsn) >= total * share

    await wait_for(enough, timeout, f"{share:.0%} progress")


async def drain(dsn: str, queue: SqsQueue, total: int, timeout: float) -> bool:
    """Waits until every valid event is recorded and the main queue is empty."""

    async def done() -> bool:
        return await recorded(dsn) >= total and await queue.depth(queue.queue_url) == (0, 0)

    try:
        await wait_for(done, timeout, "the queue to drain", interval=0.25)
    except AssertionError:
        return False
    return True


async def measure(
    scenario: str,
    kill_point: str,
    dsn: str,
    queue: SqsQueue,
    bodies: Sequence[str],
    *,
    fault_at: float,
    timeout: float = 120,
) -> Figures:
    """Drains, checks the invariants against the reference model, records the figures."""
    expected = expected_state(bodies)
    drained = await drain(dsn, queue, len(expected.event_ids), timeout)
    recover = time.monotonic() - fault_at
    events = {str(r["event_id"]) for r in await query(dsn, "SELECT event_id FROM order_events")}
    status = {
        str(r["order_id"]): r["status"]
        for r in await query(dsn, "SELECT order_id, status FROM orders")
    }
    lines = {
        str(r["order_id"]): r["n"]
        for r in await query(dsn, "SELECT order_id, count(*) n FROM order_items GROUP BY 1")
    }
    orders = set(status) | set(expected.status)
    extra_lines = sum(max(0, n - expected.lines.get(o, 0)) for o, n in lines.items())
    visible, hidden = await queue.depth(queue.queue_url)
    dead = await dlq_bodies(queue)
    invalid = set(expected.invalid_bodies)
    figures = Figures(
        scenario=scenario,
        kill_point=kill_point,
        messages=len(bodies),
        events=len(expected.event_ids),
        lost=len(expected.event_ids - events),
        double_applied=extra_lines + len(events - expected.event_ids),
        mismatches=sum(
            status.get(o) != expected.status.get(o) or lines.get(o, 0) != expected.lines.get(o, 0)
            for o in orders
        ),
        dlq_mismatch=len(invalid - set(dead)) + sum(b not in invalid for b in dead),
        dlq_extra_copies=len(dead) - len(set(dead)) - (len(expected.invalid_bodies) - len(invalid)),
        queue_left=visible + hidden,
        recover_seconds=round(recover, 2),
        drained=drained,
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps({**asdict(figures), "full": FULL}) + "\n")
    return figures


async def dlq_bodies(queue: SqsQueue) -> list[str]:
    """Every body in the DLQ (each received once, hidden for the rest of the run)."""
    bodies: list[str] = []
    while True:
        response = await queue._client.receive_message(
            QueueUrl=queue.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=300, WaitTimeSeconds=0
        )
        messages = response.get("Messages", [])
        if not messages:
            return bodies
        bodies += [m["Body"] for m in messages]


def record_outbound(scenario: str, passed: bool, counts: dict[str, int]) -> None:
    """The way out's figures of one run (tests/support/downstream.check_downstream's counts:
    orders, distinct rows received, extra copies), beside the inbound ones."""
    row = {"outbound": True, "scenario": scenario, "passed": passed, **counts, "full": FULL}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps(row) + "\n")


async def applied(dsn: str) -> int:
    rows = await query(dsn, "SELECT count(*) n FROM order_events WHERE outcome = 'applied'")
    return int(rows[0]["n"])


async def downstream(
    scenario: str,
    sqs: Any,
    dsn: str,
    topic: Any,
    first: Sequence[dict] = (),
    received: list[dict] | None = None,
    timeout: float = 90,
) -> dict[str, int]:
    """Receives the rest of the status events (after `first`; all of them also into
    `received`) for `timeout` seconds at most, checks the way out's invariant and records the
    run's figures (docs/reliability.md, "Outbox faults")."""
    bodies = list(first) + await receive_all(
        sqs, topic.downstream_url, expect=await applied(dsn), timeout=timeout
    )
    if received is not None:
        received.extend(bodies)
    try:
        counts = await check_downstream(dsn, bodies, validate_status_event)
    except AssertionError:
        record_outbound(scenario, False, {})
        raise
    record_outbound(scenario, True, counts)
    return counts


def assert_invariants(figures: Figures) -> None:
    assert figures.ok, figures


# Database-side holds: a kill then lands at a known point of the worker's transaction.

HOLD_SQL = """
CREATE TABLE IF NOT EXISTS reliability_hold (point text);
INSERT INTO reliability_hold VALUES (NULL);
CREATE OR REPLACE FUNCTION reliability_hold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A new snapshot per loop (READ COMMITTED): the test ends the hold by clearing the point.
    WHILE (SELECT point FROM reliability_hold) = TG_ARGV[0] LOOP
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN NULL;
END $$;
-- "write": after the orders and lines are written, before the events are.
CREATE TRIGGER reliability_hold_write BEFORE INSERT ON order_events
    FOR EACH STATEMENT EXECUTE FUNCTION reliability_hold('write');
-- "commit": a deferred constraint trigger runs inside COMMIT, after every write.
CREATE CONSTRAINT TRIGGER reliability_hold_commit AFTER INSERT ON order_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION reliability_hold('commit');
"""


async def install_hold(dsn: str) -> None:
    await execute(dsn, HOLD_SQL)


async def set_hold(dsn: str, point: str | None) -> None:
    """Holds the worker's transactions at `point` ("write" or "commit"); None lets them go."""
    await execute(dsn, "UPDATE reliability_hold SET point = $1", point)


async def worker_backends(dsn: str, wait_event: str) -> list[int]:
    """Backends of this database (other than ours) waiting on `wait_event`."""
    rows = await query(
        dsn,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        f"AND pid <> pg_backend_pid() AND wait_event = '{wait_event}'",
    )
    return [r["pid"] for r in rows]


async def wait_backends(dsn: str, wait_event: str, timeout: float = 30) -> list[int]:
    found: list[int] = []

    async def some() -> bool:
        found[:] = await worker_backends(dsn, wait_event)
        return bool(found)

    await wait_for(some, timeout, f"a worker transaction waiting on {wait_event}", interval=0.05)
    return found


async def terminate(dsn: str, pids: Sequence[int]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for pid in pids:
            await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()
