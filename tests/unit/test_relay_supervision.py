"""The relay as a supervised side task of the worker: if it dies, the worker stops cleanly and
exits non-zero; when the worker stops, so does the relay, cancelled if it is still waiting for
something when the grace is nearly over (issue 21). And the other side tasks the supervisor
watches (issue 20): the EMF publisher and the probe."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from order_service.bootstrap import start_relay
from order_service.service.relay import Relay
from order_service.service.supervision import SideTaskCrashed, Supervisor


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


async def worker(
    stop: asyncio.Event,
    relay: FakeRelay | None,
    grace: float = 10,
    finished: list[str] | None = None,
) -> list[str]:
    """What the worker does with its side tasks: the relay started beside the consumer, the
    consumer's stop, then the supervisor's finish (its one exit path)."""
    tasks = Supervisor(stop)
    finished = [] if finished is None else finished
    if relay is not None:
        start_relay(tasks, cast(Relay, relay), stop, grace)
    await tasks.until_stopped()  # the consumer consumes until the stop
    finished.append("consumer stopped cleanly")
    await tasks.finish()
    return finished


async def test_a_dead_relay_stops_the_worker_non_zero_after_a_clean_stop():
    stop, finished = asyncio.Event(), []
    task = asyncio.create_task(worker(stop, FakeRelay(crash=True), finished=finished))
    with pytest.raises(SideTaskCrashed, match="outbox-relay"):
        await asyncio.wait_for(task, 5)
    assert stop.is_set() and finished == ["consumer stopped cleanly"]


async def test_a_stopping_worker_stops_its_relay_after_the_consumer():
    stop, fake = asyncio.Event(), FakeRelay(crash=False)
    task = asyncio.create_task(worker(stop, fake))
    await asyncio.sleep(0.01)
    stop.set()
    assert await task == ["consumer stopped cleanly"] and fake.stopped


async def test_without_a_relay_the_consumer_runs_alone():
    stop = asyncio.Event()
    stop.set()
    assert await worker(stop, None)


async def test_a_relay_waiting_past_the_grace_is_cancelled_and_the_worker_ends():
    stop, deaf = asyncio.Event(), FakeRelay(deaf=True)
    task = asyncio.create_task(worker(stop, deaf, grace=1.2))
    await asyncio.sleep(0.01)
    stop.set()
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(task, 30)  # without the bound: never
    assert deaf.cancelled
    assert asyncio.get_running_loop().time() - started < 1.2 + 0.5  # within the grace


async def test_any_side_task_that_ends_by_itself_stops_the_worker():
    """The EMF publisher was watched by nobody: a publisher that died left a worker running
    blind (no metrics, no alarms). Now its end stops the worker like any side task's."""
    stop = asyncio.Event()
    tasks = Supervisor(stop)

    async def publisher() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("emf bug")

    tasks.start("emf-publisher", publisher())
    await asyncio.wait_for(tasks.until_stopped(), 5)
    with pytest.raises(SideTaskCrashed, match="emf-publisher"):
        await tasks.finish()


async def test_a_probe_that_finishes_its_job_is_no_crash_but_one_that_fails_is():
    stop = asyncio.Event()
    tasks = Supervisor(stop)

    async def passes() -> None:
        await asyncio.sleep(0)

    await tasks.start("probe", passes(), may_finish=True)
    assert not stop.is_set() and tasks.crashed is None

    async def fails() -> None:
        raise RuntimeError("probe bug")

    with pytest.raises(RuntimeError):
        await tasks.start("probe", fails(), may_finish=True)
    await asyncio.sleep(0)  # the done callbacks run
    assert stop.is_set() and tasks.crashed == "probe"
    with pytest.raises(SideTaskCrashed, match="probe"):
        await tasks.finish()


async def test_a_task_ending_after_the_stop_is_not_a_crash():
    stop = asyncio.Event()
    tasks = Supervisor(stop)
    tasks.start("poller-0", stop.wait())
    stop.set()
    await tasks.finish()  # no SideTaskCrashed
    assert tasks.crashed is None


async def test_tasks_cancelled_because_start_up_failed_are_no_crash():
    stop = asyncio.Event()
    tasks = Supervisor(stop)
    tasks.start("emf-publisher", asyncio.Event().wait())
    await asyncio.sleep(0)
    await tasks.cancel_all()  # say, the queues' types did not match: a ConfigError
    assert tasks.crashed is None and not stop.is_set()
