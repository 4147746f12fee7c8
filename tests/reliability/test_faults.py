"""Faults against the real worker process: SIGKILL at four points (held there by the database
or the SQS proxy, so the point is hit deterministically), SIGKILL at random moments, a killed
database connection, four workers on one queue with duplicates, SIGTERM during a long poll, and
a failing SQS endpoint. After every run: the invariants against the reference model."""

from __future__ import annotations

import asyncio
import random
import signal
import time

import asyncpg
import pytest

from order_service.generator import generate
from tests.reliability.harness import (
    FULL,
    VISIBILITY,
    assert_invariants,
    install_hold,
    measure,
    runs,
    send,
    set_hold,
    terminate,
    wait_backends,
    wait_progress,
)
from tests.reliability.model import expected_state
from tests.support.sqs_proxy import Faults
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_queues(visibility=VISIBILITY)]

ORDERS = 1200 if FULL else 150  # about 2.3 events an order: a few thousand events in full


def stream(seed: int, orders: int = ORDERS, duplicate_rate: float = 0.05) -> list[str]:
    return generate(
        orders, seed=seed, duplicate_rate=duplicate_rate, out_of_order_rate=0.2, invalid_rate=0.01
    ).bodies


async def kill(worker) -> None:
    worker.signal(signal.SIGKILL)
    assert await asyncio.to_thread(worker.wait, 10) == -signal.SIGKILL


def two_waves(bodies: list[str]) -> tuple[list[str], list[str]]:
    """The stream in two parts: the second is sent once the fault is armed, so there is always
    work for the fault to catch, however fast the worker drained the first."""
    cut = len(bodies) * 3 // 5
    return bodies[:cut], bodies[cut:]


@pytest.mark.parametrize("run", runs(1, 10))
async def test_sigkill_after_receive_before_any_write(
    run, sqs, e2e_queues, database, start_worker, fast_env
):
    """An exclusive lock on order_events stops the worker's transactions at their first read:
    messages are received and nothing is written when the kill lands."""
    bodies = stream(100 + run)
    first, rest = two_waves(bodies)
    queue = await send(sqs, e2e_queues, first)
    worker = start_worker(**fast_env)
    await wait_progress(database, len(expected_state(bodies).event_ids), 0.2)
    side = await asyncpg.connect(database)
    tx = side.transaction()
    await tx.start()
    await side.execute("LOCK TABLE order_events IN ACCESS EXCLUSIVE MODE")
    await queue.send(e2e_queues.url, rest)
    await wait_backends(database, "relation")
    assert (await queue.depth(e2e_queues.url))[1] > 0  # received, not deleted
    await kill(worker)
    fault_at = time.monotonic()
    await tx.rollback()
    await side.close()
    start_worker(**fast_env)
    assert_invariants(
        await measure(
            "SIGKILL after receive", "deterministic", database, queue, bodies, fault_at=fault_at
        )
    )


@pytest.mark.parametrize("run", runs(1, 10))
async def test_sigkill_in_the_middle_of_the_transaction(
    run, sqs, e2e_queues, database, start_worker, fast_env
):
    """A trigger holds the transaction after the orders and lines are written, before the
    events are: the kill lands with uncommitted writes."""
    await install_hold(database)
    bodies = stream(200 + run)
    first, rest = two_waves(bodies)
    queue = await send(sqs, e2e_queues, first)
    worker = start_worker(**fast_env)
    await wait_progress(database, len(expected_state(bodies).event_ids), 0.2)
    await set_hold(database, "write")
    await queue.send(e2e_queues.url, rest)
    await wait_backends(database, "PgSleep")
    await kill(worker)
    fault_at = time.monotonic()
    await set_hold(database, None)
    start_worker(**fast_env)
    assert_invariants(
        await measure(
            "SIGKILL mid-transaction", "deterministic", database, queue, bodies, fault_at=fault_at
        )
    )


@pytest.mark.parametrize("run", runs(1, 10))
@pytest.mark.parametrize(
    ("point", "hold"),
    [("after commit, before delete", "request"), ("mid batch delete", "response")],
)
async def test_sigkill_around_the_delete(
    run, point, hold, sqs, e2e_queues, database, start_worker, fast_env, proxy
):
    """The proxy holds DeleteMessageBatch: its request (the commit is done, SQS not told) or
    its response (SQS deleted this chunk of 10, the worker's other chunks not sent yet)."""
    bodies = stream(300 + run + (50 if hold == "response" else 0))
    first, rest = two_waves(bodies)
    queue = await send(sqs, e2e_queues, first)
    worker = start_worker(AWS_ENDPOINT_URL_SQS=proxy.endpoint, **fast_env)
    await wait_progress(database, len(expected_state(bodies).event_ids), 0.2)
    holding = {"DeleteMessageBatch"}
    proxy.set(
        Faults(
            hold_requests=holding if hold == "request" else set(),
            hold_responses=holding if hold == "response" else set(),
        )
    )
    await queue.send(e2e_queues.url, rest)

    async def held() -> bool:
        return proxy.held > 0

    await wait_for(held, 30, "a held DeleteMessageBatch", interval=0.05)
    await kill(worker)
    fault_at = time.monotonic()
    proxy.release(drop=True)
    start_worker(**fast_env)
    assert_invariants(
        await measure(
            f"SIGKILL {point}", "deterministic", database, queue, bodies, fault_at=fault_at
        )
    )


