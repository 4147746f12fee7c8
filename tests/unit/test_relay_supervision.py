"""The relay as a supervised side task of the worker: if it dies, the worker stops cleanly and
exits non-zero; when the worker stops, so does the relay, cancelled if it is still waiting for
something when the grace is nearly over (issue 21)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from order_service.bootstrap import consume_with_relay
from order_service.service.consumer import ConsumerCrashed
from order_service.service.relay import Relay


class FakeRelay:
    def __init__(self, crash: bool = False, deaf: bool = False) -> None:
        self.crash = crash
        self.deaf = deaf  # waits for a server that never answers, whatever the stop
        self.stopped = False
        self.cancelled = False

    async def run(self, stop: asyncio.Event) -> None:
        if self.crash:
            await asyncio.sleep(0.01)
            raise RuntimeError("relay bug")
        try:
            await (asyncio.Event() if self.deaf else stop).wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.stopped = True


async def consumer(stop: asyncio.Event, finished: list[str]) -> None:
    await stop.wait()
    finished.append("consumer stopped cleanly")


async def test_a_dead_relay_stops_the_worker_non_zero_after_a_clean_stop():
    stop, finished = asyncio.Event(), []
    relay = cast(Relay, FakeRelay(crash=True))
    with pytest.raises(ConsumerCrashed, match="outbox-relay"):
        await consume_with_relay(consumer(stop, finished), relay, stop, 10)
    assert stop.is_set() and finished == ["consumer stopped cleanly"]


async def test_a_stopping_worker_stops_its_relay_after_the_consumer():
    stop, finished = asyncio.Event(), []
    fake = FakeRelay(crash=False)
    task = asyncio.create_task(
        consume_with_relay(consumer(stop, finished), cast(Relay, fake), stop, 10)
    )
    await asyncio.sleep(0.01)
    stop.set()
    await task
    assert finished and fake.stopped


async def test_without_a_relay_the_consumer_runs_alone():
    stop, finished = asyncio.Event(), []
    stop.set()
    await consume_with_relay(consumer(stop, finished), cast(Any, None), stop, 10)
    assert finished


async def test_a_relay_waiting_past_the_grace_is_cancelled_and_the_worker_ends():
    stop, finished = asyncio.Event(), []
    deaf = FakeRelay(deaf=True)
    task = asyncio.create_task(
        consume_with_relay(consumer(stop, finished), cast(Relay, deaf), stop, grace=1.2)
    )
    await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 30)  # without the bound: never
    assert finished and deaf.cancelled
