"""Batch formation on a FIFO queue: a message group is never in two batches at once, and is
decided in the order SQS delivered it; the other groups go on meanwhile."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Sequence

from order_service.adapters.spans import NO_SPANS
from order_service.domain.batch import Plan, Snapshot
from order_service.domain.events import OrderEvent
from order_service.domain.lifecycle import Outcome
from order_service.metrics import Metrics
from order_service.service.batching import MessageBuffer, form_batch
from order_service.service.consumer import Consumer
from order_service.service.ports import Message
from tests.factories import body, cancelled, paid, placed
from tests.support.waiting import wait_for
from tests.unit.fakes import FakeQueue, FakeStore, make_config


def grouped(group: str | None, n: int = 0) -> Message:
    return Message(f"m-{uuid.uuid4().hex[:8]}", f"rh-{n}", "x", group_id=group)


def test_a_group_another_batch_holds_stays_and_so_does_everything_after_it_in_that_group():
    a1, b1, a2, c1, b2 = (grouped(g) for g in "abacb")
    batch, rest = form_batch([a1, b1, a2, c1, b2], {"b"}, 10, ordered=True)
    assert batch == [a1, a2, c1] and rest == [b1, b2]


def test_a_full_batch_leaves_the_rest_of_a_group_for_later_never_a_later_message_first():
    a1, a2, b1, a3 = (grouped(g) for g in "aaba")
    batch, rest = form_batch([a1, a2, b1, a3], set(), 2, ordered=True)
    assert batch == [a1, a2] and rest == [b1, a3]
    # Were b1 skipped and a3 next, a3 would still wait: a1, a2 are held by the first batch.
    assert form_batch(rest, {"a"}, 2, ordered=True) == ([b1], [a3])


def test_a_standard_queue_batches_any_message_whatever_its_group():
    messages = [grouped(g) for g in "aab"]
    assert form_batch(messages, {"a"}, 2, ordered=False) == (messages[:2], messages[2:])


async def test_concurrent_takers_never_hold_one_group_at_once_and_see_each_in_order():
    """Random receives of random groups, taken by four processors that settle at random."""
    rng = random.Random(7)
    buffer = MessageBuffer(ordered=True)
    delivered: dict[str, list[Message]] = {}
    seen: dict[str, list[Message]] = {}
    holding: dict[str, int] = {}
    overlaps = []

    async def processor(name: int) -> None:
        while (batch := await buffer.take(rng.randint(1, 6))) is not None:
            groups = {m.group_id for m in batch}
            overlaps.extend(g for g in groups if g in holding)
            holding.update(dict.fromkeys(groups, name))
            for m in batch:
                seen.setdefault(m.group_id, []).append(m)
            await asyncio.sleep(rng.random() / 200)
            for g in groups:
                del holding[g]
            buffer.release(batch)

    takers = [asyncio.create_task(processor(n)) for n in range(4)]
    for n in range(60):
        receive = [grouped(f"g{rng.randrange(8)}", n) for _ in range(rng.randint(1, 10))]
        for m in receive:
            delivered.setdefault(m.group_id, []).append(m)
        buffer.put(receive)
        await asyncio.sleep(rng.random() / 400)
    await wait_for(lambda: not (len(buffer) or holding), 10, "the buffer drained", interval=0.01)
    buffer.close()
    await asyncio.gather(*takers)
    assert overlaps == []
    assert seen == delivered


class RecordingStore(FakeStore):
    """Records which orders each batch holds while it runs, and every decision in commit
    order."""

    def __init__(self) -> None:
        super().__init__()
        self._rng = random.Random(23)
        self.running: list[set] = []
        self.overlaps: list = []
        self.decided: list[tuple[str, str, Outcome]] = []  # order, event type, outcome

    async def run_batch(
        self, events: Sequence[OrderEvent], planner: Callable[[Snapshot], Plan]
    ) -> Plan:
        orders = {e.order_id for e in events}
        self.overlaps += [o for held in self.running for o in held & orders]
        self.running.append(orders)
        self.delay = self._rng.random() / 30  # batches of uneven length overlap unevenly
        try:
            plan = await super().run_batch(events, planner)
        finally:
            self.running.remove(orders)
        for event, decision in zip(events, plan.decisions, strict=True):
            self.decided.append((str(event.order_id), event.event_type, decision.outcome))
        return plan


async def test_the_consumer_on_a_fifo_queue_decides_each_order_in_group_order_across_processors():
    """Each order sends placed, cancelled, paid: in that order the payment is rejected; in any
    other (a later part of the group committed first) it is applied or deferred. Receives of
    ten, batches of at most four, three processors: before batch formation knew groups, the
    groups cut by a batch's end went on in another processor at once."""
    orders = [str(uuid.uuid4()) for _ in range(12)]
    messages = []
    for step in (placed, cancelled, paid):
        for order in orders:  # groups interleaved, as SQS FIFO delivers many groups at once
            messages.append(
                Message(str(uuid.uuid4()), f"rh-{uuid.uuid4()}", body(step(order)), group_id=order)
            )
    queue = FakeQueue(messages)
    store = RecordingStore()
    config = make_config(
        pollers=1,
        processors=3,
        max_in_flight=40,
        batch_max_messages=4,
        wait_time_seconds=0,
        fifo=True,
    )
    consumer = Consumer(queue, store, config, Metrics(), store_ready=store.ready, spans=NO_SPANS)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, 2.0))
    await wait_for(lambda: consumer.processed == len(messages), 10, "all processed", interval=0.01)
    stop.set()
    await task
    assert store.overlaps == []
    for order in orders:
        assert [(t, o) for o_id, t, o in store.decided if o_id == order] == [
            ("order.placed", Outcome.APPLIED),
            ("order.cancelled", Outcome.APPLIED),
            ("order.paid", Outcome.REJECTED),
        ]
