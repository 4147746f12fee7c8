"""A rollout with the build from before the outbox still running (issue 21 item 5): the old
build (commit OLD_BUILD, git's own copy of it) consumes on its schema, `migrate` runs under it,
the new build joins with its relay and both consume the same queue until the old one stops.
Every applied change, whichever build applied it, reaches the downstream queue: for every
order the sequences 1..n, each payload the state after its event (tests/support/downstream)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from order_service.adapters.sqs import SqsQueue
from order_service.generator import generate
from order_service.metrics import Metrics
from tests.support.database import query
from tests.support.downstream import check_downstream, receive_all
from tests.support.old_builds import source_at
from tests.support.queues import sqs_env
from tests.support.status_contract import validate_status_event
from tests.support.waiting import wait_for
from tests.support.worker import WorkerProcess, cli, worker_environment

# The last commit before the outbox (0c5d71d added migration 0003 and the outbox rows).
OLD_BUILD = "5df74b810186752db0e364a5b6a8ac41501856d8"


@pytest.fixture(scope="module")
def old_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The old build's `src/`, from this clone's history."""
    return source_at(OLD_BUILD, tmp_path_factory.mktemp("old-build"))


async def applied_events(dsn: str) -> int:
    rows = await query(dsn, "SELECT count(*) n FROM order_events WHERE outcome = 'applied'")
    return int(rows[0]["n"])


async def test_changes_an_old_build_applies_across_migrate_are_all_published_in_sequence(
    old_build, empty_database, e2e_queues, sqs, sqs_server, status_topic, tmp_path
):
    base = worker_environment(
        empty_database,
        e2e_queues.url,
        e2e_queues.dlq_url,
        sqs_env(sqs_server.endpoint),
        SQS_WAIT_TIME_SECONDS="1",
        SQS_VISIBILITY_TIMEOUT="30",
        RETRY_BASE_SECONDS="1",
        SHUTDOWN_GRACE_SECONDS="10",
    )
    old_env = {**base, "PYTHONPATH": str(old_build)}
    migrated = cli("migrate", env=old_env)  # the old build's own schema (0002)
    assert migrated.returncode == 0, migrated.stderr
    stream = generate(45, seed=51, duplicate_rate=0.05, out_of_order_rate=0.1, invalid_rate=0)
    third = len(stream.bodies) // 3
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    await queue.send(e2e_queues.url, stream.bodies[:third])
    old = WorkerProcess(old_env, tmp_path / "old.log").start()
    new: WorkerProcess | None = None
    try:
        await wait_for(lambda: _drained(queue, e2e_queues.url), 60, "the old build's first third")
        migrated = cli("migrate", env=base)  # the deploy's migration, the old build running
        assert migrated.returncode == 0, migrated.stderr
        # What 0003 counted (applied before the outbox existed) is history, never published.
        before = {
            str(r["order_id"]): r["last_sequence"]
            for r in await query(empty_database, "SELECT order_id, last_sequence FROM orders")
        }
        # The old build alone on the migrated schema: what it changes waits in the backlog.
        await queue.send(e2e_queues.url, stream.bodies[third : 2 * third])
        await wait_for(lambda: _noted(empty_database), 60, "the old build to change an order")
        new_env = {**base, "ORDER_EVENTS_TOPIC_ARN": status_topic.arn}
        new_env["HEALTH_PORT"] = str(int(base["HEALTH_PORT"]) + 1)
        new = WorkerProcess(new_env, tmp_path / "new.log").start()
        await queue.send(e2e_queues.url, stream.bodies[2 * third :])
        await asyncio.sleep(2)  # both consume for a while, then the old one is replaced
        old.signal(signal.SIGTERM)
        assert await asyncio.to_thread(old.wait, 20) == 0
        await wait_for(lambda: _drained(queue, e2e_queues.url), 120, "the queue to drain")
        await wait_for(lambda: _caught_up(empty_database), 30, "the backlog to be caught up")
        expected = await applied_events(empty_database)
        bodies = await receive_all(sqs, status_topic.downstream_url, expect=expected, timeout=90)
    finally:
        for worker in (old, new):
            if worker is not None:
                worker.stop()
    counts = await check_downstream(empty_database, bodies, validate_status_event, before)
    assert counts["rows"] == expected - sum(before.values())


async def _noted(dsn: str) -> bool:
    """Orders changed without their status events, waiting for the catch-up."""
    rows = await query(dsn, "SELECT count(*) AS n FROM order_status_backlog")
    return rows[0]["n"] > 0


async def _caught_up(dsn: str) -> bool:
    return not await _noted(dsn)


async def _drained(queue: SqsQueue, url: str) -> bool:
    return await queue.depth(url) == (0, 0)
