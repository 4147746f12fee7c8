"""The relay's adapters under faults (issue 21), against a real PostgreSQL and ministack's SNS ->
SQS: a status event holding characters SQS refuses still reaches an SQS subscriber; a parked
row holds its order (and only it) out of the claims until `outbox retry`, and `outbox status`
lists it; retention refused by the database is reported while publishing goes on; a refused
delete of published rows sends them again, never loses them; a claim
cancelled while the database is blackholed ends at once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from structlog.testing import capture_logs

from order_service.adapters.outbox import PostgresOutbox
from order_service.adapters.sns import SnsTopic
from order_service.bootstrap import relay_config
from order_service.entrypoints.local_servers import create_topic_with_queue
from order_service.metrics import Metrics
from order_service.service.processing import BatchProcessor
from order_service.service.relay import Relay
from order_service.settings import Settings
from tests.factories import paid, placed, shipped
from tests.support.batches import lifecycles, messages
from tests.support.database import execute, query
from tests.support.downstream import check_downstream, receive_all
from tests.support.status_contract import validate_status_event
from tests.support.waiting import wait_for

DEFAULTS = Settings.model_construct()  # the settings' defaults
# Someone else's trigger on the service's table, refusing every DELETE.
REFUSE_DELETE_SQL = """
CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'order_outbox rows are kept'; END $$;
CREATE TRIGGER refuse_delete BEFORE DELETE ON order_outbox
    FOR EACH ROW EXECUTE FUNCTION refuse_delete();
"""


@pytest.fixture
async def outbox(database) -> AsyncIterator[PostgresOutbox]:
    o = PostgresOutbox(database)
    yield o
    await o.close()


async def raw_bodies(sqs, queue_url: str, expect: int) -> list[str]:
    bodies: list[str] = []
    for _ in range(20):
        response = await sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        bodies += [m["Body"] for m in response.get("Messages", [])]
        if len(bodies) >= expect:
            break
    return bodies


async def test_a_status_event_holding_characters_sqs_refuses_is_published_as_sqs_takes_it(
    outbox_store, database, outbox, sns, sqs
):
    """U+FFFE and U+FFFF: valid JSON escapes the incoming contract accepts, raw in
    PostgreSQL's rendering of the jsonb column. Real SNS cannot deliver such a body to SQS
    (InvalidMessageContents); ministack's fan-out does not check, so each body delivered is
    handed to SQS's SendMessage, which does (as real SQS)."""
    order, carrier = str(uuid.uuid4()), "DHL \ufffe\uffff"
    for step in (placed(order), paid(order), shipped(order, carrier=carrier)):
        await BatchProcessor(outbox_store).process(messages(step))
    arn, downstream = await create_topic_with_queue(sns, sqs, f"c-{uuid.uuid4().hex[:8]}")
    assert (
        await Relay(
            outbox, SnsTopic(sns, arn, metrics=Metrics()), relay_config(DEFAULTS), Metrics()
        ).publish_once()
        is False
    )
    bodies = await raw_bodies(sqs, downstream, expect=3)
    for body in bodies:
        await sqs.send_message(QueueUrl=downstream, MessageBody=body)  # refused if SQS can't
    parsed = [json.loads(b) for b in bodies]
    assert await check_downstream(database, parsed, validate_status_event) == {
        "orders": 1,
        "rows": 3,
        "duplicates": 0,
    }
    (last,) = [b for b in parsed if b["sequence"] == 3]
    assert last["shipment"]["carrier"] == carrier


async def sequence_row(dsn: str, order: str, sequence: int) -> uuid.UUID:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(
            "SELECT id FROM order_outbox WHERE aggregateid = $1 AND sequence = $2",
            uuid.UUID(order),
            sequence,
        )
    finally:
        await conn.close()


async def test_a_parked_row_holds_its_order_only_until_retried(outbox_store, database, outbox):
    held, other = await lifecycles(outbox_store, 2)  # three rows each
    first, parked_id = [await sequence_row(database, held, n) for n in (1, 2)]
    async with outbox.claim(10) as claim:
        assert {str(r.order_id) for r in claim.rows} == {held, other}
        await claim.mark_published([first])
        await claim.park({parked_id: "InvalidParameter: injected"})
    assert (await outbox.gauges()).parked == 1
    async with outbox.claim(10) as claim:
        assert {str(r.order_id) for r in claim.rows} == {other}  # the parked order waits
    status = await outbox.status()
    assert (status.parked, status.waiting_behind_parked, status.unpublished) == (1, 1, 3)
    (row,) = status.parked_rows
    assert (row.id, row.sequence, row.reason) == (parked_id, 2, "InvalidParameter: injected")
    assert await outbox.retry_parked([parked_id]) == 1
    async with outbox.claim(10) as claim:
        assert [r.sequence for r in claim.rows if str(r.order_id) == held] == [2, 3]
    assert (await outbox.gauges()).parked == 0