@pytest.mark.parametrize("run", runs(1, 10))
async def test_sigkill_at_a_random_moment(run, sqs, e2e_queues, database, start_worker, fast_env):
    rng = random.Random(run)
    bodies = stream(400 + run)
    total = len(expected_state(bodies).event_ids)
    queue = await send(sqs, e2e_queues, bodies)
    worker = start_worker(**fast_env)
    await wait_progress(database, total, rng.uniform(0.2, 0.8))
    await kill(worker)
    fault_at = time.monotonic()
    start_worker(**fast_env)
    assert_invariants(
        await measure(
            "SIGKILL at a random moment", "timing", database, queue, bodies, fault_at=fault_at
        )
    )


@pytest.mark.parametrize("run", runs(1, 5))
@pytest.mark.parametrize("point", ["write", "commit"])
async def test_database_connection_killed_mid_transaction_and_at_commit(
    run, point, sqs, e2e_queues, database, start_worker, fast_env
):
    """pg_terminate_backend on every worker connection held inside a transaction (after its
    writes) or inside COMMIT (a deferred trigger): the worker keeps running, and what was not
    committed comes back."""
    await install_hold(database)
    bodies = stream(500 + run + (50 if point == "commit" else 0))
    first, rest = two_waves(bodies)
    queue = await send(sqs, e2e_queues, first)
    start_worker(**fast_env)
    await wait_progress(database, len(expected_state(bodies).event_ids), 0.2)
    await set_hold(database, point)
    await queue.send(e2e_queues.url, rest)
    pids = await wait_backends(database, "PgSleep")
    await terminate(database, pids)
    fault_at = time.monotonic()
    await set_hold(database, None)
    where = "mid-transaction" if point == "write" else "at commit"
    assert_invariants(
        await measure(
            f"DB connection killed {where}",
            "deterministic",
            database,
            queue,
            bodies,
            fault_at=fault_at,
        )
    )


@pytest.mark.parametrize("run", runs(1, 3))
async def test_four_workers_on_one_queue_with_events_delivered_two_or_three_times(
    run, sqs, e2e_queues, database, start_worker, fast_env
):
    rng = random.Random(run)
    bodies = stream(600 + run, duplicate_rate=0)
    again = rng.sample(bodies, k=len(bodies) // 10)
    bodies += again + rng.sample(again, k=len(again) // 2)
    rng.shuffle(bodies)
    started = time.monotonic()
    # A deferral budget longer than the visibility timeout (1, 4, 16, 30 s): with the shorter
    # one of `fast_env` valid events reach the DLQ (see test_findings.py).
    env = {**fast_env, "RETRY_BASE_SECONDS": "1", "RETRY_MAX_SECONDS": "30"}
    for _ in range(4):
        start_worker(**env)
    queue = await send(sqs, e2e_queues, bodies)
    assert_invariants(
        await measure(
            "4 workers, 10% delivered 2-3 times, retries 1-30 s",
            "-",
            database,
            queue,
            bodies,
            fault_at=started,
        )
    )


@pytest.mark.parametrize("run", runs(1, 3))
async def test_sigterm_during_a_long_poll_exits_zero_and_loses_nothing(
    run, sqs, e2e_queues, database, start_worker, fast_env, proxy
):
    worker = start_worker(
        **{**fast_env, "SQS_WAIT_TIME_SECONDS": "20", "AWS_ENDPOINT_URL_SQS": proxy.endpoint}
    )

    async def polling() -> bool:
        return proxy.counts.get("ReceiveMessage", 0) > 0

    await wait_for(polling, 30, "a long poll")
    bodies = stream(700 + run)
    queue = await send(sqs, e2e_queues, bodies[:50])  # some arrive while it is stopping
    worker.signal(signal.SIGTERM)
    fault_at = time.monotonic()
    assert await asyncio.to_thread(worker.wait, 15) == 0
    assert time.monotonic() - fault_at < 10 + 2  # SHUTDOWN_GRACE_SECONDS + margin
    await queue.send(e2e_queues.url, bodies[50:])
    start_worker(**fast_env)
    assert_invariants(
        await measure("SIGTERM during long poll", "-", database, queue, bodies, fault_at=fault_at)
    )


@pytest.mark.parametrize("run", runs(1, 5))
async def test_a_failing_sqs_endpoint_loses_nothing(
    run, sqs, e2e_queues, database, start_worker, fast_env, proxy
):
    """5xx, throttling and connection resets on every call; a tenth of delete entries Failed."""
    proxy.set(
        Faults(
            error_rate=0.05, throttle_rate=0.05, reset_rate=0.03, failed_entry_rate=0.1, seed=run
        )
    )
    bodies = stream(800 + run)
    queue = await send(sqs, e2e_queues, bodies)
    started = time.monotonic()
    start_worker(AWS_ENDPOINT_URL_SQS=proxy.endpoint, **fast_env)
    figures = await measure(
        "SQS 5xx, throttling, resets, Failed entries",
        "-",
        database,
        queue,
        bodies,
        fault_at=started,
    )
    assert proxy.counts.get("fault:failed-entry", 0) > 0 and proxy.counts.get("fault:500", 0) > 0
    assert_invariants(figures)
