"""The worker as a separate process against real PostgreSQL and SQS endpoints."""

from __future__ import annotations

import asyncio
import signal
import tempfile
import time
from pathlib import Path

import pytest

from order_service.adapters.sqs import SqsQueue
from order_service.generator import generate
from order_service.metrics import Metrics
from tests.support.database import query
from tests.support.waiting import wait_for


async def drained(queue: SqsQueue, url: str) -> bool:
    return await queue.depth(url) == (0, 0)


async def assert_contract_outcome(database, stream, queue: SqsQueue, queues) -> None:
    """Every order in the state its lifecycle ends in, each line once, each event once."""
    orders = {
        str(r["order_id"]): r["status"]
        for r in await query(database, "SELECT order_id, status FROM orders")
    }
    assert orders == stream.final_status
    lines = await query(database, "SELECT order_id, count(*) n FROM order_items GROUP BY 1")
    assert {str(r["order_id"]): r["n"] for r in lines} == stream.line_counts
    events = await query(database, "SELECT event_id FROM order_events")
    assert {str(r["event_id"]) for r in events} == stream.event_ids  # each once (primary key)
    assert await queue.depth(queues.url) == (0, 0)
    assert (await queue.depth(queues.dlq_url))[0] == stream.invalid


async def test_a_stream_with_duplicates_out_of_order_and_invalid_ends_as_the_contract_says(
    sqs, e2e_queues, database, start_worker
):
    stream = generate(1000, seed=7, duplicate_rate=0.1, out_of_order_rate=0.2, invalid_rate=0.01)
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    await queue.send(e2e_queues.url, stream.bodies)
    started = time.monotonic()
    worker = start_worker()
    await wait_for(lambda: drained(queue, e2e_queues.url), 120, "the queue to drain")
    elapsed = time.monotonic() - started
    print(
        f"\n{len(stream.bodies)} messages in {elapsed:.1f}s: "
        f"{len(stream.bodies) / elapsed:.0f} msgs/s end to end"
    )
    await assert_contract_outcome(database, stream, queue, e2e_queues)
    dlq = await sqs.receive_message(
        QueueUrl=e2e_queues.dlq_url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        WaitTimeSeconds=1,
    )
    assert all(m["MessageAttributes"]["invalid_reason"]["StringValue"] for m in dlq["Messages"])
    status, metrics = worker.get("/metrics")
    assert status == 200 and 'order_messages_total{outcome="applied"}' in metrics
    ready = {"queue_type": "standard", "ok": ["database", "sqs"], "failing": {}}
    assert worker.get("/ready") == (200, ready)


async def worker_under_load(sqs, e2e_queues, database, start_worker, *, seed, fraction):
    """Sends a stream, starts a worker and returns once `fraction` of its events committed."""
    stream = generate(1500, seed=seed, invalid_rate=0)
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    await queue.send(e2e_queues.url, stream.bodies)
    worker = start_worker()

    async def progress() -> bool:
        rows = await query(database, "SELECT count(*) n FROM order_events")
        return rows[0]["n"] >= len(stream.event_ids) * fraction

    await wait_for(progress, 60, f"{fraction:.0%} progress")
    return stream, queue, worker


async def test_sigterm_under_load_drains_and_exits_zero_within_the_grace_period(
    sqs, e2e_queues, database, start_worker
):
    stream, queue, worker = await worker_under_load(
        sqs, e2e_queues, database, start_worker, seed=8, fraction=0.2
    )
    worker.signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    assert await asyncio.to_thread(worker.wait, 15) == 0
    assert time.monotonic() - stopped_at < 10 + 2  # SHUTDOWN_GRACE_SECONDS + margin
    # Prefetched messages were handed back: a second worker finishes without waiting for
    # visibility timeouts, and nothing is lost or applied twice.
    start_worker()
    await wait_for(lambda: drained(queue, e2e_queues.url), 60, "the queue to drain")
    await assert_contract_outcome(database, stream, queue, e2e_queues)


async def test_sigkill_under_load_then_restart_loses_nothing_and_doubles_nothing(
    sqs, e2e_queues, database, start_worker
):
    stream, queue, worker = await worker_under_load(
        sqs, e2e_queues, database, start_worker, seed=9, fraction=0.25
    )
    worker.signal(signal.SIGKILL)
    assert await asyncio.to_thread(worker.wait, 5) == -signal.SIGKILL
    start_worker()
    await wait_for(lambda: drained(queue, e2e_queues.url), 90, "the queue to drain")
    await assert_contract_outcome(database, stream, queue, e2e_queues)


async def test_dummy_mode_serves_health_with_nothing_configured(start_worker, worker_env):
    env = {k: "" for k in ("DATABASE_URL", "SQS_QUEUE_URL", "SQS_DLQ_URL")}
    worker = start_worker(WORKER_MODE="dummy", **env)
    assert worker.get("/health") == (200, {"status": "ok"})
    worker.signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 10) == 0


@pytest.mark.slow
async def test_database_down_health_stays_up_ready_fails_and_work_resumes(
    sqs, e2e_queues, start_worker
):
    from order_service.adapters.migrations import upgrade
    from order_service.entrypoints.local_servers import LocalPostgres

    postgres = LocalPostgres(Path(tempfile.mkdtemp(prefix="order-service-pg-down-")))
    dsn = postgres.start()
    await asyncio.to_thread(upgrade, dsn)
    try:
        queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
        first = generate(200, seed=10, invalid_rate=0)
        await queue.send(e2e_queues.url, first.bodies)
        worker = start_worker(DATABASE_URL=dsn)
        await wait_for(lambda: drained(queue, e2e_queues.url), 60, "the first half")

        postgres.pg_ctl("stop", "-m", "fast")
        second = generate(200, seed=11, invalid_rate=0)
        await queue.send(e2e_queues.url, second.bodies)
        status, body = worker.get("/ready")
        assert status == 503 and "database" in body["failing"] and body["ok"] == ["sqs"]
        assert worker.get("/health") == (200, {"status": "ok"})
        await asyncio.sleep(3)  # the outage lasts a while under load
        assert worker.get("/health")[0] == 200

        postgres.restart()
        await wait_for(lambda: drained(queue, e2e_queues.url), 90, "work to resume")
        assert worker.get("/ready")[0] == 200
        rows = await query(dsn, "SELECT event_id FROM order_events")
        assert {str(r["event_id"]) for r in rows} == first.event_ids | second.event_ids
        orders = {
            str(r["order_id"]): r["status"]
            for r in await query(dsn, "SELECT order_id, status FROM orders")
        }
        assert orders == {**first.final_status, **second.final_status}
    finally:
        postgres.stop()