async def test_retention_refused_by_the_database_is_reported_and_publishing_goes_on(
    outbox_store, database, outbox, sns, sqs
):
    await execute(database, REFUSE_DELETE_SQL)
    arn, downstream = await create_topic_with_queue(sns, sqs, f"r-{uuid.uuid4().hex[:8]}")
    metrics = Metrics()
    # A retention (rows marked, deleted a millisecond later by a pass of its own): with none,
    # the delete is the publication's end, as a refused mark is (a claim that fails).
    config = relay_config(DEFAULTS, poll_interval=0.05, retention_seconds=0.001, retention_every=0)
    relay = Relay(outbox, SnsTopic(sns, arn, metrics=Metrics()), config, metrics)
    await lifecycles(outbox_store, 2)
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(relay.run(stop))
        bodies = await receive_all(sqs, downstream, expect=6, timeout=30)
        order = str(uuid.uuid4())
        await BatchProcessor(outbox_store).process(messages(placed(order)))  # while retention fails
        bodies += await receive_all(sqs, downstream, expect=1, timeout=30)
        assert not task.done()
        stop.set()
        await task
    assert (await check_downstream(database, bodies))["rows"] == 7
    refused = [e for e in logs if e.get("kind") == "database_refused"]
    assert refused and refused[0]["log_level"] == "error" and refused[0]["action"]


async def test_a_refused_delete_of_published_rows_republishes_them_and_loses_none(
    outbox_store, database, outbox, sns, sqs
):
    """No retention (the default): the DELETE ends each published row in the claim's
    transaction. Refused, the claim fails after SNS took its rows: they go out again (same id,
    same body) after the back-off, reported, until the refusal goes; then they are deleted."""
    await execute(database, REFUSE_DELETE_SQL)
    arn, downstream = await create_topic_with_queue(sns, sqs, f"r-{uuid.uuid4().hex[:8]}")
    config = relay_config(DEFAULTS, poll_interval=0.05, max_backoff=0.2)
    assert config.retention_seconds == 0
    relay = Relay(outbox, SnsTopic(sns, arn, metrics=Metrics()), config, Metrics())
    await lifecycles(outbox_store, 1)
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(relay.run(stop))
        bodies = await receive_all(sqs, downstream, expect=3, timeout=30)
        await wait_for(lambda: relay.published == 0 and len(refusals(logs)) >= 2, 10, "retries")
        await execute(database, "DROP TRIGGER refuse_delete ON order_outbox")
        await wait_for(lambda: relay.published == 3, 30, "the rows deleted")
        stop.set()
        await task
    bodies += await receive_all(sqs, downstream, expect=0, timeout=1)
    assert len(bodies) > 3  # sent again while the delete was refused
    assert (await check_downstream(database, bodies))["rows"] == 3  # copies: same id and body
    left = await query(database, "SELECT count(*) AS n FROM order_outbox")
    assert left[0]["n"] == 0
    assert refusals(logs)[0]["log_level"] == "error"


def refusals(logs: list[dict]) -> list[dict]:
    return [e for e in logs if e.get("kind") == "database_refused"]


async def test_a_claim_cancelled_while_the_database_is_blackholed_ends_at_once(
    outbox_store, pg_proxy
):
    await lifecycles(outbox_store, 1)
    outbox = PostgresOutbox(pg_proxy.dsn)
    claimed = asyncio.Event()

    async def claim_and_hang() -> None:
        async with outbox.claim(5) as claim:
            assert claim.rows
            claimed.set()
            await asyncio.Event().wait()  # a PublishBatch that never returns

    task = asyncio.create_task(claim_and_hang())
    await claimed.wait()
    pg_proxy.blackholed = True
    task.cancel()
    # Not a ROLLBACK that waits for the 10 s command timeout: the connection is terminated.
    done, _ = await asyncio.wait({task}, timeout=3)
    assert done
    await outbox.close()
