"""The way out, end to end: real worker processes (their relays), real PostgreSQL, ministack
SNS -> SQS. For every order the sequences that reach the downstream queue are exactly 1..n,
each payload the database's state at that step."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

from order_service.adapters.cloudwatch_emf import OUTBOX_LAG
from order_service.adapters.sqs import SqsQueue
from order_service.entrypoints.local_servers import free_port
from order_service.generator import generate
from order_service.metrics import Metrics
from tests.support.database import query
from tests.support.downstream import check_downstream, receive_all
from tests.support.status_contract import validate_status_event
from tests.support.waiting import wait_for
from tests.support.worker import cli


async def applied_events(database: str) -> int:
    rows = await query(database, "SELECT count(*) n FROM order_events WHERE outcome = 'applied'")
    return int(rows[0]["n"])


async def drained(queue: SqsQueue, url: str) -> bool:
    return await queue.depth(url) == (0, 0)


async def test_a_workers_relay_publishes_every_status_change_once_in_sequence(
    sqs, e2e_queues, database, start_worker, status_topic
):
    stream = generate(150, seed=21, duplicate_rate=0.1, out_of_order_rate=0.2, invalid_rate=0.02)
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    await queue.send(e2e_queues.url, stream.bodies)
    worker = start_worker(ORDER_EVENTS_TOPIC_ARN=status_topic.arn)
    await wait_for(lambda: drained(queue, e2e_queues.url), 120, "the queue to drain")
    expected = await applied_events(database)
    bodies = await receive_all(sqs, status_topic.downstream_url, expect=expected)
    counts = await check_downstream(database, bodies, validate_status_event)
    assert counts["rows"] == expected and counts["orders"] == len(stream.final_status)
    metrics = worker.metrics() or {}
    assert metrics["order_outbox_published_total"][""] == expected
    worker.signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 15) == 0


async def test_without_the_relay_in_the_worker_rows_wait_for_the_relay_command(
    sqs, e2e_queues, database, start_worker, status_topic, worker_env, tmp_path
):
    stream = generate(40, seed=22, invalid_rate=0)
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    await queue.send(e2e_queues.url, stream.bodies)
    env = {**worker_env, "ORDER_EVENTS_TOPIC_ARN": status_topic.arn}
    worker = start_worker(
        ORDER_EVENTS_TOPIC_ARN=status_topic.arn,
        OUTBOX_RELAY_IN_WORKER="false",
        EMF_INTERVAL_SECONDS="1",
    )
    await wait_for(lambda: drained(queue, e2e_queues.url), 120, "the queue to drain")
    expected = await applied_events(database)
    status = cli("outbox", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert f"unpublished rows:         {expected}\n" in status.stdout

    log = (tmp_path / "relay.log").open("w")
    relay = subprocess.Popen(
        [sys.executable, "-m", "order_service.entrypoints.cli", "relay"],
        env={**env, "HEALTH_PORT": str(free_port()), "EMF_INTERVAL_SECONDS": "1"},
        stdout=log,
        stderr=log,
    )
    try:
        bodies = await receive_all(sqs, status_topic.downstream_url, expect=expected)
        assert (await check_downstream(database, bodies, validate_status_event))["rows"] == expected
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(15) == 0
    finally:
        if relay.poll() is None:
            relay.kill()
        log.close()
    after = cli("outbox", "status", env=env)
    assert "unpublished rows:         0\n" in after.stdout, after.stdout
    assert "published rows retained:  0\n" in after.stdout  # deleted when published
    assert "(no published row kept" in after.stdout
    # Whoever relays reports the lag, in EMF too (the stack's alarm reads it); a worker that
    # does not relay reports none, never a 0 it did not measure.
    relay_lag = emf_values(tmp_path / "relay.log", OUTBOX_LAG)
    assert relay_lag and all(v >= 0 for v in relay_lag)
    assert emf_lines(worker.log_path) and not emf_values(worker.log_path, OUTBOX_LAG)


def emf_lines(log: Path) -> list[dict]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


def emf_values(log: Path, metric: str) -> list[float]:
    return [line[metric] for line in emf_lines(log) if metric in line]


def test_the_relay_command_without_a_topic_is_one_line_and_exit_2(worker_env):
    result = cli("relay", env=worker_env)
    assert result.returncode == 2 and "ORDER_EVENTS_TOPIC_ARN" in result.stderr
    assert "Traceback" not in result.stderr
