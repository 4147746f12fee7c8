"""The consuming loop against in-memory ports: acknowledgement by outcome, heartbeat, shutdown."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from order_service.adapters.spans import NO_SPANS
from order_service.domain.redelivery import RedeliveryPolicy
from order_service.metrics import Metrics
from order_service.service.consumer import Consumer
from order_service.service.ports import Message
from tests.factories import body, paid, placed
from tests.support.waiting import wait_for
from tests.unit.fakes import FakeQueue, FakeStore, make_config


def msg(text: str, receive_count: int = 1) -> Message:
    return Message(str(uuid.uuid4()), f"rh-{uuid.uuid4()}", text, receive_count)


def consumer(queue, store, metrics: Metrics | None = None, **config) -> Consumer:
    cfg = make_config(pollers=1, processors=1, max_in_flight=20, wait_time_seconds=0, **config)
    return Consumer(
        queue, store, cfg, metrics or Metrics(), store_ready=store.ready, spans=NO_SPANS
    )


def errors(metrics: Metrics) -> dict[str, float]:
    """order_errors_total by kind, as /metrics shows it."""
    return {
        s.labels["kind"]: s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == "order_errors_total"
    }


async def run_until(c: Consumer, done, timeout: float = 5.0, grace: float = 2.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop, grace))
    await wait_for(done, timeout, "the consumer's condition", interval=0.01)
    stop.set()
    await asyncio.wait_for(task, grace + 1)


def test_backoff_is_fourfold_from_the_base_and_capped():
    config = RedeliveryPolicy(retry_base_seconds=2, retry_max_seconds=100)
    assert [config.backoff(n) for n in range(1, 6)] == [2, 8, 32, 100, 100]


async def test_each_outcome_is_acknowledged_as_the_contract_says():
    order = str(uuid.uuid4())
    applied, duplicate = msg(body(placed(order))), None
    duplicate = Message(str(uuid.uuid4()), "rh-dup", applied.body)
    rejected = msg(body(paid(order, amount="1.00")))
    deferred = msg(body(paid(str(uuid.uuid4()))), receive_count=2)
    invalid = msg("{not json")
    queue = FakeQueue([applied, duplicate, rejected, deferred, invalid])
    c = consumer(queue, FakeStore(), retry_base_seconds=2)
    await run_until(c, lambda: c.processed == 5)
    assert {m.message_id for m in queue.deleted} == {
        applied.message_id,
        duplicate.message_id,
        rejected.message_id,
        invalid.message_id,
    }
    assert (deferred.message_id, 8) in queue.visibility  # second receive: 2 * 4
    assert [(m.message_id, r[:8]) for m, r in queue.dead_letters] == [
        (invalid.message_id, "not JSON")
    ]


async def test_invalid_message_the_dlq_refuses_is_quarantined_then_deleted():
    invalid = msg("x" * 10)
    store = FakeStore()
    queue = FakeQueue([invalid], dlq_accepts=False)
    c = consumer(queue, store)
    await run_until(c, lambda: c.processed == 1)
    assert [q[0] for q in store.quarantined] == [invalid.message_id]
    assert queue.deleted == [invalid]


async def test_a_long_batch_gets_visibility_heartbeats():
    m = msg(body(placed()))
    queue = FakeQueue([m])
    c = consumer(queue, FakeStore(delay=2.5), visibility_timeout=3)  # heartbeat every 1 s
    await run_until(c, lambda: c.processed == 1)
    assert queue.visibility.count((m.message_id, 3)) >= 2
    assert queue.deleted == [m]


async def test_stop_hands_buffered_messages_back_at_once():
    messages = [msg(body(placed(str(uuid.uuid4())))) for _ in range(20)]
    queue = FakeQueue(messages)
    store = FakeStore(delay=0.5)
    c = Consumer(
        queue,
        store,
        make_config(
            pollers=2, processors=1, max_in_flight=20, batch_max_messages=5, wait_time_seconds=0
        ),
        Metrics(),
        store_ready=store.ready,
        spans=NO_SPANS,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop, 5))
    # One batch of 5 in progress (the store takes 0.5 s), the other 15 received and buffered.
    await wait_for(
        lambda: store.batches_started == 1 and not queue.available, 5, "all received", interval=0.01
    )
    stop.set()
    await asyncio.wait_for(task, 6)
    released = {mid for mid, t in queue.visibility if t == 0}
    deleted = {m.message_id for m in queue.deleted}
    assert deleted and released
    assert deleted | released == {m.message_id for m in messages}
    assert not deleted & released


async def test_database_down_leaves_messages_and_pauses_until_it_answers():
    messages = [msg(body(placed(str(uuid.uuid4())))) for _ in range(3)]
    queue = FakeQueue(messages)
    store = FakeStore()
    store.down = True
    c = consumer(queue, store)
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop, 1))
    # The probe refused twice (the second after its back-off): the worker waited, received nothing.
    await wait_for(lambda: store.probes >= 2, 5, "a second refused probe", interval=0.01)
    assert queue.deleted == [] and len(queue.available) == 3  # not even received
    store.down = False
    await wait_for(lambda: len(queue.deleted) == 3, 5, "3 messages deleted", interval=0.01)
    stop.set()
    await task


async def test_failed_delete_is_counted_not_ignored():
    m = msg(body(placed()))
    queue = FakeQueue([m])
    queue.refuse_delete.add(m.message_id)
    metrics = Metrics()
    c = consumer(queue, FakeStore(), metrics)
    await run_until(c, lambda: c.processed == 1)
    assert errors(metrics) == {"delete": 1.0}


@pytest.mark.parametrize("count", [1, 25])
async def test_in_flight_returns_to_zero(count):
    queue = FakeQueue([msg(body(placed(str(uuid.uuid4())))) for _ in range(count)])
    metrics = Metrics()
    c = consumer(queue, FakeStore(), metrics)
    await run_until(c, lambda: c.processed == count)
    assert metrics.registry.get_sample_value("order_messages_in_flight") == 0


async def test_a_failing_heartbeat_does_not_stop_the_batch():
    from order_service.errors import QueueUnavailable

    class FlakyQueue(FakeQueue):
        async def change_visibility(self, messages, timeouts):
            raise QueueUnavailable("throttled (fake)")

    m = msg(body(placed()))
    queue = FlakyQueue([m])
    metrics = Metrics()
    c = consumer(queue, FakeStore(delay=1.5), metrics, visibility_timeout=3)
    await run_until(c, lambda: c.processed == 1)
    assert queue.deleted == [m]
    assert errors(metrics)["heartbeat"] >= 1
