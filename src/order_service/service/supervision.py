"""The worker's side tasks, started and watched in one place (as procrastinate's worker does):
the pollers, the processors and the heartbeat of the consuming loop, the database probe, the
outbox relay and the EMF publisher.

One log line and one exit path: a task that ends while the worker is not stopping is logged
("worker task ended unexpectedly; stopping"), the stop is set (the worker stops cleanly,
handing its messages back), and `finish` raises SideTaskCrashed once everything has ended, so
that the process exits non-zero and the orchestrator replaces it: never a half-alive worker
(one that polls without a heartbeat, or whose metrics stopped).

What a task's failure means is its own policy, kept where the task is: the relay and the EMF
publisher report and retry whatever they meet and never end by themselves (order intake never
waits for them); the probe retries until the database passes and then ends (`may_finish`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterable
from typing import Any

import structlog

from order_service.errors import OrderServiceError

log = structlog.get_logger("order_service.worker")

# What the worker keeps of its shutdown grace for what follows the consumer's own stop: the
# relay's last claim, closing the pool, and the spans still buffered. Everything ends within
# SHUTDOWN_GRACE_SECONDS of the stop signal, whatever the database or a collector is doing.
SHUTDOWN_TAIL_SECONDS = 3.0
_CANCEL_ROUNDS = 3  # a cancelled task still unwinding is asked again, this often
_CANCEL_WAIT = 0.5


class SideTaskCrashed(OrderServiceError):
    """A side task of the worker ended unexpectedly: the process exits non-zero so that the
    orchestrator replaces it."""


class Supervisor:
    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self._bounds: dict[asyncio.Task[None], float] = {}
        self._may_finish: set[asyncio.Task[None]] = set()
        self._stopped_at: float | None = None
        self._abandoned = False  # start-up failed: every task is cancelled, none crashed
        self.crashed: str | None = None  # the first task that ended unexpectedly

    def start(
        self,
        name: str,
        work: Coroutine[Any, Any, None],
        *,
        stop_within: float = 0.0,
        may_finish: bool = False,
    ) -> asyncio.Task[None]:
        """Runs `work` as the side task `name`. After the stop, `finish` waits `stop_within`
        seconds for it to end, then cancels it. `may_finish`: ending without an error is its
        job done (the probe), not a crash."""
        task = asyncio.create_task(work, name=name)
        self._bounds[task] = stop_within
        if may_finish:
            self._may_finish.add(task)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()  # retrieved either way
        if self._abandoned:
            return
        if self._stop.is_set():
            if error is not None:  # ended by the stop, though not cleanly: said, not fatal
                log.warning("worker task failed while stopping", task=task.get_name(), error=error)
            return
        if error is None and not task.cancelled() and task in self._may_finish:
            return  # its job done
        log.error("worker task ended unexpectedly; stopping", task=task.get_name(), error=error)
        self.crashed = self.crashed or task.get_name()
        self._stop.set()

    async def until_stopped(self) -> None:
        """Returns when the stop comes (a signal, or a task's crash): the clock of every
        `stop_within` starts then."""
        await self._stop.wait()
        self._stopped_at = self._stopped_at or time.monotonic()

    async def finish(self) -> None:
        """After the stop: waits for each task still running until its bound, cancels what is
        left (asking again while it unwinds: a rollback on a blackholed connection never
        answers), then raises SideTaskCrashed if any task ended unexpectedly."""
        await self.until_stopped()
        assert self._stopped_at is not None
        for task, within in sorted(self._bounds.items(), key=lambda item: item[1]):
            if task.done():
                continue
            left = self._stopped_at + within - time.monotonic()
            done, _ = await asyncio.wait({task}, timeout=max(left, 0))
            if not done and within > 0:
                log.warning(
                    "worker task still busy at the end of its share of the grace; cancelled",
                    task=task.get_name(),
                    within=round(within, 2),
                )
        # Asked once: a cancel that a blackholed connection never answers is not waited for.
        await cancel(self._bounds, rounds=1)
        if self.crashed is not None:
            raise SideTaskCrashed(f"worker task {self.crashed} ended unexpectedly")

    async def cancel_all(self) -> None:
        """Cancels every task still running (start-up failed: nothing to finish); a no-op
        after `finish`."""
        self._abandoned = self._abandoned or not self._stop.is_set()
        await cancel(self._bounds, rounds=1)


async def cancel(tasks: Iterable[asyncio.Task[Any]], rounds: int = _CANCEL_ROUNDS) -> None:
    """Cancels what of `tasks` is still running, asking again (`rounds` in all, each waiting
    half a second) while one is still unwinding."""
    pending = {t for t in tasks if not t.done()}
    for _ in range(rounds):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_CANCEL_WAIT)
    log.warning("grace period over; tasks still unwinding", tasks=len(pending))


class ShutdownClock:
    """When the stop came, and how much of the grace is left."""

    def __init__(self, stop: asyncio.Event, grace: float) -> None:
        self.grace = grace
        self.tail = min(SHUTDOWN_TAIL_SECONDS, grace / 4)
        self._stopped_at: float | None = None
        self._watch = asyncio.create_task(self._wait(stop), name="shutdown-clock")

    async def _wait(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopped_at = time.monotonic()
        log.info("stopping", grace_seconds=self.grace)

    def consumer_grace(self) -> float:
        """The consumer's share: the grace less the tail."""
        return self.grace - self.tail

    def left(self) -> float:
        """Seconds left until the grace ends (all of the tail before a stop: a crash)."""
        if self._stopped_at is None:
            return self.tail
        return max(self._stopped_at + self.grace - time.monotonic(), 0.0)

    def close(self) -> None:
        self._watch.cancel()
