"""Processing slower than the visibility timeout (with the heartbeat, and with it failing), and
the database stopped under load."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

import asyncpg
import pytest

from order_service.adapters.migrations import upgrade
from order_service.entrypoints.local_servers import LocalPostgres
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
    wait_backends,
    wait_progress,
)
from tests.reliability.model import expected_state
from tests.support.sqs_proxy import Faults
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_queues(visibility=VISIBILITY)]


def placed_only(seed: int, orders: int) -> list[str]:
    """Each message its own order: never deferred, so any second receive is a redelivery."""
    bodies = generate(orders, seed=seed, duplicate_rate=0, invalid_rate=0).bodies
    return [b for b in bodies if json.loads(b)["event_type"] == "order.placed"]


@pytest.mark.parametrize("run", runs(1, 3))
@pytest.mark.parametrize(
    "heartbeat",
    ["working", "failing"],
)
async def test_a_batch_slower_than_the_visibility_timeout(
    run, heartbeat, sqs, e2e_queues, database, start_worker, fast_env, proxy
):
    await install_hold(database)
    bodies = placed_only(900 + run, 600 if FULL else 300)
    if heartbeat == "failing":
        proxy.set(Faults(fail_actions={"ChangeMessageVisibilityBatch"}))
    # Two workers: a message whose visibility lapses is received again by the one with room
    # left, so a lapse always shows up as a redelivery. Both ready (their start-up probe
    # writes a known-good batch, which the hold would stop too) before anything is sent.
    started = [start_worker(AWS_ENDPOINT_URL_SQS=proxy.endpoint, **fast_env) for _ in range(2)]
    for worker in started:
        await wait_for(lambda w=worker: _ready(w), 30, "the worker to be ready")
    # Held from the first batch (a fast worker could drain 300 messages before a later hold).
    await set_hold(database, "write")
    queue = await send(sqs, e2e_queues, bodies)
    await wait_backends(database, "PgSleep")
    # The fault is the duration: the held batches outlive their visibility timeout 2.5 times.
    await asyncio.sleep(VISIBILITY * 2.5)
    await set_hold(database, None)
    fault_at = time.monotonic()
    figures = await measure(
        f"batch slower than visibility, heartbeat {heartbeat}",
        "deterministic",
        database,
        queue,
        bodies,
        fault_at=fault_at,
    )
    redelivered = sum(n > 1 for n in proxy.received.values())
    if heartbeat == "working":
        assert redelivered == 0
    else:
        assert redelivered > 0  # and absorbed: the invariants hold
    assert_invariants(figures)


async def _ready(worker) -> bool:
    return (await asyncio.to_thread(worker.get, "/ready"))[0] == 200


async def restarted(postgres: LocalPostgres, dsn: str) -> None:
    """pgserver skips the start when it finds the old postmaster still shutting down: retry
    until the server answers (a full run once ended with no server at all)."""

    async def answers() -> bool:
        await asyncio.to_thread(postgres.restart)
        try:
            await (await asyncpg.connect(dsn, timeout=5)).close()
        except (OSError, asyncpg.PostgresError):
            return False
        return True

    await wait_for(answers, 60, "PostgreSQL to start again", interval=0.5)


@pytest.mark.parametrize("run", runs(1, 2))
async def test_the_database_stopped_under_load(run, sqs, e2e_queues, start_worker, fast_env):
    outage = 30 if FULL else 5
    postgres = LocalPostgres(Path(tempfile.mkdtemp(prefix="order-service-pg-outage-")))
    dsn = postgres.start()
    await asyncio.to_thread(upgrade, dsn)
    try:
        bodies = generate(1200 if FULL else 150, seed=950 + run, out_of_order_rate=0.2).bodies
        queue = await send(sqs, e2e_queues, bodies)
        start_worker(DATABASE_URL=dsn, **fast_env)
        await wait_progress(dsn, len(expected_state(bodies).event_ids), 0.2)
        postgres.pg_ctl("stop", "-m", "fast")
        await asyncio.sleep(outage)  # the outage is the fault
        fault_at = time.monotonic()
        await restarted(postgres, dsn)
        assert_invariants(
            await measure(
                f"database stopped {outage} s under load",
                "-",
                dsn,
                queue,
                bodies,
                fault_at=fault_at,
            )
        )
    finally:
        postgres.stop()
