"""A fault of the system against in-memory ports: held messages stay in flight and are retried
in place, the probe decides what a refused event is, side tasks are supervised, a stuck loop
fails /health, and pollers never starve each other of capacity."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence

import pytest

from order_service.adapters.spans import NO_SPANS
from order_service.domain.batch import Plan, Snapshot
from order_service.domain.events import OrderEvent
from order_service.domain.lifecycle import Outcome
from order_service.errors import StoreError, StoreUnavailable
from order_service.metrics import Metrics
from order_service.service.consumer import Consumer
from order_service.service.ports import Message
from order_service.service.processing import BatchProcessor
from order_service.service.supervision import SideTaskCrashed
from tests.factories import body, placed
from tests.support.waiting import wait_for
from tests.unit.fakes import FakeQueue, FakeStore, make_config


def msg(text: str) -> Message:
    return Message(str(uuid.uuid4()), f"rh-{uuid.uuid4()}", text)


def placed_messages(count: int) -> list[Message]:
    return [msg(body(placed(str(uuid.uuid4())))) for _ in range(count)]


def consumer(queue, store, metrics: Metrics | None = None, **config) -> Consumer:
    settings = {"pollers": 1, "processors": 1, "max_in_flight": 20, "wait_time_seconds": 0}
    cfg = make_config(**{**settings, **config})
    return Consumer(
        queue, store, cfg, metrics or Metrics(), store_ready=store.probe, spans=NO_SPANS
    )


class RefusingStore(FakeStore):
    """Refuses every batch holding an event of `poison` orders, as a database refuses one
    message's values; `probe_fails` makes the known-good batch fail as well."""

    def __init__(self, poison: set[str], *, probe_fails: bool = False) -> None:
        super().__init__()
        self.poison = poison
        self.probe_fails = probe_fails

    async def run_batch(
        self, events: Sequence[OrderEvent], planner: Callable[[Snapshot], Plan]
    ) -> Plan:
        if any(str(e.order_id) in self.poison for e in events):
            raise StoreError("DataError: value out of range (fake)")
        return await super().run_batch(events, planner)

    async def probe(self) -> None:
        if self.probe_fails:
            raise StoreUnavailable("known-good batch refused (fake)", kind="refuses_valid_batch")


async def test_a_refused_event_is_invalid_alone_when_the_probe_passes():
    bad, good = str(uuid.uuid4()), str(uuid.uuid4())
    messages = [msg(body(placed(bad))), msg(body(placed(good)))]
    results = await BatchProcessor(RefusingStore({bad})).process(messages)
    assert [r.outcome for r in results] == [Outcome.INVALID, Outcome.APPLIED]
    assert results[0].reason is not None and results[0].reason.startswith("processing failed")


async def test_a_refused_event_is_the_systems_fault_when_a_known_good_batch_fails_too():
    bad, good = str(uuid.uuid4()), str(uuid.uuid4())
    messages = [msg(body(placed(bad))), msg(body(placed(good)))]
    results = await BatchProcessor(RefusingStore({bad}, probe_fails=True)).process(messages)
    assert [r.outcome for r in results] == [Outcome.TRANSIENT, Outcome.APPLIED]
    assert results[0].fault is not None and results[0].fault.kind == "refuses_valid_batch"


async def test_messages_held_by_a_fault_stay_in_flight_and_are_retried_in_place():
    messages = placed_messages(25)
    queue = FakeQueue(messages)
    store = FakeStore(delay=0.1)
    metrics = Metrics()
    c = consumer(queue, store, metrics, batch_max_messages=5)
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop, 2))
    await wait_for(lambda: len(store.recorded) >= 5, 5, "the first batch", interval=0.005)
    store.down = True  # the next batch meets the fault
    await wait_for(lambda: not c.gate.is_open, 5, "the pause", interval=0.005)
    assert metrics.registry.get_sample_value("order_service_paused") == 1
    await asyncio.sleep(0.3)
    # Received, unacknowledged, under the heartbeat: in flight as /metrics shows it.
    held = metrics.registry.get_sample_value("order_messages_in_flight")
    assert held > 0
    store.down = False
    await wait_for(lambda: len(store.recorded) == 25, 10, "all 25 recorded", interval=0.01)
    stop.set()
    await asyncio.wait_for(task, 4)
    assert metrics.registry.get_sample_value("order_service_paused") == 0
    assert (
        metrics.registry.get_sample_value(
            "order_service_system_faults_total", {"kind": "unreachable"}
        )
        == 1
    )
    # Nothing handed back or received twice: each message was received once and deleted once.
    assert not [t for _, t in queue.visibility if t == 0]
    assert sorted(m.message_id for m in queue.deleted) == sorted(m.message_id for m in messages)


async def test_the_worker_does_not_consume_before_the_first_probe_passes():
    queue = FakeQueue(placed_messages(5))
    store = FakeStore()
    store.down = True
    c = consumer(queue, store)
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop, 1))
    # The probe refused twice (the second after its back-off): the worker waited, received nothing.
    await wait_for(lambda: store.probes >= 2, 5, "a second refused probe", interval=0.01)
    assert len(queue.available) == 5  # nothing received
    assert c.gate.fault is not None and c.stuck() is None
    store.down = False
    await wait_for(lambda: len(store.recorded) == 5, 5, "all 5 recorded", interval=0.01)
    stop.set()
    await asyncio.wait_for(task, 3)


@pytest.mark.parametrize(("pollers", "max_in_flight"), [(4, 10), (8, 15), (64, 200)])
async def test_pollers_never_starve_each_other_of_capacity(pollers, max_in_flight):
    messages = placed_messages(120)
    queue = FakeQueue(messages)
    store = FakeStore()
    c = consumer(queue, store, pollers=pollers, max_in_flight=max_in_flight, batch_max_messages=10)
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop, 2))
    await wait_for(lambda: len(store.recorded) == len(messages), 10, "all recorded", interval=0.01)
    stop.set()
    await asyncio.wait_for(task, 4)


class BrokenHeartbeatQueue(FakeQueue):
    async def change_visibility(self, messages, timeouts):
        if any(t > 0 for t in timeouts):
            raise RuntimeError("a bug in the heartbeat")
        return await super().change_visibility(messages, timeouts)


async def test_a_heartbeat_that_dies_stops_the_worker_with_an_error():
    queue = BrokenHeartbeatQueue(placed_messages(3))
    c = consumer(queue, FakeStore(delay=2.5), visibility_timeout=3)
    stop = asyncio.Event()
    with pytest.raises(SideTaskCrashed, match="heartbeat"):
        await asyncio.wait_for(c.run(stop, 1), 8)


class HangingQueue(FakeQueue):
    async def receive(self, max_messages: int = 10, wait_seconds: int = 20) -> list[Message]:
        await asyncio.Event().wait()
        return []


async def test_stuck_only_when_nothing_excuses_it():
    store = FakeStore()
    store.down = True
    c = consumer(HangingQueue(), store, stuck_after_seconds=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop, 0.5))
    # Refused twice: the worker has waited 0.5 s for the database, past stuck_after_seconds.
    await wait_for(lambda: store.probes >= 2, 5, "a second refused probe", interval=0.01)
    assert c.stuck() is None  # waiting for the database is not stuck
    store.down = False
    await wait_for(c.stuck, 5, "stuck: a receive that never returns", interval=0.05)
    assert "no receive" in (c.stuck() or "")
    stop.set()
    await asyncio.wait_for(task, 3)
    assert c.stuck() is None
