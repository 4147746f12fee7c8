"""The relay's rounds, with fakes: an order's row goes out only after its predecessor was
accepted, a refused row holds its order back (not the others), accepted rows are deleted (or
marked, with a retention)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from order_service.bootstrap import relay_config
from order_service.errors import StoreUnavailable, TopicUnavailable
from order_service.metrics import Metrics
from order_service.service.relay import Relay
from order_service.settings import Settings
from tests.support.waiting import wait_for
from tests.unit.relay_fakes import FakeOutbox, FakeTopic, rows_of

DEFAULTS = Settings.model_construct()  # the settings' defaults


async def test_each_call_holds_at_most_one_row_per_order_in_sequence():
    a, b = uuid.uuid4(), uuid.uuid4()
    rows = rows_of(a, 3) + rows_of(b, 1)
    topic = FakeTopic()
    outbox = FakeOutbox(rows)
    assert await Relay(outbox, topic, relay_config(DEFAULTS), Metrics()).publish_once() is False
    assert [[(r.order_id, r.sequence) for r in call] for call in topic.calls] == [
        [(a, 1), (b, 1)],
        [(a, 2)],
        [(a, 3)],
    ]
    assert outbox.claims[0].published == [r.id for r in (rows[0], rows[3], rows[1], rows[2])]


async def test_calls_take_ten_rows_of_ten_orders():
    rows = [r for _ in range(25) for r in rows_of(uuid.uuid4(), 1)]
    topic = FakeTopic()
    await Relay(FakeOutbox(rows), topic, relay_config(DEFAULTS), Metrics()).publish_once()
    assert [len(c) for c in topic.calls] == [10, 10, 5]


async def test_a_refused_row_holds_back_its_order_only_and_the_relay_backs_off():
    a, b = uuid.uuid4(), uuid.uuid4()
    a_rows, b_rows = rows_of(a, 3), rows_of(b, 2)
    topic = FakeTopic(refuse={a_rows[1].id})
    outbox = FakeOutbox(a_rows + b_rows)
    with pytest.raises(TopicUnavailable, match="refused"):
        await Relay(outbox, topic, relay_config(DEFAULTS), Metrics()).publish_once()
    published = [(r.order_id, r.sequence) for c in topic.calls for r in c]
    assert (a, 3) not in published  # never ahead of its refused predecessor
    assert outbox.claims[0].published == [a_rows[0].id, b_rows[0].id, b_rows[1].id]
    assert [r.sequence for r in outbox.rows] == [2, 3]


async def test_a_topic_that_is_down_marks_nothing_and_run_backs_off_then_carries_on():
    rows = rows_of(uuid.uuid4(), 2)
    topic = FakeTopic(down=True)
    outbox = FakeOutbox(rows)
    relay = Relay(
        outbox, topic, relay_config(DEFAULTS, poll_interval=0.01, max_backoff=0.05), Metrics()
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await wait_for(lambda: len(topic.calls) >= 3, 5, "3 refused calls", interval=0.01)
    assert all(not c.published for c in outbox.claims)
    topic.down = False
    await wait_for(lambda: not outbox.rows, 5, "every row published", interval=0.01)
    stop.set()
    await task
    assert relay.published == 2


async def test_a_database_fault_is_waited_out_not_raised():
    outbox = FakeOutbox([], fail=StoreUnavailable("down"))
    relay = Relay(outbox, FakeTopic(), relay_config(DEFAULTS, max_backoff=0.01), Metrics())
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await wait_for(lambda: outbox.claim_attempts >= 3, 5, "3 refused claims", interval=0.005)
    assert not task.done()
    stop.set()
    await task


@pytest.mark.parametrize(("hours", "kept"), [(0, False), (0.001, True), (24, True)])
async def test_published_rows_are_deleted_at_once_unless_a_retention_keeps_them(hours, kept):
    rows = rows_of(uuid.uuid4(), 2)
    outbox = FakeOutbox(rows)
    config = relay_config(DEFAULTS, retention_seconds=hours * 3600)
    await Relay(outbox, FakeTopic(), config, Metrics()).publish_once()
    assert outbox.claims[0].published == [r.id for r in rows]
    assert outbox.claims[0].kept is kept


def test_published_rows_are_not_kept_by_default():
    assert relay_config(DEFAULTS).retention_seconds == 0
