"""The relay's rounds, with fakes: an order's row goes out only after its predecessor was
accepted, a refused row holds its order back (not the others), accepted rows are marked."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from order_service.bootstrap import relay_config
from order_service.errors import StoreUnavailable, TopicUnavailable
from order_service.metrics import Metrics
from order_service.service.ports import OutboxGauges, PendingRow, PublishResult
from order_service.service.relay import Relay
from order_service.settings import Settings

DEFAULTS = Settings.model_construct()  # the settings' defaults


def rows_of(order: uuid.UUID, n: int) -> list[PendingRow]:
    now = datetime.now(UTC)
    return [PendingRow(uuid.uuid4(), order, "t", s, "{}", now) for s in range(1, n + 1)]


@dataclass
class FakeClaim:
    rows: Sequence[PendingRow]
    full: bool = False
    marked: list[uuid.UUID] = field(default_factory=list)
    parked: dict[uuid.UUID, str] = field(default_factory=dict)
    marks: int = 0  # statements: one per round that published something

    async def mark_published(self, ids: Sequence[uuid.UUID]) -> None:
        self.marked += ids
        self.marks += 1

    async def park(self, refused: Mapping[uuid.UUID, str]) -> None:
        self.parked.update(refused)


class FakeOutbox:
    def __init__(self, rows: list[PendingRow], fail: Exception | None = None) -> None:
        self.rows = rows
        self.claims: list[FakeClaim] = []
        self.fail = fail
        self.retention_fault: Exception | None = None
        self.gauge_reads = 0
        self.parked: dict[uuid.UUID, str] = {}

    @contextlib.asynccontextmanager
    async def claim(self, max_orders: int) -> AsyncIterator[FakeClaim]:
        if self.fail:
            raise self.fail
        held = {r.order_id for r in self.rows if r.id in self.parked}
        claim = FakeClaim([r for r in self.rows if r.order_id not in held])
        self.claims.append(claim)
        yield claim
        self.parked.update(claim.parked)
        self.rows = [r for r in self.rows if r.id not in claim.marked]

    async def delete_published(self, older_than_seconds: float) -> int:
        if self.retention_fault:
            raise self.retention_fault
        return 0

    async def gauges(self) -> OutboxGauges:
        self.gauge_reads += 1
        if self.fail:
            raise self.fail
        return OutboxGauges(7.0 if self.rows else 0.0, len(self.parked))


class FakeTopic:
    def __init__(
        self,
        refuse: set[uuid.UUID] | None = None,
        down: bool = False,
        refuse_for_good: set[uuid.UUID] | None = None,
    ) -> None:
        self.calls: list[list[PendingRow]] = []
        self.refuse = refuse or set()
        self.refuse_for_good = refuse_for_good or set()
        self.down = down

    async def publish(self, rows: Sequence[PendingRow]) -> PublishResult:
        self.calls.append(list(rows))
        if self.down:
            raise TopicUnavailable("throttled", kind="sns_throttled")
        ids = {r.id for r in rows}
        refused = {i: "InvalidParameter: bad" for i in ids & self.refuse_for_good}
        failure = TopicUnavailable("refused") if ids & self.refuse else None
        return PublishResult(frozenset(ids - self.refuse - set(refused)), refused, failure)


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
    assert outbox.claims[0].marked == [r.id for r in (rows[0], rows[3], rows[1], rows[2])]


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
    assert outbox.claims[0].marked == [a_rows[0].id, b_rows[0].id, b_rows[1].id]
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
    while len(topic.calls) < 3:
        await asyncio.sleep(0.01)
    assert all(not c.marked for c in outbox.claims)
    topic.down = False
    while outbox.rows:
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert relay.published == 2


async def test_a_database_fault_is_waited_out_not_raised():
    outbox = FakeOutbox([], fail=StoreUnavailable("down"))
    relay = Relay(outbox, FakeTopic(), relay_config(DEFAULTS, max_backoff=0.01), Metrics())
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await asyncio.sleep(0.1)
    assert not task.done()
    stop.set()
    await task
