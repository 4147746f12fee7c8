"""Faults on a FIFO queue and DLQ (grouped by order, the contract's producer): SIGKILL at a
random moment among four workers, and a failing SQS endpoint through the fault proxy. After
every run: the suite's invariants (nothing lost or applied twice, every order as the model
says, every invalid body in the DLQ, the queue empty), plus the FIFO ones: every recorded
outcome is the contract's table applied in group order, and no valid event was deferred."""

from __future__ import annotations

import asyncio
import random
import signal
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from order_service.domain.batch import Snapshot, plan_batch
from order_service.domain.events import OrderEvent
from order_service.domain.lifecycle import Outcome
from order_service.domain.parsing import parse_body
from order_service.generator import generate
from tests.factories import body, cancelled, paid, placed
from tests.reliability.harness import (
    FULL,
    VISIBILITY,
    assert_invariants,
    measure,
    runs,
    send,
    wait_progress,
)
from tests.reliability.model import expected_state
from tests.support.database import query
from tests.support.sqs_proxy import Faults

# FIFO queues with the fault runs' short visibility (the shared e2e_queues fixture).
pytestmark = [pytest.mark.slow, pytest.mark.e2e_queues(fifo=True, visibility=VISIBILITY)]

ORDERS = 1200 if FULL else 150


def fifo_stream(seed: int) -> list[str]:
    """A producer that keeps each order's lifecycle order (as the contract asks of a FIFO
    producer), resends some events and sends a few invalid bodies inside groups; plus orders
    whose outcome depends on order (placed, cancelled, paid: the payment rejected)."""
    bodies = generate(
        ORDERS, seed=seed, duplicate_rate=0.05, out_of_order_rate=0, invalid_rate=0.01
    ).bodies
    for _ in range(ORDERS // 10):
        order = str(uuid.uuid4())
        bodies += [body(placed(order)), body(cancelled(order)), body(paid(order))]
    return bodies


async def assert_group_order(dsn: str, bodies: Sequence[str]) -> None:
    events = [e for e in map(parse_body, bodies) if isinstance(e, OrderEvent)]
    plan = plan_batch(events, Snapshot(frozenset(), {}))
    assert Outcome.DEFERRED not in {d.outcome for d in plan.decisions}
    expected = {str(r.event.event_id): r.outcome.value for r in plan.records}
    rows = await query(dsn, "SELECT event_id, outcome FROM order_events")
    recorded = {str(r["event_id"]): r["outcome"] for r in rows}
    wrong = {k: (v, expected.get(k)) for k, v in recorded.items() if expected.get(k) != v}
    assert recorded.keys() == expected.keys() and not wrong, wrong


def deferred(workers: Sequence[Any]) -> float:
    total = 0.0
    for worker in workers:
        if worker.process.poll() is None:
            samples = worker.metrics() or {}
            total += samples.get("order_messages_total", {}).get("deferred", 0)
    return total


@pytest.mark.parametrize("run", runs(1, 5))
async def test_fifo_sigkill_at_a_random_moment_among_four_workers(
    run, sqs, e2e_queues, database, start_worker, fast_env
):
    rng = random.Random(900 + run)
    bodies = fifo_stream(900 + run)
    total = len(expected_state(bodies).event_ids)
    queue = await send(sqs, e2e_queues, bodies)
    workers = [start_worker(**fast_env) for _ in range(4)]
    await wait_progress(database, total, rng.uniform(0.2, 0.7))
    victim = rng.choice(workers)
    victim.signal(signal.SIGKILL)
    assert await asyncio.to_thread(victim.wait, 10) == -signal.SIGKILL
    fault_at = time.monotonic()
    workers.append(start_worker(**fast_env))
    figures = await measure(
        "FIFO: SIGKILL at a random moment, 4 workers",
        "timing",
        database,
        queue,
        bodies,
        fault_at=fault_at,
    )
    assert_invariants(figures)
    await assert_group_order(database, bodies)
    assert deferred([w for w in workers if w is not victim]) == 0


@pytest.mark.parametrize("run", runs(1, 5))
async def test_fifo_a_failing_sqs_endpoint_keeps_every_group_in_order(
    run, sqs, e2e_queues, database, start_worker, fast_env, proxy
):
    """5xx, throttling and connection resets on every call (FIFO receives retried by the
    poller, with their attempt ids), a tenth of delete entries Failed: each such message stays
    in flight and holds its group until it comes back, as a duplicate."""
    proxy.set(
        Faults(
            error_rate=0.05, throttle_rate=0.05, reset_rate=0.03, failed_entry_rate=0.1, seed=run
        )
    )
    bodies = fifo_stream(950 + run)
    queue = await send(sqs, e2e_queues, bodies)
    started = time.monotonic()
    workers = [start_worker(AWS_ENDPOINT_URL_SQS=proxy.endpoint, **fast_env) for _ in range(2)]
    figures = await measure(
        "FIFO: SQS 5xx, throttling, resets, Failed entries",
        "-",
        database,
        queue,
        bodies,
        fault_at=started,
        timeout=240,
    )
    assert proxy.counts.get("fault:failed-entry", 0) > 0 and proxy.counts.get("fault:500", 0) > 0
    assert_invariants(figures)
    await assert_group_order(database, bodies)
    assert deferred(workers) == 0
