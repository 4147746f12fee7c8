"""The soak: 100,000 events of mixed lifecycles through the local stack, two workers, one of
them killed and restarted in the middle. Full run only (`make reliability`).

The producer keeps a few thousand messages queued rather than all 100,000 at once: ministack's
receive slows down with the queue's depth (about 7 events/s with 100,000 queued, here), which
would measure ministack, not the worker. A steady producer is also what production looks like."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from order_service.generator import generate
from tests.reliability.harness import (
    FULL,
    VISIBILITY,
    assert_invariants,
    measure,
    send,
    wait_progress,
)
from tests.reliability.model import expected_state

pytestmark = [
    pytest.mark.slow,
    pytest.mark.e2e_queues(visibility=VISIBILITY),
    pytest.mark.skipif(not FULL, reason="full run only (make reliability)"),
]
CHUNK = 2000


async def test_soak_100k_events_with_a_worker_killed_and_restarted(
    sqs, e2e_queues, database, start_worker, fast_env
):
    stream = generate(43_500, seed=42, duplicate_rate=0.05, out_of_order_rate=0.2)
    bodies = stream.bodies
    total = len(expected_state(bodies).event_ids)
    assert total >= 100_000
    env = {**fast_env, "LOG_LEVEL": "WARNING"}
    queue = await send(sqs, e2e_queues, bodies[:CHUNK])

    async def produce() -> None:
        for start in range(CHUNK, len(bodies), CHUNK):
            while (await queue.depth(e2e_queues.url))[0] > CHUNK:
                await asyncio.sleep(0.2)  # paced by the queue's depth, polled
            await queue.send(e2e_queues.url, bodies[start : start + CHUNK])

    producer = asyncio.create_task(produce())
    victim = start_worker(**env)
    start_worker(**env)
    await wait_progress(database, total, 0.4, timeout=3600)
    victim.signal(signal.SIGKILL)
    assert await asyncio.to_thread(victim.wait, 10) == -signal.SIGKILL
    fault_at = time.monotonic()
    start_worker(**env)
    await producer
    assert_invariants(
        await measure(
            "soak 100k events, worker killed and restarted",
            "timing",
            database,
            queue,
            bodies,
            fault_at=fault_at,
            timeout=3600,
        )
    )
