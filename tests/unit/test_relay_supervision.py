"""The relay as a supervised side task of the worker: if it dies, the worker stops cleanly and
exits non-zero; when the worker stops, the relay is stopped after it."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from order_service.bootstrap import consume_with_relay
from order_service.service.consumer import ConsumerCrashed
from order_service.service.relay import Relay


class FakeRelay:
    def __init__(self, crash: bool) -> None:
        self.crash = crash
        self.stopped = False

    async def run(self, stop: asyncio.Event) -> None:
        if self.crash:
            await asyncio.sleep(0.01)
            raise RuntimeError("relay bug")
        await stop.wait()
        self.stopped = True


async def consumer(stop: asyncio.Event, finished: list[str]) -> None:
    await stop.wait()
    finished.append("consumer stopped cleanly")


async def test_a_dead_relay_stops_the_worker_non_zero_after_a_clean_stop():
    stop, finished = asyncio.Event(), []
    relay = cast(Relay, FakeRelay(crash=True))
    with pytest.raises(ConsumerCrashed, match="outbox-relay"):
        await consume_with_relay(consumer(stop, finished), relay, stop)
    assert stop.is_set() and finished == ["consumer stopped cleanly"]


async def test_a_stopping_worker_stops_its_relay_after_the_consumer():
    stop, finished = asyncio.Event(), []
    fake = FakeRelay(crash=False)
    task = asyncio.create_task(
        consume_with_relay(consumer(stop, finished), cast(Relay, fake), stop)
    )
    await asyncio.sleep(0.01)
    stop.set()
    await task
    assert finished and fake.stopped


async def test_without_a_relay_the_consumer_runs_alone():
    stop, finished = asyncio.Event(), []
    stop.set()
    await consume_with_relay(consumer(stop, finished), cast(Any, None), stop)
    assert finished
