"""Adversarial tests of the outbox's delete-when-published (OUTBOX_RETENTION_HOURS 0, the
default) against a real PostgreSQL and ministack's SNS -> SQS: what the database may do to the
relay's DELETE (refuse it loudly, refuse part of a claim, or skip it without a word), a
retention switched between restarts with a backlog, parked rows retried, the catch-up of an
older build's changes after the earlier rows were deleted when published, and `outbox status`
in both modes. Two found bugs, fixed since (each test failed before its fix): a delete skipped
without an error was taken for done and the rows sent again at every poll, unreported
(adapters/outbox.py `_all_done`); a claim refused after a round's delete (a later round, or a
deferred foreign key at COMMIT) counted its rolled-back rows as published and backed off 0.5 s
for ever instead of doubling (service/relay.py counts after the commit)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from order_service.adapters.outbox import PostgresOutbox
from order_service.adapters.sns import SnsTopic
from order_service.bootstrap import relay_config
from order_service.entrypoints.local_servers import create_topic_with_queue
from order_service.metrics import Metrics
from order_service.service.processing import BatchProcessor
from order_service.service.relay import Relay, RelayConfig
from order_service.settings import Settings
from tests.factories import paid, placed, shipped
from tests.support.batches import lifecycles, messages
from tests.support.database import execute, query
from tests.support.downstream import check_downstream, receive_all
from tests.support.old_builds import old_build_cancels, old_build_pays, old_build_ships
from tests.support.status_contract import validate_status_event
from tests.support.waiting import wait_for

DEFAULTS = Settings.model_construct()  # the settings' defaults: retention 0


async def rows_left(dsn: str) -> int:
    return int((await query(dsn, "SELECT count(*) AS n FROM order_outbox"))[0]["n"])


async def topic(sns, sqs) -> tuple[str, str]:
    return await create_topic_with_queue(sns, sqs, f"atk-{uuid.uuid4().hex[:8]}")


def refusals(logs: list[dict]) -> list[dict]:
    return [e for e in logs if e.get("kind") == "database_refused"]


async def run_until(relay: Relay, check: Callable[[], Any], timeout: float, what: str) -> None:
    """The relay runs until `check` holds (a loaded host may be slow to get there)."""
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await wait_for(check, timeout, what)
    finally:
        stop.set()
        await task


async def run_for(relay: Relay, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task


async def run_relay(
    database: str, sns: Any, arn: str, seconds: float, config: RelayConfig
) -> tuple[Relay, list[dict]]:
    """A relay of its own on `database`, run `seconds`; with what it logged."""
    outbox = PostgresOutbox(database)
    relay = Relay(outbox, SnsTopic(sns, arn, metrics=Metrics()), config, Metrics())
    try:
        with capture_logs() as logs:
            await run_for(relay, seconds)
    finally:
        await outbox.close()
    return relay, logs


# --- Promise 3: a database that refuses the delete ------------------------------------------


SILENT_SKIPS = {
    # A generic audit trigger: NEW is NULL in a DELETE trigger, so the row is skipped.
    "trigger": """
        CREATE FUNCTION audit_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RETURN NEW; END $$;
        CREATE TRIGGER audit_outbox BEFORE UPDATE OR DELETE ON order_outbox
            FOR EACH ROW EXECUTE FUNCTION audit_outbox();
        """,
    "rule": "CREATE RULE keep_outbox AS ON DELETE TO order_outbox DO INSTEAD NOTHING",
}


@pytest.mark.parametrize("skip", ["trigger", "rule"])
async def test_a_delete_the_database_skips_silently_is_reported_not_republished_for_ever(
    skip, outbox_store, database, sns, sqs
):
    await execute(database, SILENT_SKIPS[skip])
    order = str(uuid.uuid4())
    await BatchProcessor(outbox_store).process(messages(placed(order)))
    arn, downstream = await topic(sns, sqs)
    relay, logs = await run_relay(database, sns, arn, 3, relay_config(DEFAULTS))
    bodies = await receive_all(sqs, downstream, expect=1, timeout=3)
    assert (await check_downstream(database, list(bodies)))["rows"] == 1  # nothing lost
    assert await rows_left(database) == 1  # the row is still there...
    # ...so it was not published-and-deleted: the relay must say so, not count it and loop.
    # ...so it was not published-and-deleted: reported, not counted, sent again only at the
    # back-off's pace (0.5, 1, 2 s: at most 3 sends in 3 s), not at every poll (6 before).
    reports = refusals(logs)
    assert reports and relay.published == 0, (relay.published, len(bodies))
    assert [r["retry_in"] for r in reports] == [0.5, 1.0, 2.0][: len(reports)]
    assert len(reports) <= 3 and len(bodies) <= len(reports) + 1, (len(reports), len(bodies))


async def test_a_delete_refused_in_a_later_round_backs_off_as_promised(
    outbox_store, database, sns, sqs
):
    held, _other = await lifecycles(outbox_store, 2)
    await execute(
        database,
        "CREATE TABLE keep (ref uuid REFERENCES order_outbox(id)); "
        "INSERT INTO keep SELECT id FROM order_outbox "
        f"WHERE aggregateid = '{held}' AND sequence = 2",
    )
    arn, downstream = await topic(sns, sqs)
    outbox = PostgresOutbox(database)
    relay = Relay(outbox, SnsTopic(sns, arn, metrics=Metrics()), relay_config(DEFAULTS), Metrics())
    try:
        with capture_logs() as logs:
            await run_for(relay, 6)
        # The refusal goes: everything is published and deleted (same ids).
        await execute(database, "DROP TABLE keep")
        with capture_logs():
            await run_until(relay, lambda: _zero(database), 40, "the rows deleted")
    finally:
        await outbox.close()
    bodies = await receive_all(sqs, downstream, expect=6, timeout=10)
    assert (await check_downstream(database, list(bodies)))["rows"] == 6  # nothing lost
    reports = refusals(logs)
    assert reports and reports[0]["log_level"] == "error"
    waits = [r["retry_in"] for r in reports]
    first_of_held = [b for b in bodies if b["order_id"] == held and b["sequence"] == 1]
    assert max(waits) > 0.5, f"back-off never grew: {waits}; {held}#1 sent {len(first_of_held)}x"


async def test_a_delete_refused_at_commit_backs_off_as_promised(outbox_store, database, sns, sqs):
    order = str(uuid.uuid4())
    await BatchProcessor(outbox_store).process(messages(placed(order)))
    await execute(
        database,
        "CREATE TABLE keep (ref uuid REFERENCES order_outbox(id) DEFERRABLE INITIALLY DEFERRED);"
        " INSERT INTO keep SELECT id FROM order_outbox",
    )
    arn, downstream = await topic(sns, sqs)
    relay, logs = await run_relay(database, sns, arn, 5, relay_config(DEFAULTS))
    assert await rows_left(database) == 1  # never lost
    bodies = await receive_all(sqs, downstream, expect=1, timeout=3)
    assert (await check_downstream(database, list(bodies)))["rows"] == 1
    waits = [r["retry_in"] for r in refusals(logs)]
    assert waits, "the refusal at COMMIT is reported as database_refused"
    assert max(waits) > 0.5 and relay.published == 0, (waits, relay.published, len(bodies))


async def _zero(dsn: str) -> bool:
    return await rows_left(dsn) == 0


async def _left(dsn: str, n: int) -> bool:
    return await rows_left(dsn) == n


async def test_a_refused_delete_republishes_same_id_and_body_then_deletes(
    outbox_store, database, sns, sqs
):
    """The loud refusal on the first round: reported, republished at a growing back-off (the
    relay's own max 30 s), same id and body; after the refusal goes, deleted."""
    await execute(
        database,
        """
        CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'kept'; END $$;
        CREATE TRIGGER refuse_delete BEFORE DELETE ON order_outbox
            FOR EACH ROW EXECUTE FUNCTION refuse_delete();
        """,
    )
    await lifecycles(outbox_store, 1)
    arn, downstream = await topic(sns, sqs)
    outbox = PostgresOutbox(database)
    metrics = Metrics()
    relay = Relay(outbox, SnsTopic(sns, arn, metrics=Metrics()), relay_config(DEFAULTS), metrics)
    try:
        with capture_logs() as logs:
            await run_for(relay, 4)
            assert metrics.registry.get_sample_value(
                "order_service_relay_faults_total", {"kind": "database_refused"}
            ) == len(refusals(logs))
            assert relay.published == 0 and await rows_left(database) == 3
            await execute(database, "DROP TRIGGER refuse_delete ON order_outbox")
            await run_until(relay, lambda: _zero(database), 40, "the rows deleted")
    finally:
        await outbox.close()
    waits = [r["retry_in"] for r in refusals(logs)]
    assert waits[:3] == [0.5, 1.0, 2.0], waits  # doubling (to max_backoff, 30 s)
    bodies = await receive_all(sqs, downstream, expect=3, timeout=10)
    counts = await check_downstream(database, list(bodies), validate_status_event)
    assert counts["rows"] == 3 and counts["duplicates"] >= 3  # republished, same id and body


async def test_the_same_audit_trigger_on_the_mark_path_publishes_once(
    outbox_store, database, sns, sqs
):
    """The contrast to the silent skip above: with a retention (the previous default, 24 h)
    the trigger's `RETURN NEW` lets the mark through; the row goes out once."""
    await execute(
        database,
        """
        CREATE FUNCTION audit_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RETURN NEW; END $$;
        CREATE TRIGGER audit_outbox BEFORE UPDATE OR DELETE ON order_outbox
            FOR EACH ROW EXECUTE FUNCTION audit_outbox();
        """,
    )
    await BatchProcessor(outbox_store).process(messages(placed(str(uuid.uuid4()))))
    arn, downstream = await topic(sns, sqs)
    outbox = PostgresOutbox(database)
    config = relay_config(DEFAULTS, retention_seconds=24 * 3600)
    relay = Relay(outbox, SnsTopic(sns, arn, metrics=Metrics()), config, Metrics())
    try:
        await run_for(relay, 3)
    finally:
        await outbox.close()
    bodies = await receive_all(sqs, downstream, expect=1, timeout=3)
    assert len(bodies) == 1 and relay.published == 1


# --- Promise 2: retention switched between restarts ------------------------------------------


async def test_retention_switched_between_restarts_with_a_backlog_loses_and_repeats_nothing(
    outbox_store, database, sns, sqs
):
    """A relay with a retention (marks) publishes part of a backlog, stops; one without
    (deletes) takes over: its retention pass (limit 0, at start) deletes the marked rows, the
    rest are published once and deleted. Then back to a retention: nothing repeated."""
    await lifecycles(outbox_store, 12)  # 36 rows
    arn, downstream = await topic(sns, sqs)
    outbox = PostgresOutbox(database)

    def relay(hours: float) -> Relay:
        config = relay_config(DEFAULTS, claim_orders=3, retention_seconds=hours * 3600)
        return Relay(outbox, SnsTopic(sns, arn, metrics=Metrics()), config, Metrics())

    try:
        marking = relay(24)
        assert await marking.publish_once() is True  # 3 orders of 12
        await marking._retention()  # its pass: nothing older than 24 h
        assert await rows_left(database) == 36
        deleting = relay(0)
        await run_until(deleting, lambda: _zero(database), 30, "the backlog deleted")
        assert deleting.published == 27
        await BatchProcessor(outbox_store).process(messages(placed(str(uuid.uuid4()))))
        marking_again = relay(24)
        assert await marking_again.publish_once() is False and marking_again.published == 1
    finally:
        await outbox.close()
    bodies = await receive_all(sqs, downstream, expect=37)
    counts = await check_downstream(database, bodies, validate_status_event)
    assert counts == {"orders": 13, "rows": 37, "duplicates": 0}


async def test_rows_an_older_build_kept_go_at_most_10000_per_relay_per_pass(database):
    """Not a loss, a pace to know before a rollout from a build that kept a day of rows (the
    previous default, 24 h): the new build's retention pass (limit 0, at start then every
    minute) deletes 20 batches of 500 per relay per pass. 10,600 rows marked: 10,000 on the
    first pass, the rest on the next; unpublished rows untouched."""
    await execute(
        database,
        "INSERT INTO order_outbox (id, aggregateid, type, payload, sequence, published_at) "
        "SELECT gen_random_uuid(), gen_random_uuid(), 'order.placed', '{}', 1, "
        "now() - interval '1 hour' FROM generate_series(1, 10600); "
        "INSERT INTO order_outbox (id, aggregateid, type, payload, sequence) "
        "SELECT gen_random_uuid(), gen_random_uuid(), 'order.placed', '{}', 1 "
        "FROM generate_series(1, 5)",
    )
    outbox = PostgresOutbox(database)
    try:
        assert await outbox.delete_published(0) == 10_000
        assert await outbox.delete_published(0) == 600
        assert await outbox.delete_published(0) == 0
    finally:
        await outbox.close()
    assert await rows_left(database) == 5


# --- Promise 4: parked rows --------------------------------------------------------------------


async def test_a_parked_row_is_never_deleted_and_after_retry_is_published_then_deleted(
    outbox_store, database, sns, sqs
):
    held, other = await lifecycles(outbox_store, 2)
    first_id, parked_id = [
        r["id"]
        for r in await query(
            database,
            "SELECT id FROM order_outbox WHERE aggregateid = $1 AND sequence < 3 ORDER BY sequence",
            uuid.UUID(held),
        )
    ]
    arn, downstream = await topic(sns, sqs)
    outbox = PostgresOutbox(database)
    relay = Relay(outbox, SnsTopic(sns, arn, metrics=Metrics()), relay_config(DEFAULTS), Metrics())
    try:
        async with outbox.claim(10) as claim:  # #1 published, #2 refused for good
            await claim.delete_published([first_id])
            await claim.park({parked_id: "InvalidParameter: injected"})
        await run_until(relay, lambda: _left(database, 2), 30, "the other order deleted")
        await run_for(relay, 1)  # a few more claims: the parked order stays whole
        left = await query(database, "SELECT aggregateid, sequence, parked_at FROM order_outbox")
        assert sorted((str(r["aggregateid"]), r["sequence"]) for r in left) == [
            (held, 2),
            (held, 3),
        ]  # the parked row and the row behind it wait; the other order is deleted
        # A retention pass with limit 0 (rows an older build marked) leaves them alone too.
        assert await outbox.delete_published(0) == 0
        status = await outbox.status()
        assert (status.parked, status.waiting_behind_parked, status.published_retained) == (
            1,
            1,
            0,
        )
        assert await outbox.retry_parked([parked_id]) == 1
        await run_until(relay, lambda: _zero(database), 30, "the retried rows deleted")
    finally:
        await outbox.close()
    assert await rows_left(database) == 0
    # #1 of the held order was "published" by the injected claim without SNS: not received.
    bodies = await receive_all(sqs, downstream, expect=5)
    assert {(b["order_id"], b["sequence"]) for b in bodies} == {
        (held, 2),
        (held, 3),
        (other, 1),
        (other, 2),
        (other, 3),
    }
    sent_in_order = [b["sequence"] for b in bodies if b["order_id"] == held]
    assert sent_in_order == [2, 3]


# --- Promise 6: the catch-up after deletes ----------------------------------------------------


async def test_the_catch_up_after_rows_were_deleted_numbers_on_and_repeats_nothing(
    outbox_store, database, sns, sqs
):
    """Orders whose earlier status events were published and deleted, then changed by a build
    without the outbox: the late events are numbered after the deleted ones, and none of the
    deleted ones is written again. One order also had a row still waiting (unpublished) when
    the old build changed it."""
    deleted_then_paid, waiting_then_paid, shipped_then_late = (str(uuid.uuid4()) for _ in range(3))
    arn, downstream = await topic(sns, sqs)
    outbox = PostgresOutbox(database)
    relay = Relay(outbox, SnsTopic(sns, arn, metrics=Metrics()), relay_config(DEFAULTS), Metrics())
    conn = await asyncpg.connect(database)
    try:
        await BatchProcessor(outbox_store).process(
            messages(placed(deleted_then_paid), placed(shipped_then_late))
        )
        assert await relay.publish_once() is False
        assert await rows_left(database) == 0  # deleted when published
        await BatchProcessor(outbox_store).process(messages(placed(waiting_then_paid)))
        await old_build_pays(conn, deleted_then_paid)
        await old_build_pays(conn, waiting_then_paid)  # its #1 not yet published
        await old_build_pays(conn, shipped_then_late)
        assert await outbox.catch_up(10) == 3
        while await relay.publish_once():
            pass
        # The new build ships one: its event follows the caught-up one.
        await BatchProcessor(outbox_store).process(messages(shipped(shipped_then_late)))
        assert await outbox.catch_up(10) == 0  # nothing twice
        while await relay.publish_once():
            pass
        assert await rows_left(database) == 0
    finally:
        await conn.close()
        await outbox.close()
    bodies = await receive_all(sqs, downstream, expect=7)
    counts = await check_downstream(database, bodies, validate_status_event)
    assert counts == {"orders": 3, "rows": 7, "duplicates": 0}
    late = {(b["order_id"], b["sequence"]): b["status"] for b in bodies}
    assert late[(deleted_then_paid, 2)] == "PAID"
    assert late[(waiting_then_paid, 2)] == "PAID"
    assert late[(shipped_then_late, 3)] == "SHIPPED"


async def test_the_catch_up_of_two_late_changes_after_deleted_rows_takes_the_right_two(
    outbox_store, database, sns, sqs
):
    """Two late changes behind one or two deleted rows (the catch-up must take the most
    recent events without a row, which with deletes are also the deleted ones' successors),
    and a cancel behind a deleted placed and paid: numbered 2..3 and 3, states right."""
    two_late, cancelled_late = str(uuid.uuid4()), str(uuid.uuid4())
    arn, downstream = await topic(sns, sqs)
    outbox = PostgresOutbox(database)
    relay = Relay(outbox, SnsTopic(sns, arn, metrics=Metrics()), relay_config(DEFAULTS), Metrics())
    conn = await asyncpg.connect(database)
    try:
        await BatchProcessor(outbox_store).process(
            messages(placed(two_late), placed(cancelled_late))
        )
        await BatchProcessor(outbox_store).process(messages(paid(cancelled_late)))
        assert await relay.publish_once() is False and await rows_left(database) == 0
        await old_build_pays(conn, two_late)
        await old_build_ships(conn, two_late)
        await old_build_cancels(conn, cancelled_late)
        assert await outbox.catch_up(10) == 3
        assert await outbox.catch_up(10) == 0
        while await relay.publish_once():
            pass
    finally:
        await conn.close()
        await outbox.close()
    bodies = await receive_all(sqs, downstream, expect=6)
    counts = await check_downstream(database, bodies, validate_status_event)
    assert counts == {"orders": 2, "rows": 6, "duplicates": 0}
    states = {(b["order_id"], b["sequence"]): b["status"] for b in bodies}
    assert (states[(two_late, 2)], states[(two_late, 3)]) == ("PAID", "SHIPPED")
    assert states[(cancelled_late, 3)] == "CANCELLED"
