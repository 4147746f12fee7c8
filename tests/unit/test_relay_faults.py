"""The relay under faults, with fakes (issue 21): whatever it meets it reports (an ERROR line
with what to do, WARNING for throttling, a count by kind) and backs off, never ending; retention
never holds back publishing; a claim marks after each round, waits for no round past
round_seconds and starts none after claim_seconds; a row refused for good is parked, its order
waits behind it, the others flow; the gauges are read from the table on their own clock."""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from structlog.testing import capture_logs

from order_service.bootstrap import relay_config
from order_service.errors import StoreError, StoreUnavailable, TopicUnavailable
from order_service.metrics import Metrics
from order_service.service.ports import PendingRow, PublishResult
from order_service.service.relay import Relay
from order_service.settings import Settings
from tests.support.waiting import wait_for
from tests.unit.relay_fakes import FakeOutbox, FakeTopic, rows_of

DEFAULTS = Settings.model_construct()  # the settings' defaults

FAST = relay_config(DEFAULTS, poll_interval=0.01, max_backoff=0.02, measure_every=0.01)


def faults(metrics: Metrics) -> dict[str, float]:
    return {
        s.labels["kind"]: s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == "order_service_relay_faults_total"
    }


async def run_until(relay: Relay, done, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    task = asyncio.create_task(relay.run(stop))

    def done_while_running() -> bool:
        assert not task.done(), task  # the relay never ends by itself
        return bool(done())

    try:
        await wait_for(done_while_running, 10, "the relay's condition", interval=0.005)
    finally:
        stop.set()
        await asyncio.wait({task}, timeout=5)
        task.cancel()  # a claim that never comes back (Hanging) ignores the stop
        await asyncio.gather(task, return_exceptions=True)


class Broken(FakeTopic):
    fixed = False  # the bug is fixed (say, a dependency came back): publishes as FakeTopic

    async def publish(self, rows: Sequence[PendingRow]) -> PublishResult:
        if self.fixed:
            return await super().publish(rows)
        self.calls.append(list(rows))
        raise RuntimeError("bug in the relay")


@pytest.mark.parametrize(
    ("fault", "kind", "action"),
    [
        (
            StoreUnavailable("down", kind="read_only", action="point at the writer"),
            "read_only",
            "point at the writer",
        ),
        (StoreError("P0001: raised by a trigger"), "database_refused", "trigger"),
        (StoreError("23503: foreign key"), "database_refused", "foreign"),
        (
            TopicUnavailable(
                "denied", kind="sns_denied", action="grant sns:Publish", transient=False
            ),
            "sns_denied",
            "grant sns:Publish",
        ),
    ],
)
async def test_any_fault_of_a_claim_is_reported_with_what_to_do_and_backed_off(fault, kind, action):
    metrics = Metrics()
    outbox = FakeOutbox(rows_of(uuid.uuid4(), 1), fail=fault)
    relay = Relay(outbox, FakeTopic(), FAST, metrics)
    with capture_logs() as logs:
        await run_until(relay, lambda: faults(metrics).get(kind, 0) >= 3)
    errors = [e for e in logs if e["log_level"] == "error" and e.get("kind") == kind]
    assert errors and action in errors[0]["action"]


async def test_a_bug_in_the_relay_is_reported_and_backed_off_and_publishing_resumes():
    metrics = Metrics()
    rows = rows_of(uuid.uuid4(), 2)
    outbox = FakeOutbox(rows)
    broken = Broken()
    relay = Relay(outbox, broken, FAST, metrics)
    with capture_logs() as logs:
        task = asyncio.create_task(relay.run(stop := asyncio.Event()))

        def second_bug() -> bool:
            assert not task.done(), task  # the relay never ends by itself
            return faults(metrics).get("relay_bug", 0) >= 2

        await wait_for(second_bug, 10, "a second relay_bug", interval=0.005)
        broken.fixed = True  # the bug is fixed (say, a dependency came back)
        await wait_for(lambda: not outbox.rows, 10, "every row published", interval=0.005)
        stop.set()
        await task
    assert relay.published == 2
    assert any(e.get("kind") == "relay_bug" and e["log_level"] == "error" for e in logs)


async def test_throttling_is_a_warning_a_refusal_of_the_publisher_an_error():
    metrics = Metrics()
    outbox = FakeOutbox(rows_of(uuid.uuid4(), 1))
    topic = FakeTopic(down=True)  # raises a throttling TopicUnavailable
    relay = Relay(outbox, topic, FAST, metrics)
    with capture_logs() as logs:
        await run_until(relay, lambda: faults(metrics).get("sns_throttled", 0) >= 2)
    levels = {e["log_level"] for e in logs if e.get("kind") == "sns_throttled"}
    assert levels == {"warning"}


async def test_retention_faults_never_hold_back_publishing():
    metrics = Metrics()
    a = uuid.uuid4()
    outbox = FakeOutbox(rows_of(a, 1))
    outbox.retention_fault = StoreError("P0001: a trigger refuses DELETE on order_outbox")
    relay = Relay(
        outbox, FakeTopic(), relay_config(DEFAULTS, poll_interval=0.01, retention_every=0), metrics
    )
    with capture_logs() as logs:
        await run_until(relay, lambda: faults(metrics).get("database_refused", 0) >= 2)
        outbox.rows += rows_of(uuid.uuid4(), 2)
        relay.wake.set()
        await run_until(relay, lambda: not outbox.rows)
    assert relay.published == 3
    retention = [e for e in logs if e.get("kind") == "database_refused"]
    assert retention[0]["log_level"] == "error" and "retention" in retention[0]["event"]


async def test_catch_up_faults_never_hold_back_publishing():
    metrics = Metrics()
    outbox = FakeOutbox(rows_of(uuid.uuid4(), 1))
    outbox.catch_up_fault = StoreUnavailable("connection refused", kind="connection")
    config = relay_config(DEFAULTS, poll_interval=0.01, catch_up_every=0)
    relay = Relay(outbox, FakeTopic(), config, metrics)
    with capture_logs() as logs:
        await run_until(relay, lambda: outbox.catch_ups >= 2)
        outbox.rows += rows_of(uuid.uuid4(), 2)
        relay.wake.set()
        await run_until(relay, lambda: not outbox.rows)
    assert relay.published == 3
    caught = [e for e in logs if e.get("kind") == "connection"]
    assert caught[0]["log_level"] == "error" and "catching up" in caught[0]["event"]


async def test_a_schema_that_needs_a_newer_build_stops_every_write_of_the_relay():
    outbox = FakeOutbox(rows_of(uuid.uuid4(), 2))
    outbox.schema_fault = StoreUnavailable("needs 0009", kind="build_too_old", action="x")
    config = relay_config(
        DEFAULTS, poll_interval=0.01, catch_up_every=0, schema_recheck_paused=0.01
    )
    relay = Relay(outbox, FakeTopic(), config, Metrics())
    with capture_logs() as logs:
        await run_until(relay, lambda: outbox.schema_checks >= 3)
        assert outbox.claims == [] and outbox.catch_ups == 0 and relay.published == 0
        outbox.schema_fault = None  # the rollout finished
        await run_until(relay, lambda: not outbox.rows)
    assert relay.published == 2
    paused = [e for e in logs if "outbox relay paused" in e["event"]]
    assert len(paused) == 1 and paused[0]["kind"] == "build_too_old"


async def test_a_claim_marks_after_each_round_so_a_cut_claim_loses_no_accepted_row():
    a, b = uuid.uuid4(), uuid.uuid4()
    outbox = FakeOutbox(rows_of(a, 3) + rows_of(b, 1))
    await Relay(outbox, FakeTopic(), relay_config(DEFAULTS), Metrics()).publish_once()
    assert outbox.claims[0].marks == 3  # three rounds, three marks


class Slow(FakeTopic):
    """Never answers for the rows of `stuck`'s order."""

    def __init__(self, stuck: uuid.UUID) -> None:
        super().__init__()
        self.stuck = stuck

    async def publish(self, rows: Sequence[PendingRow]) -> PublishResult:
        self.calls.append(list(rows))
        if any(r.order_id == self.stuck for r in rows):
            await asyncio.Event().wait()
        return PublishResult(frozenset(r.id for r in rows))


async def test_no_round_is_waited_for_past_round_seconds():
    a = uuid.uuid4()
    a_rows = rows_of(a, 1)
    others = [rows_of(uuid.uuid4(), 2) for _ in range(12)]
    outbox = FakeOutbox(a_rows + [r for rows in others for r in rows])
    relay = Relay(outbox, Slow(stuck=a), relay_config(DEFAULTS, round_seconds=0.05), Metrics())
    with pytest.raises(TopicUnavailable) as raised:
        await relay.publish_once()
    assert raised.value.kind == "sns_timeout"
    # The stuck call's chunk (a and the next nine orders) waits; the last three went out whole.
    assert outbox.claims[0].published == [r.id for rows in others[9:] for r in rows[:1]] + [
        r.id for rows in others[9:] for r in rows[1:]
    ]
    assert len(outbox.rows) == 1 + 9 * 2


async def test_no_round_starts_after_claim_seconds_and_the_rest_follows_at_once():
    outbox = FakeOutbox(rows_of(uuid.uuid4(), 2))
    topic = FakeTopic()
    assert (
        await Relay(
            outbox, topic, relay_config(DEFAULTS, claim_seconds=0), Metrics()
        ).publish_once()
        is True
    )
    assert topic.calls == [] and len(outbox.rows) == 2


async def test_a_row_refused_for_good_is_parked_its_order_waits_the_others_flow():
    metrics = Metrics()
    a, b = uuid.uuid4(), uuid.uuid4()
    a_rows, b_rows = rows_of(a, 3), rows_of(b, 3)
    outbox = FakeOutbox(a_rows + b_rows)
    topic = FakeTopic(refuse_for_good={a_rows[1].id})
    relay = Relay(outbox, topic, FAST, metrics)
    with capture_logs() as logs:
        assert await relay.publish_once() is False  # not a fault of the relay: no back-off
    published = [r.id for c in topic.calls for r in c if r.id != a_rows[1].id]
    assert a_rows[2].id not in published  # never ahead of its parked predecessor
    assert outbox.parked == {a_rows[1].id: "InvalidParameter: bad"}
    assert [r.id for r in outbox.rows] == [a_rows[1].id, a_rows[2].id]  # kept, not dropped
    assert faults(metrics) == {"sns_refused_row": 1}
    parked = [e for e in logs if "parked" in e["event"]]
    assert parked[0]["log_level"] == "error"
    assert f"outbox retry {a_rows[1].id}" in parked[0]["action"]
    # Later claims pass the parked order by; new orders keep flowing.
    c_rows = rows_of(uuid.uuid4(), 2)
    outbox.rows += c_rows
    calls = len(topic.calls)
    await relay.publish_once()
    assert {r.id for c in topic.calls[calls:] for r in c} == {r.id for r in c_rows}


class Hanging(FakeOutbox):
    """A claim that never comes back (the claim connection's server went silent)."""

    @contextlib.asynccontextmanager
    async def claim(self, max_orders: int) -> AsyncIterator:  # type: ignore[override]
        await asyncio.Event().wait()
        yield


async def test_the_gauges_are_read_from_the_table_while_a_claim_hangs():
    metrics = Metrics()
    outbox = Hanging(rows_of(uuid.uuid4(), 1))
    relay = Relay(outbox, FakeTopic(), FAST, metrics)
    await run_until(relay, lambda: outbox.gauge_reads >= 3)
    assert (
        metrics.registry.get_sample_value("order_service_outbox_oldest_unpublished_seconds") == 7.0
    )
    assert metrics.registry.get_sample_value("order_service_outbox_parked_rows") == 0


async def test_a_lag_not_measured_is_not_reported_as_zero():
    metrics = Metrics()
    assert math.isnan(
        metrics.registry.get_sample_value("order_service_outbox_oldest_unpublished_seconds")
    )  # nobody relays yet
    outbox = FakeOutbox([], fail=StoreUnavailable("down"))
    relay = Relay(outbox, FakeTopic(), FAST, metrics)
    metrics.outbox_oldest_unpublished.set(0)
    await run_until(relay, lambda: outbox.gauge_reads >= 2)
    assert math.isnan(
        metrics.registry.get_sample_value("order_service_outbox_oldest_unpublished_seconds")
    )


async def test_a_claim_that_published_despite_a_fault_does_not_escalate_the_back_off():
    """SNS fails one order's call every claim (a slow SNS) while the others pass: the relay
    pauses briefly after each claim instead of doubling its back-off up to 30 s."""
    stuck = rows_of(uuid.uuid4(), 1)
    outbox = FakeOutbox(list(stuck))
    relay = Relay(
        outbox,
        FakeTopic(refuse={stuck[0].id}),
        relay_config(DEFAULTS, poll_interval=0.01),
        Metrics(),
    )
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(relay.run(stop))
        for n in range(1, 4):  # each claim, another order's row passes
            outbox.rows += rows_of(uuid.uuid4(), 1)
            await wait_for(lambda: relay.published >= n, 10, f"{n} published", interval=0.005)  # noqa: B023
        stop.set()
        await task
    backoffs = [e["retry_in"] for e in logs if "retry_in" in e]
    assert backoffs[:3] == [0.5, 0.5, 0.5]
