"""Bugs the fault runs (tests/reliability) found, kept as unit-level regression tests.

Four workers on one queue with RETRY_BASE_SECONDS=0.5 and RETRY_MAX_SECONDS=4 (both accepted
by the settings) sent valid events to the DLQ in 2 of 3 full runs (3 events of ~9,000): almost
every event is deferred at least once when its order.placed is in another worker's batch, the
first backoff truncates to 0 s, and the five receives before the redrive policy's DLQ span about
10 s. The contract only lets an event reach the DLQ when its order.placed never comes.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from order_service.adapters.spans import NO_SPANS
from order_service.domain.redelivery import RedeliveryPolicy
from order_service.errors import ConfigError
from order_service.metrics import Metrics
from order_service.service.consumer import Consumer
from order_service.service.ports import Message
from order_service.settings import load_settings
from tests.factories import body, placed
from tests.support.waiting import wait_for
from tests.unit.fakes import FakeQueue, FakeStore, make_config


def test_a_deferred_message_is_never_made_visible_again_at_once():
    config = RedeliveryPolicy(retry_base_seconds=0.5, retry_max_seconds=4)
    assert config.backoff(1) >= 1


def test_settings_refuse_a_deferral_budget_shorter_than_the_visibility_timeout():
    # Receives 1-4 are deferred (the 5th goes to the DLQ): 0 + 2 + 4 + 4 = 10 s of retries,
    # less than one visibility timeout during which a crashed worker's order.placed is hidden.
    with pytest.raises(ConfigError):
        load_settings(retry_base_seconds=0.5, retry_max_seconds=4, sqs_visibility_timeout=60)


async def test_prefetched_messages_stay_invisible_while_they_wait_for_a_processor():
    """In a full run, with every processor held 12.5 s (visibility 5 s) and the heartbeat
    working, the proxy saw 40 of 600 messages delivered twice: the ones in the buffer. Each
    redelivery raises ApproximateReceiveCount; at 5 the redrive policy dead-letters a valid
    event. Here: one processor, batches of one, 2.5 s each, visibility 3 s."""

    class TimedQueue(FakeQueue):
        def __init__(self, messages):
            super().__init__(messages)
            self.hidden_until: dict[str, float] = {}
            self.expired: set[str] = set()

        def _check(self, message_id: str) -> None:
            if time.monotonic() > self.hidden_until[message_id]:
                self.expired.add(message_id)

        async def receive(self, max_messages=10, wait_seconds=20):
            taken = await super().receive(max_messages, wait_seconds)
            for m in taken:
                self.hidden_until[m.message_id] = time.monotonic() + 3
            return taken

        async def change_visibility(self, messages, timeouts):
            for m, t in zip(messages, timeouts, strict=True):
                self._check(m.message_id)
                self.hidden_until[m.message_id] = time.monotonic() + t
            return await super().change_visibility(messages, timeouts)

        async def delete(self, messages):
            for m in messages:
                self._check(m.message_id)
            return await super().delete(messages)

    messages = [
        Message(str(uuid.uuid4()), f"rh-{n}", body(placed(str(uuid.uuid4())))) for n in range(3)
    ]
    queue = TimedQueue(messages)
    store = FakeStore(delay=2.5)
    config = make_config(
        pollers=1,
        processors=1,
        max_in_flight=20,
        batch_max_messages=1,
        wait_time_seconds=0,
        visibility_timeout=3,
    )
    c = Consumer(queue, store, config, Metrics(), store_ready=store.ready, spans=NO_SPANS)
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop, 2))
    await wait_for(lambda: c.processed >= 3, 15, "3 messages processed", interval=0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert queue.expired == set()  # no message was ever visible again while the worker held it
