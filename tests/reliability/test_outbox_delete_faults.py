"""Adversarial tests of the outbox's delete-when-published (OUTBOX_RETENTION_HOURS 0) under SNS
faults, through the SNS fault proxy, against a real PostgreSQL and ministack SNS -> SQS: rounds
that time out while SNS took their rows (the other rows' deletes commit; the late ones go out
again, same id and body, each order still in sequence), and rows SNS refuses for good, parked,
never deleted, given back by `order-service outbox retry`, then published and deleted."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from order_service.adapters.outbox import PostgresOutbox
from order_service.adapters.sns import SnsTopic, sns_client
from order_service.bootstrap import relay_config
from order_service.entrypoints.local_servers import create_topic_with_queue
from order_service.metrics import Metrics
from order_service.service.relay import Relay
from order_service.settings import Settings
from tests.reliability.test_outbox_faults import assert_in_sequence
from tests.support.batches import lifecycles
from tests.support.database import query
from tests.support.downstream import check_downstream, receive_all
from tests.support.sns_proxy import SnsFaults
from tests.support.status_contract import validate_status_event
from tests.support.waiting import wait_for
from tests.support.worker import cli, worker_environment

pytestmark = pytest.mark.slow

DEFAULTS = Settings.model_construct()


async def rows_left(dsn: str) -> int:
    return int((await query(dsn, "SELECT count(*) AS n FROM order_outbox"))[0]["n"])


async def none_left(dsn: str) -> bool:
    return await rows_left(dsn) == 0


async def test_rounds_timing_out_while_sns_took_their_rows_lose_nothing_and_keep_sequence(
    outbox_store, database, sns, sqs, sns_proxy, monkeypatch
):
    """A third of the PublishBatch calls answered 2.5 s late against a 1 s round: those rows
    count as failed (not deleted) though SNS took them; the rest of the round is deleted in
    the claim's transaction. The late ones go out again: copies only of late rows."""
    await lifecycles(outbox_store, 20)  # 60 rows
    arn, downstream = await create_topic_with_queue(sns, sqs, f"slow-{uuid.uuid4().hex[:8]}")
    sns_proxy.set(SnsFaults(slow_rate=0.33, slow_seconds=2.5, seed=7))
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", sns_proxy.endpoint)
    outbox = PostgresOutbox(database)
    config = relay_config(DEFAULTS, claim_orders=5, round_seconds=1.0, max_backoff=1.0)
    async with sns_client("us-east-1") as client:
        relay = Relay(outbox, SnsTopic(client, arn, metrics=Metrics()), config, Metrics())
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        try:
            await wait_for(lambda: none_left(database), 120, "every row published and deleted")
        finally:
            stop.set()
            await task
            await outbox.close()
    assert sns_proxy.counts.get("fault:slow", 0) > 0
    bodies = await receive_all(sqs, downstream, expect=60, timeout=30)
    counts = await check_downstream(database, bodies, validate_status_event)
    assert counts["rows"] == 60
    copies: dict[str, int] = {}
    for body in bodies:
        copies[body["id"]] = copies.get(body["id"], 0) + 1
    beyond = {i: n for i, n in copies.items() if n > 1 + sns_proxy.late.get(i, 0)}
    assert not beyond, beyond  # a copy only of a row SNS answered late
    assert_in_sequence(sns_proxy.accepted)


async def test_a_row_sns_refuses_is_parked_kept_and_after_retry_published_and_deleted(
    outbox_store, database, sns, sqs, sns_proxy, monkeypatch, sqs_server
):
    held, other = (await lifecycles(outbox_store, 2))[:2]
    arn, downstream = await create_topic_with_queue(sns, sqs, f"park-{uuid.uuid4().hex[:8]}")
    sns_proxy.set(SnsFaults(refuse=frozenset({(held, 2)})))
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", sns_proxy.endpoint)
    outbox = PostgresOutbox(database)
    async with sns_client("us-east-1") as client:
        relay = Relay(
            outbox, SnsTopic(client, arn, metrics=Metrics()), relay_config(DEFAULTS), Metrics()
        )
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        try:
            await wait_for(lambda: relay.parked == 1, 30, "the refused row parked")
            await wait_for(lambda: _left_is(database, 2), 30, "the other rows deleted")
            await asyncio.sleep(1.5)  # a few more claims: the parked order stays whole
            left = await query(
                database, "SELECT aggregateid, sequence, parked_at FROM order_outbox"
            )
            assert sorted((str(r["aggregateid"]), r["sequence"]) for r in left) == [
                (held, 2),
                (held, 3),
            ]
            sns_proxy.set(SnsFaults())  # the cause fixed
            env = worker_environment(database, "http://127.0.0.1:1/q", "http://127.0.0.1:1/d", {})
            status = cli("outbox", "status", env=env)
            assert "parked rows:              1" in status.stdout, status.stdout
            assert "rows waiting behind them: 1" in status.stdout, status.stdout
            retried = cli("outbox", "retry", "--all", env=env)
            assert "given back to the relay: 1" in retried.stdout, retried.stderr
            await wait_for(lambda: none_left(database), 30, "the retried rows deleted")
        finally:
            stop.set()
            await task
            await outbox.close()
    bodies = await receive_all(sqs, downstream, expect=6, timeout=30)
    counts = await check_downstream(database, bodies, validate_status_event)
    assert counts == {"orders": 2, "rows": 6, "duplicates": 0}
    assert other


async def _left_is(dsn: str, n: int) -> bool:
    return await rows_left(dsn) == n
